#!/usr/bin/env bash
# graphite-rs's render API vs graphite-web 1.1.8 (Debian, Django under gunicorn), side by side
# on the same Whisper files, in one run.
#
#   benches/side-by-side/render.sh            # REPS=3: ~4 min (graphite-web's sumSeries and
#                                             # highestAverage over 1,000 series dominate)
#   REPS=1 BIG_NAMES=0 benches/side-by-side/render.sh   # smoke run, ~1.5 min
#
# Data: 1,000 files bench.render.m0..m999 (60s:1d,5m:7d,15m:3y), one day of 60 s points ending
# when the run starts (shared/peers/bench-whisper.py --make-render-data, the files of the
# graphite-web baseline). Every request carries from/until/now as epoch seconds (the day that
# was written), so both servers read the same points however long the run takes.
#
# Cases, each asked of both servers:
#   single         /render?format=json&target=bench.render.m1
#   sumSeries      /render?format=json&target=sumSeries(bench.render.*)
#   highestAverage /render?format=json&target=highestAverage(bench.render.*,10)
#   find           /metrics/find?query=bench.render.*   (1,000 leaves, treejson)
# For each: C1_REQ sequential requests (at most C1_MAX_S seconds) -> p50_ms, p95_ms, rps_c1;
# then CONC concurrent clients, CONC_REQ requests (at most CONC_MAX_S seconds) -> rps_c4. The
# client is shared/peers' `loadgen http` (the one the graphite-web baseline used; it reads
# whole answers, with or without keep-alive). Before measuring, both servers' answers to every
# case are compared (numbers to a relative 1e-9): `check=same` or `check=differs`.
#
#   find-1M        ours only: /metrics/find of one-level globs among BIG_NAMES (1,000,000) names
#                  (`bench.find.*`: 1,000 branches; `bench.find.g500.*`: 1,000 leaves;
#                  `bench.find.g500.m1*`: 111 leaves). The names are not files: a second
#                  graphite-rs (no write-ahead log, writes held back by MAX_UPDATES_PER_SECOND =
#                  0.001, also at shutdown) receives one point for each over plaintext TCP; the
#                  store indexes a name when its first point arrives, so the index holds 1M names
#                  without 1M files (creating and deleting those takes minutes on this disk).
#
# graphite-web runs as shared/peers/graphite-web.sh deploys it (gunicorn, WEB_WORKERS sync
# workers, default 2 = cores; no memcached; CarbonLink queries to an idle carbon-cache, one
# round trip per series, as deployed). Ours: `graphite-rs --data-dir <the files>` with its HTTP
# port on 127.0.0.1:OURS_HTTP_PORT and every carbon listener off. While graphite-rs has no
# HTTP API (`--http-port`), only graphite-web is measured and ours is reported as
# `error=no_http_api`.
#
# Output: BENCH key=value lines (keys: benches/README.md, "Side by side with graphite-web"),
# then a table of medians (min-max) with ours/graphite-web ratios against the issue's 20x.
# Raw lines, the table and the servers' logs go to OUT.
#
# Env: REPS (1-10, default 3), C1_REQ (50), C1_MAX_S (6), CONC (4), CONC_REQ (400),
# CONC_MAX_S (5), BIG_NAMES (1000000; 0 skips find-1M), OURS_HTTP_PORT (22080),
# OURS_BIG_HTTP_PORT (22081), OURS_BIG_LINE_PORT (22003), WEB_WORKERS (2), PEERS
# (../shared/peers), PEERS_TMP (/tmp/graphite-peers), OUT (target/side-by-side/render-<time>),
# GRAPHITE_RS / NO_BUILD=1 (use a built server), KEEP=1 (keep the work dir).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PEERS=${PEERS:-$(cd "$root/../shared/peers" 2>/dev/null && pwd)}
[[ -n $PEERS && -f $PEERS/common.sh ]] || { echo "no shared/peers/common.sh (set PEERS)" >&2; exit 2; }
# shellcheck source=/dev/null
. "$PEERS/common.sh" # log, stop_pid, pid_alive, port_in_use, kv, LOADGEN, PY, WEB_PORT

