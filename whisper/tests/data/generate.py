#!/usr/bin/python3
"""Generates the golden whisper files in this directory with the reference whisper.py.

Run it with Debian's Python, which has whisper 1.1.4 (python3-whisper):

    /usr/bin/python3 whisper/tests/data/generate.py [OUTPUT_DIR]

OUTPUT_DIR defaults to the directory of this script. For every case in CASES it writes
`<name>.wsp`, made by whisper.py's create/update/update_many/setAggregationMethod/
setXFilesFactor with a fixed `now`, and `<name>.json`, which records:

  - how the file was made: "create" (archives, xff, method, sparse) and "ops", each with the
    arguments whisper.py was called with (and "error" when whisper.py raised), so a test can
    replay them;
  - "info": whisper.info() of the result, plus "fileSize";
  - "fetches": fetch() calls on the result and what whisper.py returned (or the exception).

Everything is deterministic: times are fixed, pseudo-random values come from a 64-bit LCG
seeded per case, and the JSON is written with sorted keys. Floats are stored as 16 hex digits of
their IEEE-754 big-endian bits, so NaN, infinities, -0.0 and the last bit of every value survive.
The Rust test `golden` in ../integration/golden.rs reads these files; see README.md.
"""
import json
import os
import struct
import sys

import whisper

NOW = 1700000000  # 2023-11-14T22:13:20Z; every case starts here

NAN = float("nan")
INF = float("inf")
MAX = 1.7976931348623157e308
TINY = 5e-324

L1 = [(60, 60)]                        # one archive: 1 hour of minutes
L3 = [(10, 18), (60, 15), (300, 12)]   # three archives: 3 min, 15 min, 1 hour
CARBON = [(60, 1440), (300, 2016)]     # a carbon-like schema: 1 day of minutes, 1 week of 5 min


def f2h(x):
    return struct.pack(">d", x).hex()


