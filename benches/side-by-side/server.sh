#!/usr/bin/env bash
# graphite-rs vs carbon-cache (Python) vs InfluxDB 1.6's Graphite listener (Go): end-to-end
# plaintext ingest, side by side in one run on the same loads, peers alternating per repetition.
#
#   benches/side-by-side/server.sh [CASES]     # CASES default: "create existing 10000x60 read mem"
#   REPS=1 benches/side-by-side/server.sh      # one repetition: ~3 min (REPS=3: ~6.5 min),
#                                              # of which 1.3 (2.2) min removing the files
#
# Cases (M x P = METRICS x POINTS, default 100,000 metrics x 10 points at 60 s steps):
#   create    fresh data dir; loadgen sends M x P points over plaintext TCP, every file is a
#             create. Done when loadgen verify finds every metric's last point in its whisper
#             file (then 200 files checked point by point); InfluxDB when its shards report
#             writePointsOk >= points sent (as shared/peers/bench-influx.sh).
#   existing  the M files (series) exist (from `create` in the same repetition, else made first
#             with M x 1 points); the server is restarted and gets M x P newer points.
#   MxP       e.g. 10000x60: fresh data dir, M metrics x P points (bench-carbon.sh's case).
#   read      (READ_PEERS, default "ours carbon") on the M existing files: READ_REQUESTS reads
#             of one metric while the server is idle, then reads for as long as a full-speed
#             M x P send runs (busy), then while the cache is written out (flush). One read =
#             a CarbonLink cache query on the query port + a whisper fetch of the metric's
#             file (the probe is benches/src/bin/read-latency.rs).
#   mem       ours only. Index: RSS after start on an empty data dir vs on the M-file dir,
#             divided by M. Cache: with MAX_UPDATES_PER_SECOND = 0.001 (writers held back),
#             RSS growth after M x P points are received, divided by M x P; the probe checks
#             that a sample of metrics holds all its points in the cache. Then SIGTERM: how long
#             the drain of the whole cache takes, and whether every point reached its file.
#
# Every server runs with carbon-cache.sh's carbon.conf (the same file for ours: MAX_CACHE_SIZE,
# MAX_UPDATES_PER_SECOND and MAX_CREATES_PER_MINUTE = inf, CACHE_WRITE_STRATEGY = sorted,
# WHISPER_FALLOCATE_CREATE = True, retentions 60s:1d,5m:7d, CARBON_METRIC_INTERVAL = 1), on
# 127.0.0.1: ours on 22003 (line) / 22004 (pickle) / 22002 (cache query), carbon-cache on
# 12003/12004/12002, influxd on 12103 (graphite) / 12086 (HTTP) / 12088. Each server is started
# for one case and stopped after it (SIGTERM; the stop time is reported).
#
# Output: BENCH key=value lines (README "Side by side with carbon-cache and InfluxDB" lists the
# keys), then a table of medians (min-max) and ratios against the issue's targets. Raw lines,
# the table, every metric (shared/peers/summarize.py: full.md), env and server logs go to OUT.
#
# Env: REPS (1-10, default 3), METRICS (100000), POINTS (10), SBS_PEERS ("ours carbon influx";
# influx is skipped when /usr/bin/influxd is missing), READ_PEERS ("ours carbon"),
# READ_REQUESTS (1000), READ_PAUSE_US (1000, pause between two reads), READ_SEND_RATE (lines/s
# of the read case's send; default unlimited), VERIFY_INTERVAL (0.2 s),
# MAX_SECONDS (600: no case starts after that, and every wait is capped by what is left; the
# data dirs are removed after, which takes 1-3 min on this ext4),
# OURS_LINE_PORT / OURS_PICKLE_PORT / OURS_QUERY_PORT (22003 / 22004 / 22002),
# PEERS (shared/peers dir), PEERS_TMP (/tmp/graphite-peers; work dir under it), OUT
# (target/side-by-side/server-<time>), GRAPHITE_RS / NO_BUILD=1 (use a built server),
# KEEP=1 (keep the data dirs).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PEERS=${PEERS:-$(cd "$root/../shared/peers" 2>/dev/null && pwd)}
[[ -n $PEERS && -f $PEERS/common.sh ]] || { echo "no shared/peers/common.sh (set PEERS)" >&2; exit 2; }
# shellcheck source=/dev/null
. "$PEERS/common.sh" # log, rss_kb, cpu_ticks, stop_pid, pid_alive, kv, LOADGEN, PY, peer ports

CASES=${1:-"create existing 10000x60 read mem"}
REPS=${REPS:-3}
METRICS=${METRICS:-100000}
POINTS=${POINTS:-10}
SBS_PEERS=${SBS_PEERS:-"ours carbon influx"}
READ_PEERS=${READ_PEERS:-"ours carbon"}
READ_REQUESTS=${READ_REQUESTS:-1000}
READ_PAUSE_US=${READ_PAUSE_US:-1000}
VERIFY_INTERVAL=${VERIFY_INTERVAL:-0.2}
MAX_SECONDS=${MAX_SECONDS:-600}
KEEP=${KEEP:-0}
OURS_LINE_PORT=${OURS_LINE_PORT:-22003}
OURS_PICKLE_PORT=${OURS_PICKLE_PORT:-22004}
OURS_QUERY_PORT=${OURS_QUERY_PORT:-22002}
WORK=$PEERS_TMP/server-side-by-side
OUT=${OUT:-$root/target/side-by-side/server-$(date +%Y%m%d-%H%M%S)}
TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
BIN=${GRAPHITE_RS:-$TARGET_DIR/release/graphite-rs}
PROBE=$TARGET_DIR/release/read-latency
PREFIX=bench.ingest

