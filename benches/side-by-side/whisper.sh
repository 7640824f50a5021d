#!/usr/bin/env bash
# whisper.py vs the whisper crate, side by side in one run, interleaved per repetition.
#
#   benches/side-by-side/whisper.sh              # REPS=3 FILES=1000 BATCHES=1440,10
#   REPS=1 FILES=200 benches/side-by-side/whisper.sh   # a quick smoke run
#
# 1. Same bytes: whisper.py (make-files.py) and our crate (whisper-side-by-side --make-files)
#    create files in every allocation mode and write one day of points into them in batches of
#    1440 and of 10, at the same `now`; every pair must be identical (cmp), and the allocated
#    block counts are printed.
# 2. Creates on a settled filesystem: per repetition, FILES creates each by whisper.py
#    (create-only.py: fallocate, zero-filled) and by us (--create-only fallocate, zeroed,
#    writezeros), nothing deleted until the section ends. On ext4 without a journal (this
#    machine) every create scans the inodes deleted in the last 60-360 s, so creates that follow
#    mass deletions (as in bench-whisper.py's sequence) cost ~100 us each, whoever makes them.
#    The section starts with sync and a SETTLE_WAIT (61 s) pause: ext4 counts an inode as
#    recently deleted for 60 s once its inode table block is written back, but for 360 s while
#    that block is dirty, which new creates in the same block make it again; so the first
#    steps of the first repetition may still be slow (SETTLE_WAIT=361 to be sure).
#    SETTLED=0 skips this section; it needs REPS * 5 * FILES * 1.3 MB of free space.
# 3. Each repetition runs shared/peers/bench-whisper.py (--reps 1, --cli-runs 1: its CLI
#    timings are dropped) and whisper-side-by-side, in alternating order, in the same work dir.
# 4. compare.py prints the table of medians and ratios.
#
# Env: REPS (1-10), FILES (1-5000), BATCHES, PEERS_TMP (work dir parent, default
# /tmp/graphite-peers), OUT (raw lines, table, env; default target/side-by-side/whisper-<time>),
# PYBENCH (default ../shared/peers/bench-whisper.py beside the repo), STEP_TIMEOUT (seconds
# per step, default 600).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
REPS=${REPS:-3}
FILES=${FILES:-1000}
BATCHES=${BATCHES:-1440,10}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
SETTLED=${SETTLED:-1}
SETTLE_WAIT=${SETTLE_WAIT:-61}
PY=/usr/bin/python3 # Debian's python, the one that imports python3-whisper
PYBENCH=${PYBENCH:-$root/../shared/peers/bench-whisper.py}
WORK=${PEERS_TMP:-/tmp/graphite-peers}/whisper-side-by-side
OUT=${OUT:-$root/target/side-by-side/whisper-$(date +%Y%m%d-%H%M%S)}
TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
BIN=$TARGET_DIR/release/whisper-side-by-side

if ! [[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 10 ]]; then
    echo "REPS must be 1-10" >&2
    exit 2
fi
if ! [[ $FILES =~ ^[0-9]+$ && $FILES -ge 1 && $FILES -le 5000 ]]; then
    echo "FILES must be 1-5000 (each file is 1.3 MB)" >&2
    exit 2
fi
[[ -f $PYBENCH ]] || { echo "no $PYBENCH (set PYBENCH)" >&2; exit 2; }

(cd "$root" && cargo build --quiet --release -p benches --bin whisper-side-by-side)
mkdir -p "$OUT"
rm -rf "$WORK"
trap 'rm -rf "$WORK"' EXIT

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD)"
    echo "uncommitted changes under whisper/src: $(git -C "$root" status --short -- whisper/src | wc -l) files"
    echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "work dir fs: $(df -T "${PEERS_TMP:-/tmp}" | awk 'NR==2 {print $2}') ($(findmnt -no OPTIONS -T "${PEERS_TMP:-/tmp}" 2>/dev/null || echo '?'))"
    echo "python whisper: $($PY -c 'import whisper; print(whisper.__file__)')"
    echo "REPS=$REPS FILES=$FILES BATCHES=$BATCHES"
} | tee "$OUT/env.txt"

