#!/usr/bin/python3
"""Reference oracle for the differential tests: Debian's python3-whisper, driven over stdin.

Run with /usr/bin/python3 (Debian's whisper module is only importable there). Reads one JSON
request per line and answers one JSON line: {"ok": result} or {"err": "Type: message"}.

Floats cross the pipe as 16 hex digits of their big-endian IEEE-754 bits, so NaN, infinities,
-0.0 and every last bit survive. Times are ints. `now` is passed explicitly; for the scripts
(whisper-fill, the CLIs) time.time() is patched to return it.

Requests:
  {"op": "ping"}                                      -> whisper module path
  {"op": "create", "path", "archives": [[spp, n]], "xff", "method", "sparse", "fallocate"}
  {"op": "update", "path", "value", "timestamp", "now"}
  {"op": "update_many", "path", "points": [[t, v]], "now"}
  {"op": "fetch", "path", "from", "until", "now", "archive"}
  {"op": "info", "path"}
  {"op": "set_aggregation", "path", "method", "xff"}  -> old method
  {"op": "set_xff", "path", "xff"}                    -> old xff
  {"op": "merge", "from", "to", "time_from", "time_to", "now"}
  {"op": "diff", "a", "b", "ignore_empty", "until", "now"}
  {"op": "fill", "src", "dst", "now"}                 -> the whisper-fill script's logic
  {"op": "aggregate", "method", "values": [v or null]} -> whisper.aggregate(method, known, values)
  {"op": "set_order", "keys": [int]}                  -> list(set(keys))
  {"op": "parse_retention", "def"}                    -> [spp, points]
  {"op": "validate", "archives": [[spp, n]]}          -> null or error
  {"op": "cli", "tool", "argv": [...], "now", "stdin"} -> {"stdout", "stderr", "code"}
  {"op": "cli_tz", "tz", "tool", "argv": [...], "now", "stdin"} -> as "cli", run with TZ set to
      tz (then restored), for the local-time output of --pretty
"""
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import runpy
import struct
import sys
import time
import traceback

import whisper

REAL_TIME = time.time


def f2h(x):
    return struct.pack(">d", x).hex()


def h2f(s):
    return struct.unpack(">d", bytes.fromhex(s))[0]


def opt_f(x):
    return None if x is None else f2h(x)


@contextlib.contextmanager
def frozen_time(now):
    if now is None:
        yield
        return
    time.time = lambda: float(now)
    try:
        yield
    finally:
        time.time = REAL_TIME


_fill_module = None


def fill_module():
    global _fill_module
    if _fill_module is None:
        loader = importlib.machinery.SourceFileLoader("whisper_fill", "/usr/bin/whisper-fill")
        spec = importlib.util.spec_from_loader("whisper_fill", loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        _fill_module = mod
    return _fill_module


def run_cli(tool, argv, now, stdin_text):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    old_argv, old_stdin = sys.argv, sys.stdin
    sys.argv = [tool] + list(argv)
    sys.stdin = io.StringIO(stdin_text or "")
    try:
        with frozen_time(now), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path("/usr/bin/" + tool, run_name="__main__")
            except SystemExit as e:
                if e.code is None:
                    code = 0
                elif isinstance(e.code, int):
                    code = e.code
                else:
                    err.write(str(e.code) + "\n")
                    code = 1
            except Exception:
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.argv, sys.stdin = old_argv, old_stdin
    return {"stdout": out.getvalue(), "stderr": err.getvalue(), "code": code}


@contextlib.contextmanager
def time_zone(tz):
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def handle(req):
    op = req["op"]
    if op == "ping":
        return whisper.__file__
    if op == "create":
        whisper.create(req["path"], [tuple(a) for a in req["archives"]],
                       xFilesFactor=req.get("xff"), aggregationMethod=req.get("method"),
                       sparse=req.get("sparse", False), useFallocate=req.get("fallocate", False))
        return None
    if op == "update":
        whisper.update(req["path"], h2f(req["value"]), req.get("timestamp"), now=req["now"])
        return None
    if op == "update_many":
        whisper.update_many(req["path"], [(t, h2f(v)) for t, v in req["points"]], now=req["now"])
        return None
    if op == "fetch":
        r = whisper.fetch(req["path"], req["from"], req.get("until"), now=req["now"],
                          archiveToSelect=req.get("archive"))
        if r is None:
            return None
        (start, end, step), values = r
        return [start, end, step, [opt_f(v) for v in values]]
    if op == "info":
        i = whisper.info(req["path"])
        i["xFilesFactor"] = f2h(i["xFilesFactor"])
        return i
    if op == "set_aggregation":
        return whisper.setAggregationMethod(req["path"], req["method"], req.get("xff"))
    if op == "set_xff":
        return f2h(whisper.setXFilesFactor(req["path"], req["xff"]))
    if op == "merge":
        whisper.merge(req["from"], req["to"], req.get("time_from"), req.get("time_to"),
                      now=req["now"])
        return None
    if op == "diff":
        r = whisper.diff(req["a"], req["b"], ignore_empty=req.get("ignore_empty", False),
                         until_time=req.get("until"), now=req["now"])
        return [[n, [[t, opt_f(a), opt_f(b)] for t, a, b in pts], total] for n, pts, total in r]
    if op == "fill":
        with frozen_time(req["now"]):
            fill_module().fill_archives(req["src"], req["dst"], float(req["now"]))
        return None
    if op == "aggregate":
        values = [None if v is None else h2f(v) for v in req["values"]]
        known = [v for v in values if v is not None]
        return f2h(whisper.aggregate(req["method"], known, values))
    if op == "set_order":
        return list(set(req["keys"]))
    if op == "parse_retention":
        return list(whisper.parseRetentionDef(req["def"]))
    if op == "validate":
        whisper.validateArchiveList([tuple(a) for a in req["archives"]])
        return None
    if op == "cli":
        return run_cli(req["tool"], req["argv"], req.get("now"), req.get("stdin"))
    if op == "cli_tz":
        with time_zone(req["tz"]):
            return run_cli(req["tool"], req["argv"], req.get("now"), req.get("stdin"))
    raise ValueError("unknown op %r" % op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            resp = {"ok": handle(json.loads(line))}
        except Exception as e:  # every failure is an answer, never a crash
            resp = {"err": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