class Lcg:
    """A 64-bit linear congruential generator: the same numbers on every Python version."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return self.state >> 33

    def below(self, n):
        return self.next() % n

    def value(self):
        """A value in [-50, 50) in steps of 0.25 (exact in binary)."""
        return (self.below(400) - 200) / 4.0


class Case:
    def __init__(self, name, description, archives, xff=0.5, method="average", sparse=False):
        self.name = name
        self.description = description
        self.archives = archives
        self.xff = xff
        self.method = method
        self.sparse = sparse
        self.ops = []
        self.now = NOW
        self.thorough = True  # False: fewer fetches of whole archives, to keep the JSON small

    # Each method records an operation; `run` applies them with whisper.py.
    def update(self, value, age):
        self.ops.append({"op": "update", "value": value, "timestamp": self.now - age,
                         "now": self.now})

    def update_many(self, points):
        """points: (age, value) pairs, relative to the current now."""
        self.ops.append({"op": "update_many",
                         "points": [[self.now - age, v] for age, v in points], "now": self.now})

    def set_aggregation(self, method, xff=None):
        self.ops.append({"op": "set_aggregation", "method": method, "xff": xff})

    def set_xff(self, xff):
        self.ops.append({"op": "set_xff", "xff": xff})

    def advance(self, seconds):
        self.now += seconds


def exception_name(e):
    return type(e).__name__


def run(case, out_dir):
    path = os.path.join(out_dir, case.name + ".wsp")
    if os.path.exists(path):
        os.unlink(path)
    whisper.create(path, case.archives, xFilesFactor=case.xff, aggregationMethod=case.method,
                   sparse=case.sparse)
    ops = []
    for op in case.ops:
        rec = dict(op)
        if op["op"] == "update":
            rec["value"] = f2h(op["value"])
        elif op["op"] == "update_many":
            rec["points"] = [[t, f2h(v)] for t, v in op["points"]]
        try:
            if op["op"] == "update":
                whisper.update(path, op["value"], op["timestamp"], now=op["now"])
            elif op["op"] == "update_many":
                whisper.update_many(path, [tuple(p) for p in op["points"]], now=op["now"])
            elif op["op"] == "set_aggregation":
                rec["result"] = whisper.setAggregationMethod(path, op["method"], op["xff"])
            elif op["op"] == "set_xff":
                rec["result"] = f2h(whisper.setXFilesFactor(path, op["xff"]))
        except whisper.WhisperException as e:
            rec["error"] = exception_name(e)
        ops.append(rec)

    info = whisper.info(path)
    info["xFilesFactor"] = f2h(info["xFilesFactor"])
    info["fileSize"] = os.stat(path).st_size

    fetches = []
    for q in fetch_queries(case):
        rec = dict(q)
        try:
            r = whisper.fetch(path, q["from"], q["until"], now=q["now"],
                              archiveToSelect=q["archive"])
            if r is None:
                rec["result"] = None
            else:
                (start, end, step), values = r
                rec["result"] = [start, end, step,
                                 [None if v is None else f2h(v) for v in values]]
        except (whisper.WhisperException, ValueError) as e:
            rec["error"] = exception_name(e)
        fetches.append(rec)

    record = {
        "description": case.description,
        "create": {"archives": [list(a) for a in case.archives], "xff": case.xff,
                   "method": case.method, "sparse": case.sparse},
        "ops": ops,
        "info": info,
        "fetches": fetches,
    }
    with open(os.path.join(out_dir, case.name + ".json"), "w") as f:
        f.write(dump(record))


def dump(record):
    """JSON with one line per key, and one line per element of a list of records."""
    lines = []
    for i, key in enumerate(sorted(record)):
        value = record[key]
        comma = "," if i + 1 < len(record) else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(" %s: [" % json.dumps(key))
            for j, item in enumerate(value):
                sep = "," if j + 1 < len(value) else ""
                lines.append("  %s%s" % (json.dumps(item, sort_keys=True), sep))
            lines.append(" ]%s" % comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(key), json.dumps(value, sort_keys=True), comma))
    return "{\n" + "\n".join(lines) + "\n}\n"


def fetch_queries(case):
    now = case.now
    archives = sorted(case.archives)
    max_ret = max(spp * n for spp, n in archives)
    qs = []

    def q(frm, until=None, at=now, archive=None):
        qs.append({"from": frm, "until": until, "now": at, "archive": archive})

    q(now - 60)
    q(now - 95, now - 17)
    for spp, n in archives:
        ret = spp * n
        q(now - ret, now)                      # the whole archive, chosen by age
        if case.thorough:
            q(now - ret + spp + 7, now - spp)  # unaligned bounds
            q(now - ret, now, archive=spp)     # forced archive
    q(now - max_ret, now, archive=archives[0][0])  # finest archive over the whole file
    q(now - max_ret - 500, now - 50)           # partly older than the file: clamped
    q(now - 1000, now - 1000)                  # zero-length range
    q(now - 95, now + 300)                     # until in the future: clamped
    q(now + 100, now + 200)                    # wholly in the future: None
    q(now - 3 * max_ret, now - 2 * max_ret)    # wholly too old: None
    q(now - 10, now - 20)                      # from after until: InvalidTimeInterval
    q(now - 100, now, archive=7)               # no such archive: ValueError
    q(now + 500 - 400, None, at=now + 500)     # a later now
    q(now - 400, None, at=now - 300)           # an earlier now
    q(now + 100)                               # until defaults to now: InvalidTimeInterval
    return qs


def batch(rng, step, count, start_age=0, keep=3, of=4, values=None):
    """Points every `step` seconds going back from `start_age`, each kept with chance keep/of."""
    pts = []
    for i in range(count):
        age = start_age + i * step + rng.below(step)  # unaligned timestamps
        if rng.below(of) < keep:
            pts.append((age, values(rng) if values else rng.value()))
    return pts


def cases():
    out = []

    c = Case("empty_three_archives", "Three archives, just created: every fetch is all None.", L3)
    out.append(c)

    c = Case("single_basic", "One archive; the three update() calls of the reference's worked "
             "example (graphite-reference.md 1.10), not wrapped.", L1)
    c.now = 1700000160
    c.update(7.0, c.now - 1699999920)
    c.update(5.0, c.now - 1700000040)
    c.update(6.5, c.now - 1700000130)
    out.append(c)

    c = Case("single_wrapped_last", "One archive, method last, xff 0: update_many batches over "
             "almost four laps of the ring, so slot 0 has been overwritten and the base moved; "
             "with duplicates in an interval.", L1, xff=0.0, method="last")
    rng = Lcg(3)
    for _ in range(5):
        pts = batch(rng, 60, 45)
        pts += [(30, 111.0), (31, 222.0), (30, 333.0)]  # same interval: latest raw time wins
        c.update_many(pts)
        c.advance(2700)
    c.advance(-2700 + 17)
    out.append(c)

    xffs = {"average": 0.5, "sum": 0.0, "last": 0.7, "max": 1.0, "min": 0.0,
            "avg_zero": 0.5, "absmax": 1.0, "absmin": 0.7}
    for seed, method in enumerate(whisper.aggregationMethods):
        xff = xffs[method]
        c = Case("three_%s" % method, "Three archives, method %s, xFilesFactor %s: batches of "
                 "points with gaps over 15 minutes, so the finest ring wraps, propagation "
                 "depends on xff, and old points go straight to coarser archives." % (method, xff),
                 L3, xff=xff, method=method)
        rng = Lcg(100 + seed)
        for _ in range(7):
            c.update_many(batch(rng, 10, 14, keep=5, of=6))
            c.advance(130)
        # Old points: straight into the 60 s and 300 s archives; some beyond the file (dropped).
        c.update_many(batch(rng, 60, 20, start_age=200) + batch(rng, 300, 14, start_age=950))
        c.update(rng.value(), 3)
        c.update(rng.value(), 25)
        c.update(rng.value(), 1000)       # an update() straight into the last archive
        c.update(1.0, -5)                 # future: TimestampNotCovered
        c.update(1.0, 3600)               # as old as maxRetention: TimestampNotCovered
        c.advance(41)
        out.append(c)

    c = Case("three_sparse_sum", "Three archives, created sparse (whisper.py writes only the "
             "last byte), method sum, xff 0.5.", L3, xff=0.5, method="sum", sparse=True)
    rng = Lcg(7)
    for _ in range(4):
        c.update_many(batch(rng, 10, 20))
        c.advance(170)
    out.append(c)

    c = Case("single_sparse_max", "One archive, created sparse, method max, xff 0.", L1,
             xff=0.0, method="max", sparse=True)
    rng = Lcg(8)
    c.update_many(batch(rng, 60, 40, keep=1, of=2))
    out.append(c)

    special = [NAN, INF, -INF, -0.0, 0.0, TINY, -TINY, MAX, -MAX, 1e-300, 3.0]
    for method, xff in [("max", 0.0), ("average", 0.0), ("last", 0.0), ("absmin", 0.5),
                        ("sum", 0.0), ("avg_zero", 0.0)]:
        c = Case("special_%s" % method, "Three archives, method %s, xff %s: NaN, infinities, "
                 "-0.0, subnormals and the largest doubles, alone and mixed in one interval "
                 "(NaN first and NaN later; inf + -inf; overflow to inf)." % (method, xff),
                 L3, xff=xff, method=method)
        rng = Lcg(200)
        pts = []
        for i in range(18):
            pts.append((i * 10 + 3, special[rng.below(len(special))]))
        c.update_many(pts)
        c.advance(60)
        c.update_many([(5, NAN), (15, 1.0), (25, 2.0)])        # NaN first in its minute
        c.advance(60)
        c.update_many([(5, 1.0), (15, NAN), (25, 2.0)])        # NaN later
        c.advance(60)
        c.update_many([(5, INF), (15, -INF), (25, MAX)])
        c.advance(60)
        c.update_many([(5, MAX), (15, MAX), (25, -0.0)])
        c.update(-0.0, 500)
        c.update(NAN, 1500)
        c.advance(9)
        out.append(c)

    c = Case("metadata_changed", "Three archives: data, then setAggregationMethod('max', 0.2), "
             "more data, setXFilesFactor(1.0), more data; propagation follows the header in "
             "force at each write.", L3)
    rng = Lcg(9)
    c.update_many(batch(rng, 10, 30))
    c.advance(100)
    c.set_aggregation("max", 0.2)
    c.update_many(batch(rng, 10, 10))
    c.advance(100)
    c.set_xff(1.0)
    c.update_many(batch(rng, 10, 10))
    c.set_aggregation("absmin")
    c.advance(100)
    c.update_many(batch(rng, 10, 10))
    c.advance(3)
    out.append(c)

    c = Case("future_points", "Three archives: update_many with points up to one finest step in "
             "the future, which whisper.py writes (update() refuses them).", L3, xff=0.0)
    rng = Lcg(10)
    c.update_many([(-9, 4.0), (-3, 5.0), (0, 6.0), (12, 7.0)] + batch(rng, 10, 10, start_age=20))
    c.update(8.0, -1)
    out.append(c)

    c = Case("carbon_like", "A carbon-like schema (60s:1d, 5m:7d), average, xff 0.5: a day and "
             "a half of minute points written in carbon-sized batches, with an outage.", CARBON)
    c.thorough = False
    rng = Lcg(11)
    c.now -= 36 * 3600
    for hour in range(36):
        if hour in (20, 21):                   # a two-hour outage
            c.advance(3600)
            continue
        pts = batch(rng, 60, 60, keep=9, of=10, values=lambda r: 40.0 + r.below(800) / 8.0)
        c.update_many(pts)
        c.advance(3600)
    out.append(c)
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for case in cases():
        run(case, out_dir)


if __name__ == "__main__":
    main()
