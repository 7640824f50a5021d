#!/usr/bin/python3
"""Table of medians, whisper.py vs the whisper crate, from the BENCH lines of whisper.sh.

  compare.py RAW.txt [RAW2.txt ...]     # or BENCH lines on stdin

Reads the lines of bench-whisper.py (bench=whisper) and whisper-side-by-side
(bench=whisper-rs: path functions, one open per call; bench=whisper-rs-handle: kept-open
handles) and prints, per case, the median rate of each (min-max over the lines), the ratio
ours / whisper.py of the medians, and whether it meets the issue's target (20x for
update_many and fetch, 5x for create).
"""
import statistics
import sys

# label, whisper.py case, our case, metric, target ratio (None: informative only)
ROWS = [
    ("update_many, batches of 1440", "update_many-batch1440", "update_many-batch1440", "points_per_s", 20),
    ("update_many, batches of 60", "update_many-batch60", "update_many-batch60", "points_per_s", None),
    ("update_many, batches of 10", "update_many-batch10", "update_many-batch10", "points_per_s", 20),
    ("fetch 24h", "fetch24h", "fetch24h", "files_per_s", 20),
    ("fetch 24h, handles' second pass (buffers warm)", "fetch24h", "fetch24h-warm", "files_per_s", None),
    ("fetch 24h, mmap handles", "fetch24h", "fetch24h-mmap", "files_per_s", None),
    ("fetch 24h, mmap handles' second pass", "fetch24h", "fetch24h-mmap-warm", "files_per_s", None),
    ("create, fallocate, settled fs", "create-only-fallocate", "create-only-fallocate", "files_per_s", 5),
    ("create, zero-filled, settled fs (Allocation::Zeroed)", "create-only-zeroed", "create-only-zeroed", "files_per_s", 5),
    ("create, zeros written, settled fs (Allocation::WriteZeros)", "create-only-zeroed", "create-only-writezeros", "files_per_s", None),
    ("create, fallocate, in bench-whisper.py's sequence", "create", "create", "files_per_s", 5),
    ("create, zero-filled, in sequence (Allocation::Zeroed)", "create-zerofill", "create-zerofill", "files_per_s", 5),
    ("create, zeros written, in sequence (Allocation::WriteZeros)", "create-zerofill", "create-writezeros", "files_per_s", None),
    ("create, sparse, in sequence (no whisper.py run)", None, "create-sparse", "files_per_s", None),
]
PY, PATH, HANDLE = "whisper", "whisper-rs", "whisper-rs-handle"


def parse(lines):
    groups = {}
    for line in lines:
        if not line.startswith("BENCH "):
            continue
        kv = dict(p.split("=", 1) for p in line[6:].split() if "=" in p)
        g = groups.setdefault((kv.get("bench"), kv.get("case")), {})
        for k, v in kv.items():
            try:
                g.setdefault(k, []).append(float(v))
            except ValueError:
                pass
    return groups


def fmt(x):
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e4:
        return "%.0fk" % (x / 1e3)
    if x >= 100:
        return "%.0f" % x
    return "%.3g" % x


def cell(groups, bench, case, metric):
    vals = groups.get((bench, case), {}).get(metric) if case else None
    if not vals:
        return None, ""
    med = statistics.median(vals)
    rng = " (%s-%s)" % (fmt(min(vals)), fmt(max(vals))) if len(vals) > 1 else ""
    return med, "%s%s" % (fmt(med), rng)


def ratio(ours, py, target):
    if ours is None or py is None or py == 0:
        return ""
    r = ours / py
    mark = "" if target is None else (" ✓" if r >= target else " ✗ (target %dx)" % target)
    return "%.1fx%s" % (r, mark)


def main():
    lines = []
    if len(sys.argv) > 1:
        for f in sys.argv[1:]:
            with open(f) as fh:
                lines += fh.readlines()
    else:
        lines = sys.stdin.readlines()
    groups = parse(lines)
    reps = max((len(g.get("seconds", [])) for (b, c), g in groups.items() if c.startswith("update_many")), default=0)
    print("Medians over %d repetitions (min-max); rates per second; ratio = ours / whisper.py.\n" % reps)
    print("| case | metric | whisper.py | ours, path functions | ratio | ours, kept-open handle | ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, py_case, our_case, metric, target in ROWS:
        py, py_s = cell(groups, PY, py_case, metric)
        path, path_s = cell(groups, PATH, our_case, metric)
        handle, handle_s = cell(groups, HANDLE, our_case, metric)
        if path is None and handle is None:
            continue
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, metric.replace("_per_s", "/s"), py_s or "–", path_s or "–", ratio(path, py, target),
            handle_s or "–", ratio(handle, py, target)))
    # The same work was done: as many points read back by both.
    read = {b: groups.get((b, "fetch24h"), {}).get("points_read", []) for b in (PY, PATH, HANDLE)}
    print("\npoints read by fetch 24h (per run of FILES files): " + ", ".join(
        "%s %s" % (b, sorted(set(int(v) for v in vals))) for b, vals in read.items() if vals))


if __name__ == "__main__":
    main()
