#!/usr/bin/env bash
# graphite-relay vs carbon-c-relay 3.7 (Debian), side by side on the same input and routes:
# loadgen send -> relay (127.0.0.1:RELAY_PORT, plaintext TCP) -> loadgen sink(s).
#
#   benches/side-by-side/relay.sh [CASES]      CASES default: "forward:2000000:1 forward:2000000:4 ch2:2000000:4"
#   REPS=1 benches/side-by-side/relay.sh       ~2 min per repetition
#
# Each case is ROUTE:LINES:CONNS:
#   forward  `cluster out forward <sink>; match * send to out stop;` (shared/peers/bench-relay.sh)
#   ch2      `cluster out fnv1a_ch <sink1> <sink2>; match * send to out stop;` (two sinks)
# Both relays read the same carbon-c-relay config file. carbon-c-relay runs as
# shared/peers/carbon-c-relay.sh runs it (-s -w 2 -b 2500 -L 4) with -q 1000000 (the q1m
# baseline; the upstream default -q 25000 throttles it to ~50k points/s). graphite-relay runs
# with its defaults (2 I/O threads, 100k-point memory queue per destination, batches of 2500,
# no spool: a full queue is backpressure), self-metrics off (-s for carbon-c-relay).
#
# Per run (BENCH lines):
#   relayed_points_per_s  lines seen by the sink(s) / (last byte at a sink - loadgen's first byte)
#   send_points_per_s     rate at which the relay read its input (loadgen's drain check)
#   relay_cpu_pct         relay user+sys CPU / that wall time (200% = both cores)
#   relay_peak_rss_mb     VmHWM
#   lost_points           lines sent - lines the sinks saw (must be 0 for ours)
#
# Env: REPS (3), RELAY_PORT (12013), SINK_PORT (12014; the second sink SINK_PORT+1),
# PEERS (shared/peers), OUT (target/side-by-side/relay-<time>), NO_BUILD=1, LOADGEN.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PEERS=${PEERS:-$(cd "$root/../shared/peers" 2>/dev/null && pwd)}
[[ -n $PEERS && -f $PEERS/common.sh ]] || { echo "no shared/peers/common.sh (set PEERS)" >&2; exit 2; }
TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
# Build loadgen into our target dir rather than the shared folder.
: "${LOADGEN:=$TARGET_DIR/loadgen/release/loadgen}"
# shellcheck source=/dev/null
. "$PEERS/common.sh"

CASES=${1:-"forward:2000000:1 forward:2000000:4 ch2:2000000:4"}
REPS=${REPS:-3}
OUT=${OUT:-$TARGET_DIR/side-by-side/relay-$(date +%Y%m%d-%H%M%S)}
BIN=${GRAPHITE_RELAY:-$TARGET_DIR/release/graphite-relay}
WORK=$PEERS_TMP/relay-side-by-side
mkdir -p "$OUT" "$WORK"

if [[ ${NO_BUILD:-0} != 1 ]]; then
    log "building graphite-relay (release)"
    (cd "$root" && cargo build --quiet --release -p bins --bin graphite-relay) || exit 1
fi
if [[ ! -x $LOADGEN ]]; then
    log "building loadgen"
    (cd "$PEERS/tools/loadgen" && CARGO_TARGET_DIR=$TARGET_DIR/loadgen cargo build --quiet --release) || exit 1
fi
[[ -x /usr/bin/carbon-c-relay ]] || { log "carbon-c-relay is not installed"; exit 2; }

write_conf() { # route -> $WORK/relay.conf
    local s1="127.0.0.1:$SINK_PORT" s2="127.0.0.1:$((SINK_PORT + 1))"
    {
        echo "listen type linemode 127.0.0.1:$RELAY_PORT proto tcp ;"
        case "$1" in
            forward) echo "cluster out forward $s1 ;" ;;
            ch2) echo "cluster out fnv1a_ch $s1 $s2 ;" ;;
            *) log "unknown route $1"; exit 2 ;;
        esac
        echo "match * send to out stop ;"
    } >"$WORK/relay.conf"
}

start_relay() { # peer -> echo pid
    if [[ $1 == crelay ]]; then
        /usr/bin/carbon-c-relay -f "$WORK/relay.conf" -s -w 2 -b 2500 -q 1000000 -L 4 \
            -l "$WORK/crelay.log" >"$WORK/crelay.out" 2>&1 &
    else
        RUST_LOG=warn "$BIN" --crelay-config "$WORK/relay.conf" --metric-interval 0 \
            >"$WORK/ours.out" 2>&1 &
    fi
    echo $!
}