if ! [[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 10 ]]; then
    echo "REPS must be 1-10" >&2
    exit 2
fi
if ! [[ $METRICS =~ ^[0-9]+$ && $POINTS =~ ^[0-9]+$ && $METRICS -ge 1000 && $POINTS -ge 1 ]]; then
    echo "METRICS (>= 1000) and POINTS (>= 1) must be integers" >&2
    exit 2
fi
# Every repetition uses 5 windows of POINTS minutes, all inside the 60 s archive (1 day).
if ((REPS * 5 * POINTS * 60 >= 86400 - 3600)); then
    echo "REPS x 5 x POINTS minutes must fit in the 1-day 60 s archive" >&2
    exit 2
fi
if [[ " $SBS_PEERS " == *" influx "* && ! -x /usr/bin/influxd ]]; then
    log "no /usr/bin/influxd (apt-get install -y influxdb): InfluxDB skipped"
    SBS_PEERS=$(echo " $SBS_PEERS " | sed 's/ influx / /; s/^ *//; s/ *$//')
fi

T_START=$(date +%s)
left() { echo $((MAX_SECONDS - ($(date +%s) - T_START))); }
# cap N: N seconds, or what is left of the run if less (at least 5).
cap() {
    local l
    l=$(left)
    ((l < $1)) && { ((l < 5)) && echo 5 || echo "$l"; } || echo "$1"
}
out_of_time() {
    if (($(left) < 20)); then
        log "time cap (MAX_SECONDS=$MAX_SECONDS) reached: skipping $*"
        return 0
    fi
    return 1
}

