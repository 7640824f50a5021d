#!/usr/bin/env bash
# Issue 6's suite figure: the time graphite-web 1.1.8 and graphite-rs take to answer every
# /render case of the differential suite (render/tests/differential/targets.txt, ~1,100
# targets over the same Whisper files), one request at a time over loopback HTTP.
#
#   benches/side-by-side/suite.sh          # REPS=3 by default; ~1 minute per rep
#
# graphite-web runs as the differential test starts it (Python's WSGI server, no CarbonLink
# traffic); ours is render's HTTP server in the same test, built in release mode. Prints one
# `BENCH bench=suite ...` line per rep and the median ratio.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
cd "$root"
cargo build --quiet --release -p render --tests
ratios=()
for rep in $(seq "$REPS"); do
    line=$(GRAPHITE_REQUIRE_REFERENCE=1 cargo test --quiet --release -p render --test differential -- --nocapture 2>&1 |
        grep -o 'SUITE_TIMING.*' | head -1) || true
    [[ -n $line ]] || { echo "no SUITE_TIMING line (did the differential test run?)" >&2; exit 1; }
    echo "BENCH bench=suite rep=$rep ${line#SUITE_TIMING }"
    ratios+=("$(sed -n 's/.*ratio=\([0-9.]*\).*/\1/p' <<<"$line")")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median ratio graphite-web/ours: %.1fx over %d reps (target 20x)\n", a[int((NR+1)/2)], NR}'
