#!/usr/bin/env bash
# The statsd server's UDP packet rate on loopback: collect's StatsdServer (one thread: a
# current-thread runtime) receives while a sender blasts datagrams with sendmmsg.
#
#   benches/side-by-side/statsd.sh                 # REPS=3, 5M single-line packets each
#   PACKETS=1000000 REPS=1 benches/side-by-side/statsd.sh   # smoke run, a few seconds
#   LINES=20 benches/side-by-side/statsd.sh        # ~1400-byte batched datagrams
#
# Per repetition: `statsd-load serve` on 127.0.0.1 (a free port), then `statsd-load blast`
# sends PACKETS datagrams of LINES lines over KEYS keys (bounded by MAX_SECONDS), then SIGTERM
# to the receiver, which flushes a last time and prints what its own counters saw
# (statsd.packets_received) and its CPU time (getrusage). Reported:
#   sent_pps      datagrams sent per second (the sender's rate)
#   recv_pps      datagrams the server aggregated / the send time
#   loss          1 - received / sent (the kernel drops what the receive buffer cannot hold:
#                 /proc/net/snmp Udp RcvbufErrors, shown as rcvbuf_errors)
#   cpu_us_per_packet   the receiver's user+system CPU / received datagrams
#   pps_per_core  received / receiver CPU seconds: the rate one core would sustain
# The sender and the receiver share this machine's cores (and with whatever else runs), so
# recv_pps is a floor; pps_per_core is the figure to compare with "1M packets/s per core".
#
# Env: REPS (3), PACKETS (5000000), LINES (1), KEYS (1000), MAX_SECONDS (60), OUT
# (target/side-by-side/statsd-<time>), CARGO (cargo).
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=${REPS:-3}
PACKETS=${PACKETS:-5000000}
LINES=${LINES:-1}
KEYS=${KEYS:-1000}
MAX_SECONDS=${MAX_SECONDS:-60}
OUT=${OUT:-target/side-by-side/statsd-$(date +%Y%m%d-%H%M%S)}
CARGO=${CARGO:-cargo}
mkdir -p "$OUT"

"$CARGO" build --release -q -p benches --bin statsd-load
BIN=target/release/statsd-load

rcvbuf_errors() { awk '/^Udp:/ { if (n++) print $6 }' /proc/net/snmp; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

server_pid=
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

{
  echo "date=$(date -Is) kernel=$(uname -r) cpus=$(nproc) rmem_max=$(cat /proc/sys/net/core/rmem_max)"
  echo "packets=$PACKETS lines=$LINES keys=$KEYS reps=$REPS"
} | tee "$OUT/env"

for rep in $(seq 1 "$REPS"); do
  ready="$OUT/ready.$rep"
  rm -f "$ready"
  "$BIN" serve --addr 127.0.0.1:0 --ready-file "$ready" --flush-ms 1000 > "$OUT/serve.$rep" &
  server_pid=$!
  for _ in $(seq 1 500); do [ -s "$ready" ] && break; sleep 0.02; done
  [ -s "$ready" ] || { echo "receiver not ready" >&2; exit 1; }
  addr=$(cat "$ready")
  errors_before=$(rcvbuf_errors)
  blast=$("$BIN" blast --addr "$addr" --packets "$PACKETS" --lines "$LINES" --keys "$KEYS" \
    --max-seconds "$MAX_SECONDS" | grep '^RESULT')
  sleep 0.5
  errors_after=$(rcvbuf_errors)
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=
  serve=$(grep '^RESULT' "$OUT/serve.$rep")
  sent=$(echo "$blast" | field sent)
  seconds=$(echo "$blast" | field seconds)
  received=$(echo "$serve" | field packets)
  user=$(echo "$serve" | field user_ms)
  sys=$(echo "$serve" | field sys_ms)
  awk -v rep="$rep" -v sent="$sent" -v s="$seconds" -v got="$received" -v u="$user" -v k="$sys" \
      -v e=$((errors_after - errors_before)) 'BEGIN {
    cpu = (u + k) / 1000
    printf "BENCH rep=%d sent=%d seconds=%.3f sent_pps=%.0f received=%d recv_pps=%.0f loss=%.4f rcvbuf_errors=%d cpu_s=%.3f cpu_us_per_packet=%.3f pps_per_core=%.0f\n",
      rep, sent, s, sent / s, got, got / s, 1 - got / sent, e, cpu, cpu * 1e6 / got, got / cpu
  }' | tee -a "$OUT/bench"
done