# ---------------------------------------------------------------- cleanup: only what we started
OURS_PID=""
BG_PIDS=""
WATCHDOG=""
cleanup() {
    local p
    for p in $BG_PIDS; do pid_alive "$p" && kill -TERM "$p" 2>/dev/null; done
    if pid_alive "$OURS_PID"; then stop_pid "$OURS_PID" 60; fi
    for d in "$WORK"/carbon-*; do
        [[ -d $d ]] && CARBON_DIR=$d "$PEERS/carbon-cache.sh" stop >/dev/null 2>&1
    done
    for d in "$WORK"/influx-*; do
        [[ -d $d ]] && INFLUX_DIR=$d "$PEERS/influxdb.sh" stop >/dev/null 2>&1
    done
    [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
    if [[ $KEEP != 1 && -d $WORK ]]; then
        # Unlinking is slow here (ext4 with discard: ~0.3 ms a file), so the data dirs go in
        # parallel, once nothing is measured any more.
        log "removing $WORK ($(du -sh "$WORK" 2>/dev/null | cut -f1))"
        for d in "$WORK"/*; do rm -rf "$d" & done
        wait
        rm -rf "$WORK"
    fi
    return 0
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- build and environment
need_loadgen || exit 1
if [[ ${NO_BUILD:-0} != 1 ]]; then
    log "building graphite-rs and read-latency (release)"
    if ! (cd "$root" && cargo build --quiet --release -p bins -p benches --bin graphite-rs --bin read-latency); then
        log "build failed"
        exit 1
    fi
fi
[[ -x $BIN && -x $PROBE ]] || { log "missing $BIN or $PROBE"; exit 1; }

mkdir -p "$OUT" "$PEERS_TMP"
rm -rf "$WORK"
mkdir -p "$WORK"
# Whisper files of 60s:1d,5m:7d are 41.5 kB, for ours and carbon-cache, in every repetition.
files=$((2 * METRICS))
for c in $CASES; do [[ $c =~ ^([0-9]+)x[0-9]+$ ]] && files=$((files + 2 * BASH_REMATCH[1])); done
need_kb=$((REPS * files * 45))
free_kb=$(df -k --output=avail "$PEERS_TMP" | tail -1)
if ((free_kb < need_kb)); then
    log "need about $((need_kb / 1024)) MB free under $PEERS_TMP, have $((free_kb / 1024)) MB (lower REPS)"
    exit 2
fi
# A last resort if a step overruns its caps: TERM ourselves (the trap stops every server).
(
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep $((MAX_SECONDS + 120)) &
    s=$!
    wait "$s" && kill -TERM $$ 2>/dev/null
) &
WATCHDOG=$!

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD)"
    echo "uncommitted changes under store bins whisper carbon-proto: $(git -C "$root" status --short -- store bins whisper carbon-proto | wc -l) files"
    echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "work dir fs: $(df -T "$PEERS_TMP" | awk 'NR==2 {print $2}') ($(findmnt -no OPTIONS -T "$PEERS_TMP" 2>/dev/null || echo '?'))"
    for p in graphite-carbon python3-whisper influxdb; do
        echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
    done
    echo "CASES=\"$CASES\" REPS=$REPS METRICS=$METRICS POINTS=$POINTS SBS_PEERS=\"$SBS_PEERS\" READ_PEERS=\"$READ_PEERS\" READ_SEND_RATE=${READ_SEND_RATE:-max} VERIFY_INTERVAL=$VERIFY_INTERVAL MAX_SECONDS=$MAX_SECONDS"
} | tee "$OUT/env.txt" >&2

RAW=$OUT/raw.txt
: >"$RAW"
bench() { # the line goes to stdout and to raw.txt
    echo "BENCH $*" | tee -a "$RAW"
}

# Timestamps: all windows are in the past, disjoint across repetitions and cases, so every
# point a case sends is new to the files. Window k (1-5) of repetition r:
#   start = T_BASE - (((REPS - r) * 5 + k) * POINTS - 1) * 60, POINTS points at 60 s.
T_BASE=$(($(date +%s) / 60 * 60))
window_start() { # rep k
    echo $((T_BASE - ((((REPS - $1) * 5 + $2) * POINTS) - 1) * 60))
}
W_MEM=1 W_READ=2 W_EXISTING=3 W_CREATE=4 W_PREP=5

mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1000}'; } # ms ms -> s
rate() { awk -v n="$1" -v s="$2" 'BEGIN{printf "%.0f", (s>0)?n/s:0}'; }
now_ms() { date +%s%3N; }
num() { # KEY LINE -> the value, 0 if missing
    local v
    v=$(kv "$1" "$2")
    echo "${v:-0}"
}

# ---------------------------------------------------------------- servers
# SRV_PID, SRV_WSP, SRV_LINE, SRV_QUERY describe the running server.
peer_dir() { echo "$WORK/$1-$2"; } # peer dataset

write_ours_conf() { # dir held(0|1)
    CARBON_DIR=$1 CARBON_LINE_PORT=$OURS_LINE_PORT CARBON_PICKLE_PORT=$OURS_PICKLE_PORT \
        CARBON_QUERY_PORT=$OURS_QUERY_PORT CARBON_METRIC_INTERVAL=1 "$PEERS/carbon-cache.sh" conf >/dev/null
    if [[ $2 == 1 ]]; then
        sed -i 's/^MAX_UPDATES_PER_SECOND = inf$/MAX_UPDATES_PER_SECOND = 0.001/' "$1/conf/carbon.conf"
    fi
}

start_peer() { # peer dataset clean(0|1) [held(0|1)]
    local peer=$1 d clean=$3 held=${4:-0}
    d=$(peer_dir "$1" "$2")
    mkdir -p "$d"
    case $peer in
    ours)
        [[ $clean == 1 ]] && rm -rf "$d/storage"
        write_ours_conf "$d" "$held"
        rm -f "$d/ready" "$d/pid"
        local p w
        for p in $OURS_LINE_PORT $OURS_PICKLE_PORT $OURS_QUERY_PORT; do
            # Someone else's server may still be stopping: give it 30 s.
            for w in $(seq 60); do port_in_use "$p" || break; sleep 0.5; done
            port_in_use "$p" && { log "port $p in use (set OURS_*_PORT)"; return 1; }
        done
        # store::persister logs "cache empty committed_total=N unix_ms=T" at debug level:
        # when everything received so far is on disk (server_done_s below).
        RUST_LOG=${RUST_LOG:-info,store::persister=debug} \
        "$BIN" --config "$d/conf/carbon.conf" --bind 127.0.0.1 --line-port "$OURS_LINE_PORT" \
            --pickle-port "$OURS_PICKLE_PORT" --query-port "$OURS_QUERY_PORT" --udp-port off \
            --ready-file "$d/ready" --pidfile "$d/pid" >>"$d/log/server.log" 2>&1 &
        OURS_PID=$!
        local i=0
        while [[ ! -s $d/ready ]] && pid_alive "$OURS_PID" && ((i < 1200)); do
            sleep 0.05
            i=$((i + 1))
        done
        if [[ ! -s $d/ready ]]; then
            log "graphite-rs did not become ready; log:"
            tail -20 "$d/log/server.log" >&2
            pid_alive "$OURS_PID" && stop_pid "$OURS_PID" 10
            OURS_PID=""
            return 1
        fi
        SRV_PID=$OURS_PID SRV_WSP=$d/storage/whisper SRV_LINE=$OURS_LINE_PORT SRV_QUERY=$OURS_QUERY_PORT
        ;;
    carbon)
        CARBON_DIR=$d CARBON_CLEAN=$clean CARBON_METRIC_INTERVAL=1 "$PEERS/carbon-cache.sh" start 2>>"$OUT/peers.log" || return 1
        SRV_PID=$(cat "$d/carbon-cache.pid" 2>/dev/null)
        SRV_WSP=$d/storage/whisper SRV_LINE=$CARBON_LINE_PORT SRV_QUERY=$CARBON_QUERY_PORT
        ;;
    influx)
        INFLUX_DIR=$d INFLUX_CLEAN=$clean "$PEERS/influxdb.sh" start 2>>"$OUT/peers.log" || return 1
        SRV_PID=$(cat "$d/influxd.pid" 2>/dev/null)
        SRV_WSP="" SRV_LINE=$INFLUX_GRAPHITE_PORT SRV_QUERY=""
        ;;
    esac
    pid_alive "$SRV_PID" || { log "$peer: no process after start"; return 1; }
}

# stop_peer peer dataset -> STOP_S (SIGTERM until the process is gone), EXIT_CODE
stop_peer() {
    local peer=$1 d t0
    d=$(peer_dir "$1" "$2")
    t0=$(now_ms)
    EXIT_CODE=""
    case $peer in
    ours)
        kill -TERM "$OURS_PID" 2>/dev/null
        local i=0
        # Our default --shutdown-timeout is 120 s; give it that and a little more.
        while pid_alive "$OURS_PID" && ((i < 3000)); do
            sleep 0.05
            i=$((i + 1))
        done
        if pid_alive "$OURS_PID"; then
            log "graphite-rs still running 150 s after SIGTERM: SIGKILL"
            kill -KILL "$OURS_PID" 2>/dev/null
        fi
        wait "$OURS_PID" 2>/dev/null
        EXIT_CODE=$?
        OURS_PID=""
        ;;
    carbon)
        CARBON_DIR=$d "$PEERS/carbon-cache.sh" stop 2>>"$OUT/peers.log"
        EXIT_CODE=$(awk -F': ' '/Exit status/{print $2}' "$d/time-v.txt" 2>/dev/null)
        ;;
    influx)
        INFLUX_DIR=$d "$PEERS/influxdb.sh" stop 2>>"$OUT/peers.log"
        EXIT_CODE=$(awk -F': ' '/Exit status/{print $2}' "$d/time-v.txt" 2>/dev/null)
        ;;
    esac
    STOP_S=$(secs "$t0" "$(now_ms)")
}

# Lines in our log that report a problem (warnings, errors, panics) since the server started.
ours_log_problems() { # dir line_before
    tail -n +"$(($2 + 1))" "$1/log/server.log" 2>/dev/null | grep -cE ' (WARN|ERROR) |panicked' || true
}

influx_stored() {
    local st
    st=$(INFLUX_DIR=$1 "$PEERS/influxdb.sh" stats 2>/dev/null || true)
    local v
    v=$(kv shard_write_points_ok "$st")
    echo "${v:-0}"
}

influx_count() { # series -> count(value)
    curl -s -G "http://127.0.0.1:$INFLUX_HTTP_PORT/query" --data-urlencode "db=graphite" \
        --data-urlencode "q=SELECT count(value) FROM \"$1\"" |
        "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["results"][0]["series"][0]["values"][0][1])' 2>/dev/null || echo 0
}

# wait_done peer dir metrics points start t0 lines -> DONE_S, DONE_OK, DONE_DETAIL
wait_done() {
    local peer=$1 d=$2 metrics=$3 points=$4 start=$5 t0=$6 lines=$7
    if [[ $peer == influx ]]; then
        local stored=0 deadline=$(($(date +%s) + $(cap 300)))
        DONE_OK=0
        while (($(date +%s) < deadline)); do
            stored=$(influx_stored "$d")
            if ((stored >= lines)); then DONE_OK=1; break; fi
            sleep 0.1
        done
        DONE_S=$(secs "$t0" "$(now_ms)")
        DONE_DETAIL="stored_points=$stored"
    else
        local vres
        vres=$("$LOADGEN" verify --whisper-dir "$SRV_WSP" --prefix "$PREFIX" --metrics "$metrics" \
            --points "$points" --start "$start" --step 60 --wait "$(cap 400)" --interval "$VERIFY_INTERVAL" \
            --t0-ms "$t0" --quiet 2>>"$OUT/verify.log")
        DONE_S=$(kv seconds_since_t0 "$vres")
        DONE_OK=$(kv ok "$vres")
        DONE_OK=${DONE_OK:-0}
        DONE_DETAIL="verify_incomplete=$(kv incomplete "$vres") verify_points_found=$(kv points_found "$vres")/$(kv points_expected "$vres") verify_value_mismatch=$(kv value_mismatch "$vres")"
        [[ $DONE_OK == 1 ]] || log "WARNING: $peer verify failed: $vres"
        # What one complete verify pass costs once everything is there: on_disk_s includes
        # up to one such pass (plus VERIFY_INTERVAL), which matters for a fast server.
        local v0
        v0=$(now_ms)
        "$LOADGEN" verify --whisper-dir "$SRV_WSP" --prefix "$PREFIX" --metrics "$metrics" --points "$points" \
            --start "$start" --step 60 --quiet >/dev/null 2>&1
        DONE_DETAIL="$DONE_DETAIL verify_pass_s=$(secs "$v0" "$(now_ms)")"
    fi
}

# ours_done_s dir log_before t0_ms lines: seconds from t0 until our server had written every
# point received since t0, from its own "cache empty" log events (no verify polling in it).
ours_done_s() {
    tail -n +"$(($2 + 1))" "$1/log/server.log" | grep "cache empty" |
        sed -E 's/.*committed_total=([0-9]+).*unix_ms=([0-9]+).*/\1 \2/' |
        awk -v t0="$3" -v n="$4" '
            $2 < t0 { base = $1; next }
            $1 >= base + n { printf "%.3f", ($2 - t0) / 1000; found = 1; exit }
            END { if (!found) printf "nan" }'
}

# Points per metric already in each peer's big dataset (InfluxDB's spot check counts them).
declare -A BIG_POINTS=()

# ---------------------------------------------------------------- ingest cases
# run_ingest peer case dataset clean metrics points start rep
run_ingest() {
    local peer=$1 case=$2 ds=$3 clean=$4 metrics=$5 points=$6 start=$7 rep=$8 d
    d=$(peer_dir "$peer" "$ds")
    out_of_time "$peer $case" && return 1
    log "$peer: $case ($metrics x $points, start $start)"
    local log_before=0
    [[ $peer == ours ]] && log_before=$(wc -l 2>/dev/null <"$d/log/server.log" || echo 0)
    if ! start_peer "$peer" "$ds" "$clean"; then
        bench "bench=$peer-ingest case=$case rep=$rep error=start_failed"
        return 1
    fi
    [[ $clean == 1 ]] && BIG_POINTS[$peer-$ds]=0
    local pid=$SRV_PID rss_idle ticks0 ticks1 t0 res lines
    rss_idle=$(rss_kb "$pid" | awk '{print $1}')
    ticks0=$(cpu_ticks "$pid")
    t0=$(now_ms)
    res=$("$LOADGEN" send --port "$SRV_LINE" --metrics "$metrics" --points "$points" --start "$start" \
        --step 60 --prefix "$PREFIX" --max-seconds "$(cap 300)" --drain-timeout "$(cap 300)" --quiet)
    lines=$(kv lines "$res")
    lines=${lines:-0}
    local rss_acc
    rss_acc=$(rss_kb "$pid" | awk '{print $1}')
    wait_done "$peer" "$d" "$metrics" "$points" "$start" "$t0" "$lines"
    ticks1=$(cpu_ticks "$pid")
    local hwm extra=""
    hwm=$(rss_kb "$pid" | awk '{print $2}')
    BIG_POINTS[$peer-$ds]=$((${BIG_POINTS[$peer-$ds]:-0} + points))
    if [[ $peer == influx ]]; then
        local cnt
        cnt=$(influx_count "$PREFIX.g0.m1")
        extra="spot_count=$cnt spot_expected=${BIG_POINTS[$peer-$ds]}"
        [[ $cnt == "${BIG_POINTS[$peer-$ds]}" ]] || DONE_OK=0
    else
        sleep 2 # the self-metrics of the last second reach their files
        extra=$("$PY" "$PEERS/carbon-selfstats.py" "$SRV_WSP" --since $((t0 / 1000 - 2)) 2>/dev/null || echo selfstats=error)
    fi
    pid_alive "$pid" || log "WARNING: $peer died during $case"
    stop_peer "$peer" "$ds"
    [[ $peer == ours ]] && extra="$extra log_problems=$(ours_log_problems "$d" "$log_before") server_done_s=$(ours_done_s "$d" "$log_before" "$t0" "$lines")"
    local on_disk=${DONE_S:-0}
    bench "bench=$peer-ingest case=$case rep=$rep metrics=$metrics points=$lines" \
        "accept_s=$(kv seconds "$res") accept_points_per_s=$(kv points_per_s "$res")" \
        "on_disk_s=$on_disk on_disk_points_per_s=$(rate "$lines" "$on_disk") verify_ok=$DONE_OK" \
        "rss_idle_mb=$(mb "$rss_idle") rss_after_accept_mb=$(mb "$rss_acc") peak_rss_mb=$(mb "$hwm")" \
        "cpu_s=$(awk -v a="$ticks0" -v b="$ticks1" 'BEGIN{printf "%.2f", (b-a)/100}')" \
        "stop_s=$STOP_S exit_code=${EXIT_CODE:-?} $DONE_DETAIL $extra"
    if [[ $DONE_OK == 1 && $ds == "$BIG" ]]; then echo "$rep" >"$d/.big-ready"; fi
    [[ $DONE_OK == 1 ]]
}

# ensure_big peer rep: the M files (series) exist for this repetition's later cases.
ensure_big() {
    local d
    d=$(peer_dir "$1" "$BIG")
    [[ -f $d/.big-ready ]] && return 0
    log "$1: making the $METRICS files first ($METRICS x 1 points)"
    run_ingest "$1" "prep-${METRICS}x1" "$BIG" 1 "$METRICS" 1 "$(window_start "$2" $W_PREP)" "$2" >/dev/null
}

# ---------------------------------------------------------------- read latency
read_case() { # peer rep
    local peer=$1 rep=$2 d
    d=$(peer_dir "$peer" "$BIG")
    [[ $peer == influx ]] && { log "influx has no cache query port: no read case"; return; }
    out_of_time "$peer read" && return
    ensure_big "$peer" "$rep" || { bench "bench=$peer-read case=${METRICS}x$POINTS rep=$rep error=prep_failed"; return; }
    log "$peer: read latency, idle then during a $METRICS x $POINTS send"
    start_peer "$peer" "$BIG" 0 || { bench "bench=$peer-read case=${METRICS}x$POINTS rep=$rep error=start_failed"; return; }
    local metric=$PREFIX.g$((METRICS / 2 / 1000)).m1 start idle busy flush res t0 lg vf
    start=$(window_start "$rep" $W_READ)
    local probe=("$PROBE" --port "$SRV_QUERY" --metric "$metric" --whisper-dir "$SRV_WSP" --pause-us "$READ_PAUSE_US")
    idle=$("${probe[@]}" --requests "$READ_REQUESTS" --label idle --max-seconds "$(cap 60)" 2>>"$OUT/probe.log")
    t0=$(now_ms)
    "$LOADGEN" send --port "$SRV_LINE" --metrics "$METRICS" --points "$POINTS" --start "$start" --step 60 \
        ${READ_SEND_RATE:+--rate "$READ_SEND_RATE"} --prefix "$PREFIX" --max-seconds "$(cap 300)" \
        --drain-timeout "$(cap 300)" --quiet >"$WORK/send.out" &
    lg=$!
    BG_PIDS="$BG_PIDS $lg"
    busy=$("${probe[@]}" --while-pid "$lg" --label busy --max-seconds "$(cap 300)" 2>>"$OUT/probe.log")
    wait "$lg"
    res=$(cat "$WORK/send.out")
    "$LOADGEN" verify --whisper-dir "$SRV_WSP" --prefix "$PREFIX" --metrics "$METRICS" --points "$POINTS" \
        --start "$start" --step 60 --wait "$(cap 400)" --interval "$VERIFY_INTERVAL" --t0-ms "$t0" --quiet \
        >"$WORK/verify.out" 2>>"$OUT/verify.log" &
    vf=$!
    BG_PIDS="$BG_PIDS $vf"
    flush=$("${probe[@]}" --while-pid "$vf" --label flush --max-seconds "$(cap 400)" 2>>"$OUT/probe.log")
    wait "$vf"
    local vres
    vres=$(cat "$WORK/verify.out")
    BIG_POINTS[$peer-$BIG]=$((${BIG_POINTS[$peer-$BIG]:-0} + POINTS))
    stop_peer "$peer" "$BIG"
    local line="bench=$peer-read case=${METRICS}x$POINTS rep=$rep metric=$metric"
    local phase r k
    for phase in idle busy flush; do
        r=${!phase}
        line="$line ${phase}_requests=$(kv requests "$r") ${phase}_errors=$(($(num errors "$r") + $(num wsp_errors "$r")))"
        for k in cq_p50_us cq_p90_us cq_p99_us cq_max_us cq_over_1ms wsp_p50_us wsp_p99_us wsp_max_us \
            read_p50_us read_p90_us read_p99_us read_max_us read_over_1ms; do
            line="$line ${phase}_$k=$(kv "$k" "$r")"
        done
    done
    local ratio
    for k in cq_p50_us cq_p99_us wsp_p50_us wsp_p99_us read_p50_us read_p99_us; do
        ratio=$(awk -v a="$(kv "$k" "$idle")" -v b="$(kv "$k" "$busy")" 'BEGIN{printf "%.2f", (a>0)?b/a:0}')
        line="$line busy_ratio_${k%_us}=$ratio"
    done
    bench "$line busy_cached_points_last=$(kv cq_points_last "$busy")" \
        "send_rate=${READ_SEND_RATE:-max} send_accept_s=$(kv seconds "$res") on_disk_s=$(kv seconds_since_t0 "$vres") verify_ok=$(kv ok "$vres") stop_s=$STOP_S exit_code=${EXIT_CODE:-?}"
}

# ---------------------------------------------------------------- memory (ours)
rss_now() { rss_kb "$1" | awk '{print $1}'; }
# RSS once it stops growing (two samples 0.5 s apart within 0.5 %), at most 10 s.
rss_settled() {
    local a b i
    a=$(rss_now "$1")
    for i in $(seq 20); do
        sleep 0.5
        b=$(rss_now "$1")
        if awk -v a="$a" -v b="$b" 'BEGIN{exit !(b <= a * 1.005 && b >= a * 0.995)}'; then break; fi
        a=$b
    done
    echo "$b"
}

mem_case() { # rep
    local rep=$1 d
    d=$(peer_dir ours "$BIG")
    out_of_time "ours mem" && return
    ensure_big ours "$rep" || { bench "bench=ours-mem case=${METRICS}x$POINTS rep=$rep error=prep_failed"; return; }
    log "ours: memory (index of $METRICS metrics; $METRICS x $POINTS points cached, writers held back)"
    start_peer ours "empty-r$rep" 1 || { bench "bench=ours-mem case=${METRICS}x$POINTS rep=$rep error=start_failed"; return; }
    sleep 1
    local rss_empty
    rss_empty=$(rss_settled "$SRV_PID")
    stop_peer ours "empty-r$rep"
    local log_before
    log_before=$(wc -l 2>/dev/null <"$d/log/server.log" || echo 0)
    start_peer ours "$BIG" 0 1 || { bench "bench=ours-mem case=${METRICS}x$POINTS rep=$rep error=start_failed"; return; }
    local pid=$SRV_PID open_ms indexed
    open_ms=$(tail -n +"$((log_before + 1))" "$d/log/server.log" | grep -o 'store open.*' | grep -o 'took_ms=[0-9]*' | tail -1)
    indexed=$(tail -n +"$((log_before + 1))" "$d/log/server.log" | grep -o 'store open.*' | grep -o ' metrics=[0-9]*' | tail -1)
    sleep 1
    local rss_index start t0 res
    rss_index=$(rss_settled "$pid")
    start=$(window_start "$rep" $W_MEM)
    t0=$(now_ms)
    res=$("$LOADGEN" send --port "$SRV_LINE" --metrics "$METRICS" --points "$POINTS" --start "$start" \
        --step 60 --prefix "$PREFIX" --max-seconds "$(cap 300)" --drain-timeout "$(cap 300)" --quiet)
    local lines rss_cached hwm cached
    lines=$(kv lines "$res")
    rss_cached=$(rss_settled "$pid")
    hwm=$(rss_kb "$pid" | awk '{print $2}')
    cached=$("$PROBE" --count-cached --port "$SRV_QUERY" --prefix "$PREFIX" --metrics "$METRICS" --sample 100 2>>"$OUT/probe.log")
    stop_peer ours "$BIG"
    local vres
    vres=$("$LOADGEN" verify --whisper-dir "$SRV_WSP" --prefix "$PREFIX" --metrics "$METRICS" --points "$POINTS" \
        --start "$start" --step 60 --quiet 2>>"$OUT/verify.log")
    BIG_POINTS[ours-$BIG]=$((${BIG_POINTS[ours-$BIG]:-0} + POINTS))
    bench "bench=ours-mem case=${METRICS}x$POINTS rep=$rep indexed_metrics=${indexed# metrics=} index_load_ms=${open_ms#took_ms=}" \
        "rss_empty_mb=$(mb "$rss_empty") rss_index_mb=$(mb "$rss_index")" \
        "index_bytes_per_metric=$(awk -v a="$rss_empty" -v b="$rss_index" -v n="$METRICS" 'BEGIN{printf "%.0f", (b-a)*1024/n}')" \
        "points=$lines accept_s=$(kv seconds "$res") rss_cached_mb=$(mb "$rss_cached") peak_rss_mb=$(mb "$hwm")" \
        "cache_bytes_per_point=$(awk -v a="$rss_index" -v b="$rss_cached" -v n="${lines:-0}" 'BEGIN{printf "%.1f", (n>0)?(b-a)*1024/n:0}')" \
        "sample_cached_points=$(kv cached_points "$cached") sample_expected_points=$((100 * POINTS)) sample_errors=$(kv errors "$cached")" \
        "drain_stop_s=$STOP_S exit_code=${EXIT_CODE:-?} drain_verify_ok=$(kv ok "$vres") drain_verify_incomplete=$(kv incomplete "$vres")" \
        "cached_at_stop=$(tail -n +"$((log_before + 1))" "$d/log/server.log" | grep -o 'writing the cache to disk cached_points=[0-9]*' | grep -o '[0-9]*$' | tail -1)" \
        "log_problems=$(ours_log_problems "$d" "$log_before")"
}

# ---------------------------------------------------------------- the run
for rep in $(seq "$REPS"); do
    # Alternate who goes first.
    order=$SBS_PEERS
    ((rep % 2 == 0)) && order=$(echo "$SBS_PEERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    log "=== repetition $rep/$REPS (order: $order)"
    # Each repetition has its own data dirs, all removed at the end: on this ext4 (no journal)
    # creating files right after deleting many is slow for anyone (benches/README.md, notes).
    BIG=big-r$rep
    for c in $CASES; do
        case $c in
        create)
            for p in $order; do
                run_ingest "$p" "create-${METRICS}x$POINTS" "$BIG" 1 "$METRICS" "$POINTS" "$(window_start "$rep" $W_CREATE)" "$rep"
            done
            ;;
        existing)
            for p in $order; do
                out_of_time "$p existing" && continue
                ensure_big "$p" "$rep" || continue
                run_ingest "$p" "existing-${METRICS}x$POINTS" "$BIG" 0 "$METRICS" "$POINTS" "$(window_start "$rep" $W_EXISTING)" "$rep"
            done
            ;;
        read)
            for p in $order; do
                [[ " $READ_PEERS " == *" $p "* ]] && read_case "$p" "$rep"
            done
            ;;
        mem)
            [[ " $SBS_PEERS " == *" ours "* ]] && mem_case "$rep"
            ;;
        [0-9]*x[0-9]*)
            m=${c%x*} n=${c#*x}
            for p in $order; do
                run_ingest "$p" "create-$c" "$c-r$rep" 1 "$m" "$n" $((T_BASE - (n - 1) * 60)) "$rep"
            done
            ;;
        *) log "unknown case $c (create existing read mem MxP)" ;;
        esac
    done
