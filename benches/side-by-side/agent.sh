#!/usr/bin/env bash
# graphite-agent vs collectd, side by side: the CPU time each spends collecting the default
# set every 10 s for DURATION seconds, and each one's peak resident memory (VmHWM).
#
#   benches/side-by-side/agent.sh                 # DURATION=600 (10 minutes)
#   DURATION=120 benches/side-by-side/agent.sh    # a shortened run
#
# Ours: graphite-agent (release build) with no collector settings: cpu, memory, loadavg,
# diskspace, iostat, vmstat, network, sockets, tcp every 10 s.
# collectd (Debian's collectd-core, installed with apt-get when missing) with the equivalent
# read plugins every 10 s: cpu, memory, load, df, disk, interface, vmem, protocols (the Tcp and
# TcpExt counters of /proc/net/snmp and /proc/net/netstat, our tcp collector's sources) and
# tcpconns (connection states; the nearest to our sockets collector, which reads sockstat).
# Both send over plaintext TCP to the same local sink (a Python listener that discards), so
# the sending costs are counted too. Both start together and run the same wall time.
# Prints one BENCH line per program and the ratio.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-600}
WORK=${WORK:-/tmp/graphite-peers/agent-bench}
SINK_PORT=${SINK_PORT:-18203}
rm -rf "$WORK"; mkdir -p "$WORK"

if ! command -v collectd >/dev/null && [[ ! -x /usr/sbin/collectd ]]; then
    echo "installing collectd-core" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq collectd-core) >&2
fi
COLLECTD=$(command -v collectd || echo /usr/sbin/collectd)
PLUGINS=$(dirname "$(dpkg -L collectd-core | grep '/cpu.so$' | head -1)")
(cd "$root" && cargo build --quiet --release -p bins --bin graphite-agent)
AGENT=$root/target/release/graphite-agent

# The sink: accepts any number of connections and throws the bytes away.
/usr/bin/python3 - "$SINK_PORT" >"$WORK/sink.log" 2>&1 <<'PY' &
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
def drain(c):
    while c.recv(65536): pass
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
sink=$!
trap 'kill $sink ${agent:-} ${cd_pid:-} 2>/dev/null || true' EXIT
sleep 0.5

cat >"$WORK/agent.toml" <<EOF2
[agent]
interval = 10
[[sender.destinations]]
address = "127.0.0.1:$SINK_PORT"
EOF2

cat >"$WORK/collectd.conf" <<EOF2
Hostname "bench"
FQDNLookup false
Interval 10
PluginDir "$PLUGINS"
BaseDir "$WORK"
PIDFile "$WORK/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin vmem
LoadPlugin protocols
LoadPlugin tcpconns
LoadPlugin write_graphite
<Plugin tcpconns>
  AllPortsSummary true
</Plugin>
<Plugin write_graphite>
  <Node "sink">
    Host "127.0.0.1"
    Port "$SINK_PORT"
    Protocol "tcp"
  </Node>
</Plugin>
EOF2

"$AGENT" --config "$WORK/agent.toml" >"$WORK/agent.log" 2>&1 &
agent=$!
"$COLLECTD" -f -C "$WORK/collectd.conf" >"$WORK/collectd.log" 2>&1 &
cd_pid=$!
sleep 1
kill -0 "$agent" || { cat "$WORK/agent.log"; exit 1; }
kill -0 "$cd_pid" || { cat "$WORK/collectd.log"; exit 1; }
sleep "$DURATION"

# CPU seconds of a live process: the sum over its threads of the scheduler's on-CPU time
# (/proc/PID/task/*/schedstat, nanoseconds; the tick counts of /proc/PID/stat are 10 ms
# coarse, too coarse for a few seconds of work). Peak RSS in KiB from VmHWM.
cpu_s() {
    local total=0 ns _
    for f in /proc/"$1"/task/*/schedstat; do read -r ns _ <"$f"; total=$((total + ns)); done
    awk -v n="$total" 'BEGIN { printf "%.4f", n / 1e9 }'
}
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
a_cpu=$(cpu_s "$agent"); a_rss=$(hwm_kb "$agent")
c_cpu=$(cpu_s "$cd_pid"); c_rss=$(hwm_kb "$cd_pid")
kill -TERM "$agent" "$cd_pid"; wait "$agent" 2>/dev/null || true; wait "$cd_pid" 2>/dev/null || true
echo "BENCH bench=agent program=graphite-agent duration_s=$DURATION cpu_s=$a_cpu max_rss_kib=$a_rss"
echo "BENCH bench=agent program=collectd duration_s=$DURATION cpu_s=$c_cpu max_rss_kib=$c_rss"
echo "BENCH bench=agent cpu_ratio_agent_over_collectd=$(awk -v a="$a_cpu" -v c="$c_cpu" 'BEGIN { printf "%.2f", (c > 0 ? a / c : 0) }') agent_rss_mib=$(awk -v r="$a_rss" 'BEGIN { printf "%.1f", r / 1024 }')"
