#!/usr/bin/python3
"""Draws every graph of cases.json with graphite-web 1.1.8's own code (graphite.render.glyph,
options parsed by graphite.render.views.parseOptions from a real Django request) and writes
<name>.png here: the goldens tests/image.rs compares our pictures with.

Run from this directory with Debian's graphite-web installed: /usr/bin/python3 golden.py"""
import json
import os
import sys
from io import BytesIO

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
import django  # noqa: E402

django.setup()
from django.test import RequestFactory  # noqa: E402
from graphite.render import views  # noqa: E402
from graphite.render.datalib import TimeSeries  # noqa: E402


def python_value(text):
    if text == "True":
        return True
    try:
        return float(text)
    except ValueError:
        return text


def to_series(spec):
    values = spec["values"]
    s = TimeSeries(spec["name"], spec["start"], spec["start"] + spec["step"] * len(values),
                   spec["step"], list(values))
    for key, text in spec["options"].items():
        if key == "color":
            s.color = text
        else:
            s.options[key] = python_value(text)
    return s


def draw(case):
    query = case["params"] + ("&graphType=pie" if "pie" in case else "")
    request = RequestFactory().get("/render?" + query.lstrip("&"))
    graph_options, request_options = views.parseOptions(request)
    if "pie" in case:
        graph_options["data"] = [(name, float(v)) for name, v in case["pie"]]
    else:
        graph_options["data"] = [to_series(s) for s in case["series"]]
    return views.doImageRender(request_options["graphClass"], graph_options)


if __name__ == "__main__":
    cases = json.load(open("cases.json"))
    only = sys.argv[1:]
    for case in cases:
        if only and case["name"] not in only:
            continue
        with open(case["name"] + ".png", "wb") as f:
            f.write(draw(case))
        print("wrote", case["name"] + ".png")
