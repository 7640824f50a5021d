#!/usr/bin/python3
"""whisper.py's half of the byte comparison in whisper.sh.

  make-files.py DIR NOW [FILES]

Writes what `whisper-side-by-side --make-files DIR --now NOW --files FILES` writes, through the
python whisper library (Debian python3-whisper 1.1.4): for each allocation mode an empty
60s:1d,5m:7d,15m:3y file (xff 0.5, average), and files with one day of 60 s points ending at
NOW rounded to the minute, written with update_many in 1 batch of 1440 and in 144 batches of
10, all with now=NOW. whisper.py has no separate "write zeros" mode: our `writezeros` files
are compared with its `zeroed` ones.
"""
import os
import sys

import whisper

ARCHIVES = [(60, 1440), (300, 2016), (900, 105120)]  # 60s:1d,5m:7d,15m:3y
MODES = {
    "zeroed": dict(sparse=False, useFallocate=False),
    "fallocate": dict(sparse=False, useFallocate=True),
    "sparse": dict(sparse=True, useFallocate=False),
}


def value(i, k):
    return float((7 * i + 13 * k) % 1000)


def main():
    d, now = sys.argv[1], int(sys.argv[2])
    files = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    os.makedirs(d, exist_ok=True)
    end = now - now % 60
    for name, kw in MODES.items():
        create = lambda p: whisper.create(p, ARCHIVES, xFilesFactor=0.5, aggregationMethod="average", **kw)
        create(os.path.join(d, "%s-empty.wsp" % name))
        for i in range(files):
            pts = [(end - (1439 - k) * 60, value(i, k)) for k in range(1440)]
            p = os.path.join(d, "%s-b1440-m%d.wsp" % (name, i))
            create(p)
            whisper.update_many(p, pts, now=now)
            p = os.path.join(d, "%s-b10-m%d.wsp" % (name, i))
            create(p)
            for j in range(0, 1440, 10):
                whisper.update_many(p, pts[j:j + 10], now=now)


if __name__ == "__main__":
    main()
