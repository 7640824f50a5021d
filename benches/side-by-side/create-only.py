#!/usr/bin/python3
"""whisper.py's half of whisper.sh's "settled" create measurement.

  create-only.py DIR FILES MODE REP       # MODE: zeroed | fallocate | sparse

Creates FILES files (60s:1d,5m:7d,15m:3y, xff 0.5, average) under DIR/MODE<REP>/bench/MODE
with whisper.create as bench-whisper.py does, times the loop, keeps the files (the caller
removes them) and prints one 'BENCH bench=whisper case=create-only-MODE ...' line, as
`whisper-side-by-side --create-only MODE` does for our crate.
"""
import os
import sys
import time

import whisper

ARCHIVES = [(60, 1440), (300, 2016), (900, 105120)]  # 60s:1d,5m:7d,15m:3y
MODES = {
    "zeroed": dict(sparse=False, useFallocate=False),
    "fallocate": dict(sparse=False, useFallocate=True),
    "sparse": dict(sparse=True, useFallocate=False),
}


def main():
    d, files, mode, rep = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    kw = MODES[mode]
    base = os.path.join(d, "%s%d" % (mode, rep), "bench", mode)
    os.makedirs(base, exist_ok=True)
    paths = [os.path.join(base, "m%d.wsp" % i) for i in range(files)]
    t = time.perf_counter()
    for p in paths:
        whisper.create(p, ARCHIVES, xFilesFactor=0.5, aggregationMethod="average", **kw)
    dt = time.perf_counter() - t
    print("BENCH bench=whisper case=create-only-%s rep=%d files=%d seconds=%.6g files_per_s=%.6g mb_per_s=%.6g"
          % (mode, rep, files, dt, files / dt, files * os.path.getsize(paths[0]) / dt / 1e6), flush=True)


if __name__ == "__main__":
    main()