echo
echo "== same bytes on disk"
now=$(date +%s)
mkdir -p "$WORK/bytes"
timeout "$STEP_TIMEOUT" $PY "$here/make-files.py" "$WORK/bytes/py" "$now" 3
timeout "$STEP_TIMEOUT" "$BIN" --make-files "$WORK/bytes/rs" --now "$now" --files 3
same=0
diff=0
for f in "$WORK"/bytes/rs/*.wsp; do
    name=$(basename "$f")
    py="$WORK/bytes/py/${name/writezeros/zeroed}"
    if cmp -s "$f" "$py"; then
        same=$((same + 1))
    else
        diff=$((diff + 1))
        echo "DIFFERENT: $name vs $(basename "$py")"
    fi
done
echo "$same files identical to whisper.py's, $diff different (modes zeroed, writezeros, fallocate, sparse; empty, batch 1440, batch 10)"
for m in zeroed writezeros fallocate sparse; do
    py_mode=${m/writezeros/zeroed}
    echo "  $m-empty.wsp: ours $(stat -c '%s bytes, %b blocks' "$WORK/bytes/rs/$m-empty.wsp"); whisper.py $(stat -c '%s bytes, %b blocks' "$WORK/bytes/py/$py_mode-empty.wsp")"
done
rm -rf "$WORK/bytes"
[[ $diff -eq 0 ]] || { echo "byte comparison failed" >&2; exit 1; }

run_py() {
    timeout "$STEP_TIMEOUT" $PY "$PYBENCH" --dir "$WORK/py" --files "$FILES" --reps 1 \
        --batches "$BATCHES" --cli-runs 1 >"$OUT/py-$1.txt"
    grep '^BENCH bench=whisper ' "$OUT/py-$1.txt" | sed "s/ rep=1 / rep=$1 /" >>"$OUT/raw.txt"
}
run_rs() {
    timeout "$STEP_TIMEOUT" "$BIN" --dir "$WORK/rs" --files "$FILES" --reps 1 --rep-label "$1" \
        --batches "$BATCHES" >>"$OUT/raw.txt"
}

timed() { # NAME CMD...: sync first (nobody starts with the other's dirty pages), print the wall time
    local name=$1 t0
    shift
    sync
    t0=$(date +%s.%N)
    "$@"
    printf '== %s: %.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

: >"$OUT/raw.txt"
if [[ $SETTLED != 0 ]]; then
    need_kb=$((REPS * 5 * FILES * 1273 * 12 / 10))
    free_kb=$(df -k --output=avail "${PEERS_TMP:-/tmp}" | tail -1)
    if ((free_kb < need_kb)); then
        echo "skipping the settled creates: $((need_kb / 1024)) MB needed, $((free_kb / 1024)) MB free"
    else
        echo
        echo "== creates on a settled fs (nothing is deleted until all $REPS repetitions are done)"
        sync
        echo "waiting ${SETTLE_WAIT}s for earlier deletions to age out of ext4's recently-deleted window"
        sleep "$SETTLE_WAIT"
        create_py() {
            timeout "$STEP_TIMEOUT" $PY "$here/create-only.py" "$WORK/create/py" "$FILES" "$1" "$2" \
                | grep '^BENCH ' >>"$OUT/raw.txt"
        }
        create_rs() {
            timeout "$STEP_TIMEOUT" "$BIN" --create-only "$1" --dir "$WORK/create/rs" \
                --files "$FILES" --rep-label "$2" >>"$OUT/raw.txt"
        }
        for rep in $(seq 1 "$REPS"); do
            steps=("py fallocate" "rs fallocate" "py zeroed" "rs zeroed" "rs writezeros")
            if ((rep % 2 == 0)); then
                steps=("rs writezeros" "rs zeroed" "py zeroed" "rs fallocate" "py fallocate")
            fi
            for step in "${steps[@]}"; do
                set -- $step
                timed "create rep $rep/$REPS $1 $2" "create_$1" "$2" "$rep"
            done
        done
        rm -rf "$WORK/create"
    fi
fi

echo
echo "== bench-whisper.py's sequence (creates here follow mass deletions)"
for rep in $(seq 1 "$REPS"); do
    # Alternate who goes first.
    if ((rep % 2)); then order="py rs"; else order="rs py"; fi
    for who in $order; do
        timed "rep $rep/$REPS $who" "run_$who" "$rep"
    done
done

echo
$PY "$here/compare.py" "$OUT/raw.txt" | tee "$OUT/table.md"
echo
echo "raw lines, table and env: $OUT"
