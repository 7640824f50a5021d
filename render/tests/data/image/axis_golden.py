#!/usr/bin/python3
"""Writes axis_golden.json: y axes laid out by graphite-web's own glyph.py classes
(_LinearAxisTics, _LogAxisTics: applySettings, chooseStep/setStep, chooseLimits,
getLabelValues, makeLabel) for random data ranges and settings, floats written as their
repr strings. src/image/axis.rs's tests
replay every case. Run here: /usr/bin/python3 axis_golden.py"""
import json
import os
import random

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
import django  # noqa: E402

django.setup()
from graphite.render.glyph import _LinearAxisTics, _LogAxisTics  # noqa: E402

random.seed(20261122)
cases = []
while len(cases) < 300:
    scale = 10 ** random.uniform(-4, 13)
    lo = random.uniform(-1, 1) * scale
    hi = lo + abs(random.gauss(0, 1)) * scale * random.choice([0, 0.01, 1, 5])
    if random.random() < 0.3:
        lo = abs(lo)
        hi = abs(hi) + lo
    system = random.choice(["si", "binary", "sec", "msec", "none"])
    log = random.choice([None, None, None, 10.0, 2.0, 2.718281828459045])
    ymin = random.choice([None, None, None, 0.0, lo - scale / 3])
    ymax = random.choice([None, None, None, "max", hi * 2 + 1])
    ylimit = random.choice([None, None, None, hi / 2 if hi else 1.0])
    ystep = random.choice([None, None, None, None, scale / 4])
    divisors = random.choice([[4, 5, 6], [4, 5, 6], [3], [2, 7], [10]])
    case = dict(min=lo, max=hi, system=system, log=log, ymin=ymin, ymax=ymax, ylimit=ylimit,
                ystep=ystep, divisors=divisors)
    try:
        if log:
            t = _LogAxisTics(lo, hi, unitSystem=system, base=log)
        else:
            t = _LinearAxisTics(lo, hi, unitSystem=system)
        t.applySettings(axisMin=ymin, axisMax=ymax, axisLimit=ylimit)
        if ystep is not None:
            t.setStep(ystep)
        else:
            t.chooseStep(divisors=divisors, binary=(system == "binary"))
        t.chooseLimits()
        values = t.getLabelValues()
        if len(values) > 20:
            continue
        case["ok"] = dict(bottom=t.bottom, top=t.top, values=values,
                          labels=[t.makeLabel(v) for v in values])
    except Exception as e:  # noqa: BLE001 - the error is the expected outcome
        case["error"] = str(e)
    cases.append(case)


def exact(v):
    """Floats as their repr (JSON readers may round the last digit; Rust's parse does not)."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return [exact(x) for x in v]
    if isinstance(v, dict):
        return {k: exact(x) for k, x in v.items()}
    return v


json.dump([exact(c) for c in cases], open("axis_golden.json", "w"))
print(len(cases), "cases,", sum("error" in c for c in cases), "errors")