done
log "run took $(($(date +%s) - T_START)) s"

# ---------------------------------------------------------------- tables
"$PY" - "$RAW" <<'EOF' | tee "$OUT/table.md"
import statistics, sys
from collections import OrderedDict

rows = OrderedDict()
for line in open(sys.argv[1]):
    if not line.startswith("BENCH "):
        continue
    kv = dict(p.split("=", 1) for p in line[6:].split() if "=" in p)
    rows.setdefault((kv.get("bench"), kv.get("case")), []).append(kv)

def nums(bench, case, key):
    out = []
    for kv in rows.get((bench, case), []):
        try:
            out.append(float(kv[key]))
        except (KeyError, ValueError):
            pass
    return out

def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e6: return "%.2fM" % (x / 1e6)
    if a >= 1e4: return "%.0fk" % (x / 1e3)
    if a >= 100: return "%.0f" % x
    if a >= 10: return "%.1f" % x
    return "%.2f" % x

def med(bench, case, key):
    v = nums(bench, case, key)
    return statistics.median(v) if v else None

def cell(bench, case, key):
    v = nums(bench, case, key)
    if not v:
        return "-"
    m = statistics.median(v)
    return fmt(m) + (" (%s-%s)" % (fmt(min(v)), fmt(max(v))) if len(v) > 1 else "")

