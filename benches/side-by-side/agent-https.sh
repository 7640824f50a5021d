#!/usr/bin/env bash
# Peak resident memory (VmHWM) of graphite-agent running the nginx and httpjson collectors every
# second for DURATION seconds against Debian's nginx, over http and over https with each way of
# checking the server: ca_file (the server's self-signed certificate, as `openssl req -x509`
# makes it), the system's CA store (a copy of Debian's bundle plus a test CA that signed the
# server's certificate, through SSL_CERT_FILE), and tls_verify = false.
#
#   benches/side-by-side/agent-https.sh                       # DURATION=60 per mode
#   AGENT=/path/to/graphite-agent benches/side-by-side/agent-https.sh   # another build
#
# Prints one BENCH line per mode, with the collector failures seen in the log (0 expected).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-60}
WORK=${WORK:-/tmp/graphite-peers/agent-https}
HTTP_PORT=${HTTP_PORT:-18480}
SELF_PORT=${SELF_PORT:-18443}
LEAF_PORT=${LEAF_PORT:-18444}
SINK_PORT=${SINK_PORT:-18403}
MODES=${MODES:-http https-ca https-system https-noverify}
rm -rf "$WORK"; mkdir -p "$WORK"
if [[ -z "${AGENT:-}" ]]; then
    (cd "$root" && cargo build --quiet --release -p bins --bin graphite-agent)
    AGENT=$root/target/release/graphite-agent
fi
command -v openssl >/dev/null && [[ -x /usr/sbin/nginx ]] \
    || { echo "needs openssl and nginx (apt-get install openssl nginx-light)" >&2; exit 1; }

# Certificates: a self-signed one (CA:TRUE, openssl's default) and a leaf signed by a test CA.
C=$WORK/cert; mkdir -p "$C"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 3650 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$C/self-key.pem" -out "$C/self.pem" 2>/dev/null
openssl req -x509 "${ec[@]}" -days 3650 -subj /CN=test-ca \
    -keyout "$C/ca-key.pem" -out "$C/ca.pem" 2>/dev/null
openssl req "${ec[@]}" -subj /CN=localhost -keyout "$C/leaf-key.pem" -out "$C/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$C/leaf.ext"
openssl x509 -req -in "$C/leaf.csr" -CA "$C/ca.pem" -CAkey "$C/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile "$C/leaf.ext" -out "$C/leaf.pem" 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt "$C/ca.pem" >"$C/system-plus-test-ca.pem"

locations='location /nginx_status { stub_status; }
    location /stats.json { default_type application/json;
      return 200 '"'"'{"up": 1, "pool": {"active": 3, "idle": "7"}, "gc": [{"count": 12}]}'"'"'; }'
cat >"$WORK/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid;
error_log $WORK/error.log; events { worker_connections 64; }
http { access_log off; client_body_temp_path $WORK; proxy_temp_path $WORK;
  fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { listen 127.0.0.1:$HTTP_PORT; listen 127.0.0.1:$SELF_PORT ssl;
    ssl_certificate $C/self.pem; ssl_certificate_key $C/self-key.pem;
    $locations }
  server { listen 127.0.0.1:$LEAF_PORT ssl;
    ssl_certificate $C/leaf.pem; ssl_certificate_key $C/leaf-key.pem;
    $locations } }
EOF
/usr/sbin/nginx -p "$WORK" -c "$WORK/nginx.conf" 2>"$WORK/nginx.log" &
ngx=$!

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
trap 'kill $ngx $sink ${agent:-} 2>/dev/null || true' EXIT
sleep 0.5

for mode in $MODES; do
    cert_file=""
    case $mode in
        http) n="req_port = $HTTP_PORT"; j="url = \"http://127.0.0.1:$HTTP_PORT/stats.json\"" ;;
        https-ca) n="req_port = $SELF_PORT
req_ssl = true
ca_file = \"$C/self.pem\""
            j="url = \"https://localhost:$SELF_PORT/stats.json\"
ca_file = \"$C/self.pem\"" ;;
        https-system) n="req_port = $LEAF_PORT
req_ssl = true"
            j="url = \"https://localhost:$LEAF_PORT/stats.json\""
            cert_file=$C/system-plus-test-ca.pem ;;
        https-noverify) n="req_port = $SELF_PORT
req_ssl = true
tls_verify = false"
            j="url = \"https://localhost:$SELF_PORT/stats.json\"
tls_verify = false" ;;
        *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    cat >"$WORK/$mode.toml" <<EOF
[agent]
interval = 1
default_collectors = false
[collectors.nginx]
req_host = "127.0.0.1"
$n
[collectors.httpjson]
$j
[[sender.destinations]]
address = "127.0.0.1:$SINK_PORT"
EOF
    if [[ -n "$cert_file" ]]; then
        SSL_CERT_FILE=$cert_file "$AGENT" --config "$WORK/$mode.toml" >"$WORK/$mode.log" 2>&1 &
    else
        "$AGENT" --config "$WORK/$mode.toml" >"$WORK/$mode.log" 2>&1 &
    fi
    agent=$!
    sleep "$DURATION"
    rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$agent/status")
    kill -TERM "$agent"; wait "$agent" 2>/dev/null || true; agent=""
    failures=$(grep -c "collector failed" "$WORK/$mode.log" || true)
    echo "BENCH bench=agent-https mode=$mode duration_s=$DURATION max_rss_kib=$rss collector_failures=$failures"
done
