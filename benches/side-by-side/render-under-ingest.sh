#!/usr/bin/env bash
# Issue 4's "ingest never blocks reads": /render latency of one metric while graphite-rs
# ingests 100,000 metrics x 10 points at full speed (files already exist), against the same
# request on the idle server. Ours only (carbon-cache has no /render).
#
#   benches/side-by-side/render-under-ingest.sh     # REPS=3 by default, ~1 minute per rep
#
# Each rep: a fresh data dir; a first 100k x 10 send creates the files (and is waited for);
# then IDLE_REQ sequential /render requests (idle), then the second 100k x 10 send runs while
# a client repeats the same request for BUSY_S (1) seconds: the send takes ~0.4 s and the
# writes to the files end ~1.1 s after it started (busy). Prints BENCH lines with
# p50/p99 of both and the busy/idle ratios (target: busy <= 2x idle).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
IDLE_REQ=${IDLE_REQ:-1000}
LOADGEN=${LOADGEN:-$root/../shared/peers/tools/loadgen/target/release/loadgen}
BIN=${GRAPHITE_RS:-$root/target/release/graphite-rs}
HTTP_PORT=${HTTP_PORT:-18090}
LINE_PORT=${LINE_PORT:-18091}
WORK=${WORK:-/tmp/graphite-peers/render-under-ingest}
[[ -x $LOADGEN ]] || { echo "no loadgen at $LOADGEN (cargo build --release in shared/peers/tools/loadgen)" >&2; exit 1; }
(cd "$root" && cargo build --quiet --release -p bins --bin graphite-rs)

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
for rep in $(seq "$REPS"); do
    rm -rf "$WORK"; mkdir -p "$WORK"
    "$BIN" --storage-dir "$WORK" --bind 127.0.0.1 --line-port "$LINE_PORT" --udp-port off \
        --pickle-port off --query-port off --http-port "$HTTP_PORT" >"$WORK/server.log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/version" >/dev/null && break; sleep 0.1; done
    start=$(( $(date +%s) / 60 * 60 - 1200 ))
    "$LOADGEN" send --port "$LINE_PORT" --metrics 100000 --points 10 --start "$start" >/dev/null 2>&1
    "$LOADGEN" verify --whisper-dir "$WORK/whisper" --metrics 100000 --points 10 --start "$start" \
        --sample 200 --wait 60 >/dev/null 2>&1 || true
    url="http://127.0.0.1:$HTTP_PORT/render?format=json&target=loadgen.g50.m1&from=-1h"
    idle=$("$LOADGEN" http --url "$url" --requests "$IDLE_REQ" --max-seconds 30 2>/dev/null | grep RESULT)
    "$LOADGEN" send --port "$LINE_PORT" --metrics 100000 --points 10 --start "$((start + 600))" >"$WORK/send2.txt" 2>&1 &
    send=$!
    busy=$("$LOADGEN" http --url "$url" --requests 100000 --max-seconds "${BUSY_S:-1}" 2>/dev/null | grep RESULT)
    wait "$send"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    trap - EXIT
    ip50=$(kv p50_ms "$idle"); ip99=$(kv p99_ms "$idle"); bp50=$(kv p50_ms "$busy"); bp99=$(kv p99_ms "$busy")
    echo "BENCH bench=render-under-ingest rep=$rep idle_p50_ms=$ip50 idle_p99_ms=$ip99 busy_p50_ms=$bp50 busy_p99_ms=$bp99 busy_requests=$(kv requests "$busy") p50_ratio=$(awk -v a="$bp50" -v b="$ip50" 'BEGIN{printf "%.2f", a/b}') p99_ratio=$(awk -v a="$bp99" -v b="$ip99" 'BEGIN{printf "%.2f", a/b}')"
done
[[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