def ratio(a, b, target=None):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    mark = "" if target is None else (" ok" if r >= target else " (target %gx)" % target)
    return "%.1fx%s" % (r, mark)

def oks(bench, case):
    rs = rows.get((bench, case), [])
    return "%d/%d" % (sum(1 for kv in rs if kv.get("verify_ok") == "1"), len(rs))

cases = []
for (b, c) in rows:
    if b.endswith("-ingest") and not c.startswith("prep") and c not in cases:
        cases.append(c)
peers = [p for p in ("ours", "carbon", "influx") if any(b == p + "-ingest" for b, _ in rows)]
targets = {"create-100000x10": {"carbon": 10}, "existing-100000x10": {"carbon": 30, "influx": 2}}
if cases:
    print("\n**Ingest, plaintext TCP, first byte until every point is stored** (medians, min-max)\n")
    head = ["case", "metric"] + peers + ["ours / " + p for p in peers if p != "ours"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for c in cases:
        for key, label in (("on_disk_points_per_s", "stored points/s"), ("on_disk_s", "stored s"),
                           ("accept_points_per_s", "accepted points/s"), ("peak_rss_mb", "peak RSS MB"),
                           ("cpu_s", "CPU s"), ("points_per_update", "points per update"),
                           ("verify_pass_s", "one verify pass s"),
                           ("server_done_s", "all written, server's log s"), ("stop_s", "stop s")):
            cells = [cell(p + "-ingest", c, key) for p in peers]
            rats = []
            for p in peers:
                if p == "ours":
                    continue
                a, b = med("ours-ingest", c, key), med(p + "-ingest", c, key)
                if key == "on_disk_points_per_s":
                    rats.append(ratio(a, b, targets.get(c, {}).get(p)))
                elif key in ("accept_points_per_s",):
                    rats.append(ratio(a, b))
                else:
                    rats.append("")
            print("| %s | %s | %s |" % (c, label, " | ".join(cells + rats)))
        print("| %s | verified | %s |%s" % (c, " | ".join(oks(p + "-ingest", c) for p in peers),
                                          " |" * (len(peers) - 1)))

reads = [(b, c) for (b, c) in rows if b.endswith("-read")]
if reads:
    print("\n**Read latency (cache query + whisper fetch of one metric), idle vs during ingest** (us; target: busy <= 2x idle)\n")
    print("| peer | what | idle p50 | idle p99 | busy p50 | busy p99 | busy/idle p50 | busy/idle p99 | flush p50 | flush p99 | busy reads | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b, c in reads:
        for what in ("cq", "wsp", "read"):
            r50, r99 = med(b, c, "busy_ratio_%s_p50" % what), med(b, c, "busy_ratio_%s_p99" % what)
            errs = sum(nums(b, c, "idle_errors") + nums(b, c, "busy_errors") + nums(b, c, "flush_errors"))
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                b[:-5], {"cq": "cache query", "wsp": "whisper fetch", "read": "both"}[what],
                cell(b, c, "idle_%s_p50_us" % what), cell(b, c, "idle_%s_p99_us" % what),
                cell(b, c, "busy_%s_p50_us" % what), cell(b, c, "busy_%s_p99_us" % what),
                fmt(r50) + ("" if r50 is None else (" ok" if r50 <= 2 else " (> 2x)")),
                fmt(r99) + ("" if r99 is None else (" ok" if r99 <= 2 else " (> 2x)")),
                cell(b, c, "flush_%s_p50_us" % what), cell(b, c, "flush_%s_p99_us" % what),
                cell(b, c, "busy_requests"), errs))