REPS=${REPS:-3}
C1_REQ=${C1_REQ:-50}
C1_MAX_S=${C1_MAX_S:-6}
CONC=${CONC:-4}
CONC_REQ=${CONC_REQ:-400}
CONC_MAX_S=${CONC_MAX_S:-5}
BIG_NAMES=${BIG_NAMES:-1000000}
OURS_HTTP_PORT=${OURS_HTTP_PORT:-22080}
OURS_BIG_HTTP_PORT=${OURS_BIG_HTTP_PORT:-22081}
OURS_BIG_LINE_PORT=${OURS_BIG_LINE_PORT:-22003}
KEEP=${KEEP:-0}
WORK=$PEERS_TMP/render-side-by-side
OUT=${OUT:-$root/target/side-by-side/render-$(date +%Y%m%d-%H%M%S)}
TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
BIN=${GRAPHITE_RS:-$TARGET_DIR/release/graphite-rs}
RW=$WORK/whisper
FILES=1000
PREFIX=bench.render
BIG_PREFIX=bench.find

if ! [[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 10 ]]; then
    echo "REPS must be 1-10" >&2
    exit 2
fi

# ---------------------------------------------------------------- cleanup: only what we started
OURS_PID=""
BIG_PID=""
cleanup() {
    pid_alive "$OURS_PID" && stop_pid "$OURS_PID" 30
    pid_alive "$BIG_PID" && stop_pid "$BIG_PID" 30
    [[ -d $WORK/graphite-web ]] && WEB_DIR=$WORK/graphite-web "$PEERS/graphite-web.sh" stop >/dev/null 2>&1
    [[ -d $WORK/carbon-cache ]] && CARBON_DIR=$WORK/carbon-cache "$PEERS/carbon-cache.sh" stop >/dev/null 2>&1
    if [[ $KEEP != 1 && -d $WORK ]]; then
        rm -rf "$WORK"
    fi
    return 0
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- build and environment
need_loadgen || exit 1
if [[ ${NO_BUILD:-0} != 1 ]]; then
    log "building graphite-rs (release)"
    (cd "$root" && cargo build --quiet --release -p bins --bin graphite-rs) || { log "build failed"; exit 1; }
fi
[[ -x $BIN ]] || { log "missing $BIN"; exit 1; }
HAVE_HTTP=0
"$BIN" --help 2>/dev/null | grep -q -- '--http-port' && HAVE_HTTP=1
[[ $HAVE_HTTP == 1 ]] || log "graphite-rs has no HTTP API yet (--http-port): measuring graphite-web only"

mkdir -p "$OUT" "$PEERS_TMP"
rm -rf "$WORK"
mkdir -p "$WORK"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD)"
    echo "uncommitted changes under render bins store: $(git -C "$root" status --short -- render bins store | wc -l) files"
    echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
    for p in graphite-web python3-django gunicorn python3-whisper; do
        echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
    done
    echo "REPS=$REPS C1_REQ=$C1_REQ C1_MAX_S=$C1_MAX_S CONC=$CONC CONC_REQ=$CONC_REQ CONC_MAX_S=$CONC_MAX_S BIG_NAMES=$BIG_NAMES http_api=$HAVE_HTTP"
} | tee "$OUT/env.txt" >&2