run_case() { # peer case rep
    local peer=$1 route lines conns rep=$3
    IFS=: read -r route lines conns <<<"$2"
    local metrics=100000 points=$((lines / 100000))
    [[ $points -lt 1 ]] && { metrics=$lines; points=1; }
    lines=$((metrics * points))
    write_conf "$route"
    local nsinks=1; [[ $route == ch2 ]] && nsinks=2
    local sink_pids=() i
    for ((i = 0; i < nsinks; i++)); do
        "$LOADGEN" sink --port $((SINK_PORT + i)) --idle-exit 3 --max-seconds 180 --quiet \
            >"$WORK/sink$i.out" 2>/dev/null &
        sink_pids+=($!)
        wait_port $((SINK_PORT + i)) 5 || { log "sink $i did not start"; return 1; }
    done
    local rpid; rpid=$(start_relay "$peer")
    if ! wait_port "$RELAY_PORT" 15; then
        log "$peer did not open $RELAY_PORT"; kill "$rpid" 2>/dev/null; return 1
    fi
    local ticks0 ticks1 res
    ticks0=$(cpu_ticks "$rpid")
    res=$("$LOADGEN" send --port "$RELAY_PORT" --metrics "$metrics" --points "$points" --conns "$conns" \
        --prefix bench.relay --max-seconds 180 --quiet)
    for p in "${sink_pids[@]}"; do wait "$p" || true; done
    ticks1=$(cpu_ticks "$rpid")
    local hwm; hwm=$(rss_kb "$rpid" | awk '{print $2}')
    stop_pid "$rpid" 15
    wait "$rpid" 2>/dev/null || true
    local got=0 last=0 s l t
    for ((i = 0; i < nsinks; i++)); do
        s=$(grep RESULT "$WORK/sink$i.out" || true)
        l=$(kv lines "$s"); t=$(kv last_unix_ms "$s")
        got=$((got + ${l:-0}))
        [[ ${t:-0} -gt $last ]] && last=$t
    done
    local t0 wall
    t0=$(kv t0_ms "$res")
    wall=$(awk -v a="$t0" -v b="$last" 'BEGIN{printf "%.4f", (b-a)/1000}')
    echo "BENCH bench=relay-sbs peer=$peer case=$route-c$conns rep=$rep lines=$lines received=$got lost_points=$((lines - got)) \
relayed_points_per_s=$(awk -v l="$got" -v w="$wall" 'BEGIN{printf "%.0f", (w>0)?l/w:0}') wall_s=$wall \
send_points_per_s=$(kv points_per_s "$res") relay_cpu_s=$(awk -v a="$ticks0" -v b="$ticks1" 'BEGIN{printf "%.2f", (b-a)/100}') \
relay_cpu_pct=$(awk -v a="$ticks0" -v b="$ticks1" -v w="$wall" 'BEGIN{printf "%.0f", (w>0)?(b-a)/w:0}') \
relay_peak_rss_mb=$(awk -v k="$hwm" 'BEGIN{printf "%.1f", k/1024}')" | tee -a "$OUT/bench.txt"
}

for rep in $(seq "$REPS"); do
    for c in $CASES; do
        # Alternate which peer goes first per repetition.
        if ((rep % 2)); then order="ours crelay"; else order="crelay ours"; fi
        for peer in $order; do run_case "$peer" "$c" "$rep"; done
    done
done

# Medians per peer and case.
awk '
/^BENCH/ {
    peer=""; cse=""; rate=""; cpu=""; lost=""; rss=""
    for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "peer") peer = kv[2]; else if (kv[1] == "case") cse = kv[2]
        else if (kv[1] == "relayed_points_per_s") rate = kv[2]; else if (kv[1] == "relay_cpu_pct") cpu = kv[2]
        else if (kv[1] == "lost_points") lost = kv[2]; else if (kv[1] == "relay_peak_rss_mb") rss = kv[2]
    }
    k = cse " " peer; n[k]++; r[k, n[k]] = rate; c[k, n[k]] = cpu; lo[k] += lost; m[k, n[k]] = rss; keys[k] = 1
}
function med(a, k, cnt,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = a[k, i] + 0
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return v[int((cnt + 1) / 2)]
}
END {
    printf "%-14s %-7s %14s %9s %9s %12s\n", "case", "peer", "points/s", "cpu%", "rss_mb", "lost(total)"
    for (k in keys) { split(k, p, " "); printf "%-14s %-7s %14d %9d %9.1f %12d\n", p[1], p[2], med(r, k, n[k]), med(c, k, n[k]), med(m, k, n[k]), lo[k] }
}' "$OUT/bench.txt" | sort | tee "$OUT/summary.txt"
log "raw lines and summary in $OUT"