mems = [(b, c) for (b, c) in rows if b == "ours-mem"]
for b, c in mems:
    print("\n**Memory, ours (%s)**\n" % c)
    print("| metric | value | target |")
    print("|---|---|---|")
    bp, bm = med(b, c, "cache_bytes_per_point"), med(b, c, "index_bytes_per_metric")
    print("| cache bytes per cached point | %s | <= 40%s |" % (cell(b, c, "cache_bytes_per_point"), "" if bp is None else (" ok" if bp <= 40 else " MISSED")))
    print("| index bytes per metric | %s | <= 100%s |" % (cell(b, c, "index_bytes_per_metric"), "" if bm is None else (" ok" if bm <= 100 else " MISSED")))
    for k, label in (("rss_empty_mb", "RSS, empty data dir (MB)"), ("rss_index_mb", "RSS, indexed files (MB)"),
                     ("rss_cached_mb", "RSS, all points cached (MB)"), ("index_load_ms", "index load at start (ms)"),
                     ("sample_cached_points", "points cached for 100 sampled metrics"),
                     ("cached_at_stop", "points in the cache at SIGTERM (our log)"),
                     ("drain_stop_s", "SIGTERM to exit, draining the cache (s)")):
        print("| %s | %s | |" % (label, cell(b, c, k)))
    print("| every drained point in its file | %d/%d | |" % (sum(1 for kv in rows[(b, c)] if kv.get("drain_verify_ok") == "1"), len(rows[(b, c)])))
EOF
"$PY" "$PEERS/summarize.py" "$RAW" >"$OUT/full.md"
for p in ours carbon influx; do
    for d in "$WORK/$p"-*; do
        [[ -d $d/log ]] && mkdir -p "$OUT/logs/$(basename "$d")" && cp -r "$d/log/." "$OUT/logs/$(basename "$d")/" 2>/dev/null
    done
done
echo
echo "raw lines, tables, env and logs: $OUT"