RAW=$OUT/raw.txt
: >"$RAW"
bench() { echo "BENCH $*" | tee -a "$RAW"; }
enc() { "$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# ---------------------------------------------------------------- data and servers
"$PY" "$PEERS/bench-whisper.py" --make-render-data "$RW" --files "$FILES" --prefix "$PREFIX" 2>&1 | sed 's/^/# /' >&2
T_END=$(($(date +%s) / 60 * 60))
T_RANGE="from=$((T_END - 86400))&until=$T_END&now=$T_END"

# graphite-web as deployed: CarbonLink to an (idle) carbon-cache with its own empty whisper dir.
CARBON_DIR=$WORK/carbon-cache CARBON_CLEAN=1 "$PEERS/carbon-cache.sh" start 2>>"$OUT/peers.log" ||
    { log "carbon-cache did not start (see $OUT/peers.log)"; exit 1; }
WEB_SERVER=gunicorn
[[ -x /usr/bin/gunicorn ]] || { WEB_SERVER=runserver; log "no gunicorn (apt-get install -y gunicorn): graphite-web under runserver, one request at a time"; }
WEB_DIR=$WORK/graphite-web WEB_SERVER=$WEB_SERVER WEB_CARBONLINK=1 "$PEERS/graphite-web.sh" start "$RW" 2>>"$OUT/peers.log" ||
    { log "graphite-web did not start (see $OUT/peers.log)"; exit 1; }

start_ours() { # http_port data_dir storage_dir config|"" [line_port|off] -> pid in STARTED_PID
    local port=$1 data=$2 storage=$3 conf=$4 line=${5:-off} args=()
    mkdir -p "$storage"
    [[ -n $conf ]] && args+=(--config "$conf")
    port_in_use "$port" && { log "port $port in use (set OURS_HTTP_PORT)"; return 1; }
    "$BIN" "${args[@]}" --data-dir "$data" --storage-dir "$storage" --bind 127.0.0.1 \
        --line-port "$line" --udp-port off --pickle-port off --query-port off --no-wal \
        --http-port "$port" --shutdown-timeout 2 --pidfile "$storage/pid" >>"$storage/server.log" 2>&1 &
    STARTED_PID=$!
    local i
    for i in $(seq 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/version" 2>/dev/null) == 200 ]] && return 0
        pid_alive "$STARTED_PID" || break
        sleep 0.1
    done
    log "graphite-rs on :$port did not answer /version; log:"
    tail -20 "$storage/server.log" >&2
    return 1
}

PEER_LIST="graphite-web"
if [[ $HAVE_HTTP == 1 ]]; then
    if start_ours "$OURS_HTTP_PORT" "$RW" "$WORK/ours" ""; then
        OURS_PID=$STARTED_PID
        PEER_LIST="graphite-web ours"
    else
        bench "bench=render-side-by-side peer=ours case=start rep=1 error=start_failed"
    fi
fi
base_url() { [[ $1 == ours ]] && echo "http://127.0.0.1:$OURS_HTTP_PORT" || echo "http://127.0.0.1:$WEB_PORT"; }

# name|path
CASES=(
    "single|/render?format=json&$T_RANGE&target=$(enc "$PREFIX.m1")"
    "sumSeries|/render?format=json&$T_RANGE&target=$(enc "sumSeries($PREFIX.*)")"
    "highestAverage|/render?format=json&$T_RANGE&target=$(enc "highestAverage($PREFIX.*,10)")"
    "find|/metrics/find?query=$(enc "$PREFIX.*")"
)

# ---------------------------------------------------------------- same answers?
for entry in "${CASES[@]}"; do
    name=${entry%%|*} path=${entry#*|}
    for p in $PEER_LIST; do
        curl -s -o "$OUT/answer-$p-$name.json" -w '%{http_code}' "$(base_url "$p")$path" >"$OUT/status-$p-$name.txt"
    done
    if [[ $PEER_LIST == *ours* ]]; then
        check=$("$PY" - "$OUT/answer-graphite-web-$name.json" "$OUT/answer-ours-$name.json" <<'EOF'
import json, math, sys
def load(p):
    text = open(p).read().replace("-1e9999,", "\"-inf\",").replace("1e9999,", "\"inf\",")
    return json.loads(text)
def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, str) or isinstance(b, str):
            return a == b
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
try:
    print("same" if same(load(sys.argv[1]), load(sys.argv[2])) else "differs")
except Exception as e:
    print("differs")
EOF
)
        bench "bench=render-side-by-side peer=both case=$name rep=0 check=$check graphite_web_status=$(cat "$OUT/status-graphite-web-$name.txt") ours_status=$(cat "$OUT/status-ours-$name.txt") graphite_web_bytes=$(stat -c %s "$OUT/answer-graphite-web-$name.json") ours_bytes=$(stat -c %s "$OUT/answer-ours-$name.json")"
    fi
done

# ---------------------------------------------------------------- latency and throughput
measure() { # peer case rep path
    local url r1 r4
    url="$(base_url "$1")$4"
    r1=$("$LOADGEN" http --url "$url" --requests "$C1_REQ" --max-seconds "$C1_MAX_S" --warmup 1 2>/dev/null || true)
    r4=$("$LOADGEN" http --url "$url" --requests "$CONC_REQ" --concurrency "$CONC" --max-seconds "$CONC_MAX_S" --warmup 0 2>/dev/null || true)
    bench "bench=render-side-by-side peer=$1 case=$2 rep=$3 requests=$(kv requests "$r1") p50_ms=$(kv p50_ms "$r1") \
p95_ms=$(kv p95_ms "$r1") max_ms=$(kv max_ms "$r1") rps_c1=$(kv rps "$r1") rps_c$CONC=$(kv rps "$r4") \
requests_c$CONC=$(kv requests "$r4") p50_ms_c$CONC=$(kv p50_ms "$r4") body_bytes=$(kv body_bytes "$r1") status=$(kv status "$r1") \
errors=$(($(kv errors "$r1") + $(kv errors "$r4") + $(kv non200 "$r1") + $(kv non200 "$r4")))"
}

for rep in $(seq "$REPS"); do
    # The peers alternate which goes first, so neither always runs on a warmer machine.
    order=$PEER_LIST
    ((rep % 2 == 0)) && order=$(echo "$PEER_LIST" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')
    for entry in "${CASES[@]}"; do
        name=${entry%%|*} path=${entry#*|}
        for p in $order; do
            log "rep $rep: $p $name"
            measure "$p" "$name" "$rep" "$path"
        done
    done
done
[[ -n $OURS_PID ]] && { stop_pid "$OURS_PID" 30; OURS_PID=""; }
WEB_DIR=$WORK/graphite-web "$PEERS/graphite-web.sh" stop 2>&1 | sed 's/^/# /' >&2
CARBON_DIR=$WORK/carbon-cache "$PEERS/carbon-cache.sh" stop >/dev/null 2>&1

# ---------------------------------------------------------------- find among 1M names (ours)
if [[ $HAVE_HTTP == 1 && $BIG_NAMES -gt 0 ]]; then
    B=$WORK/big
    mkdir -p "$B/conf" "$B/storage/whisper"
    cat >"$B/conf/carbon.conf" <<EOF
[cache]
STORAGE_DIR = $B/storage/
LOCAL_DATA_DIR = $B/storage/whisper/
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 0.001
MAX_UPDATES_PER_SECOND_ON_SHUTDOWN = 0.001
MAX_CREATES_PER_MINUTE = inf
CARBON_METRIC_INTERVAL = 0
EOF
    if start_ours "$OURS_BIG_HTTP_PORT" "$B/storage/whisper" "$B/storage" "$B/conf/carbon.conf" "$OURS_BIG_LINE_PORT"; then
        BIG_PID=$STARTED_PID
        t0=$(date +%s%3N)
        sent=$("$LOADGEN" send --port "$OURS_BIG_LINE_PORT" --metrics "$BIG_NAMES" --points 1 --start "$((T_END - 60))" \
            --step 60 --prefix "$BIG_PREFIX" --fanout 1000 --max-seconds 120 --quiet 2>/dev/null || true)
        # Indexed once the last group's names are all findable.
        last_g=$(((BIG_NAMES - 1) / 1000))
        want=$((BIG_NAMES - last_g * 1000))
        got=0
        for _ in $(seq 600); do
            got=$(curl -s "http://127.0.0.1:$OURS_BIG_HTTP_PORT/metrics/find?query=$BIG_PREFIX.g$last_g.*" |
                "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0)
            ((got >= want)) && break
            sleep 0.2
        done
        index_s=$(awk -v a="$t0" -v b="$(date +%s%3N)" 'BEGIN{printf "%.1f", (b-a)/1000}')
        rss_mb=$(awk '/^VmRSS:/{printf "%.0f", $2/1024}' "/proc/$BIG_PID/status" 2>/dev/null)
        log "find-1M: $BIG_NAMES names sent ($(kv lines "$sent") lines) and indexed in ${index_s}s, RSS ${rss_mb} MB"
        g=$((BIG_NAMES / 2000))
        for rep in $(seq "$REPS"); do
            for q in "$BIG_PREFIX.*" "$BIG_PREFIX.g$g.*" "$BIG_PREFIX.g$g.m1*"; do
                url="http://127.0.0.1:$OURS_BIG_HTTP_PORT/metrics/find?query=$(enc "$q")"
                r1=$("$LOADGEN" http --url "$url" --requests "$C1_REQ" --max-seconds "$C1_MAX_S" --warmup 1 2>/dev/null || true)
                bench "bench=render-side-by-side peer=ours case=find-1M:$q rep=$rep names=$BIG_NAMES indexed=$((got >= want)) \
index_s=$index_s rss_mb=$rss_mb requests=$(kv requests "$r1") p50_ms=$(kv p50_ms "$r1") p95_ms=$(kv p95_ms "$r1") \
max_ms=$(kv max_ms "$r1") rps_c1=$(kv rps "$r1") body_bytes=$(kv body_bytes "$r1") status=$(kv status "$r1") \
errors=$(($(kv errors "$r1") + $(kv non200 "$r1")))"
            done
        done
        stop_pid "$BIG_PID" 30
        BIG_PID=""
    else
        bench "bench=render-side-by-side peer=ours case=find-1M rep=1 error=start_failed"
    fi
fi
[[ $HAVE_HTTP == 1 ]] || bench "bench=render-side-by-side peer=ours case=all rep=1 error=no_http_api"

# ---------------------------------------------------------------- table
"$PY" - "$RAW" "$CONC" <<'EOF' | tee "$OUT/table.md"
import statistics, sys
from collections import OrderedDict

conc = sys.argv[2]
rows = OrderedDict()
checks = {}
for line in open(sys.argv[1]):
    if not line.startswith("BENCH "):
        continue
    kv = dict(p.split("=", 1) for p in line[6:].split() if "=" in p)
    if kv.get("rep") == "0":
        checks[kv.get("case")] = kv.get("check", "-")
        continue
    if "error" in kv:
        continue
    rows.setdefault((kv.get("peer"), kv.get("case")), []).append(kv)

def failed(peer, case):
    """A status other than 200 or failed requests in any repetition: the figures are not
    comparable (an error answers fast)."""
    for kv in rows.get((peer, case), []):
        if kv.get("status") != "200" or kv.get("errors", "0") != "0":
            return "status %s, %s errors" % (kv.get("status"), kv.get("errors"))
    return None

def nums(peer, case, key):
    out = []
    for kv in rows.get((peer, case), []):
        try:
            out.append(float(kv[key]))
        except (KeyError, ValueError):
            pass
    return out

def med(peer, case, key):
    v = nums(peer, case, key)
    return statistics.median(v) if v else None

def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e4: return "%.0fk" % (x / 1e3)
    if a >= 100: return "%.0f" % x
    if a >= 10: return "%.1f" % x
    if a >= 0.1: return "%.2f" % x
    return "%.3f" % x

def cell(peer, case, key):
    why = failed(peer, case)
    if why:
        return "invalid (%s)" % why
    v = nums(peer, case, key)
    if not v:
        return "-"
    return fmt(statistics.median(v)) + (" (%s-%s)" % (fmt(min(v)), fmt(max(v))) if len(v) > 1 else "")

def ratio(a, b, case):
    if failed("ours", case) or failed("graphite-web", case):
        return "-"
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return "%.1fx%s" % (r, " ok" if r >= 20 else " (target 20x)")

cases = [c for (p, c) in rows if p == "graphite-web"]
print("\n**/render and /metrics/find, 1,000 series of a day at 60 s** (medians, min-max)\n")
print("| case | same answer | graphite-web p50 ms | ours p50 ms | p50 ratio | graphite-web req/s c=%s | ours req/s c=%s | req/s ratio |" % (conc, conc))
print("|---|---|---|---|---|---|---|---|")
rk = "rps_c" + conc
for c in cases:
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        c, checks.get(c, "-"), cell("graphite-web", c, "p50_ms"), cell("ours", c, "p50_ms"),
        ratio(med("graphite-web", c, "p50_ms"), med("ours", c, "p50_ms"), c),
        cell("graphite-web", c, rk), cell("ours", c, rk),
        ratio(med("ours", c, rk), med("graphite-web", c, rk), c)))
big = [c for (p, c) in rows if p == "ours" and c.startswith("find-1M")]
if big:
    names = rows[("ours", big[0])][0].get("names", "?")
    print("\n**/metrics/find among %s names, ours** (target for 1M: under 10 ms)\n" % names)
    print("| query | p50 ms | p95 ms | answer bytes |")
    print("|---|---|---|---|")
    for c in big:
        m = med("ours", c, "p50_ms")
        print("| `%s` | %s%s | %s | %s |" % (c.split(":", 1)[1], cell("ours", c, "p50_ms"),
              "" if m is None else (" ok" if m < 10 else " MISSED"), cell("ours", c, "p95_ms"),
              cell("ours", c, "body_bytes")))
EOF
for d in graphite-web carbon-cache ours big/storage; do
    [[ -d $WORK/$d ]] && mkdir -p "$OUT/logs/$d" && cp -r "$WORK/$d"/log* "$WORK/$d"/*.log "$OUT/logs/$d/" 2>/dev/null
done
echo
echo "raw lines, table, answers, env and logs: $OUT"
