#!/bin/bash
# tests/integration/prometheus.sh - the metrics, checked by the Prometheus
# tools themselves (issue 15 item 4; doc/availability.md "Metrics").
#
# Mount with -o metrics_listen= on a random loopback port, write files in a
# table named with a space and look up a missing name (an error counter).
#  1. `promtool check metrics` accepts /metrics (over HTTP) and
#     .quorumfs/metrics: no format error and no lint problem.
#  2. A real Prometheus server, started by the test on 127.0.0.1 with a
#     private storage directory, scrapes the mount once a second: its API
#     reports the target up (up == 1, no scrape error) and the series
#     quorumfs_requests_total{table="tab one",op="write"} with a value > 0.
#     The server is stopped by its PID.
# Skips (77) only when promtool or prometheus is missing (Debian package
# prometheus, installed by contrib/install-deps.sh); under CI (CI=true) a
# missing package is a failure, so CI always runs it.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 curl
for c in promtool prometheus; do
	if ! command -v "$c" >/dev/null 2>&1; then
		[ "${CI:-}" = true ] && { echo "FAIL: $c missing under CI: contrib/install-deps.sh installs the Debian package prometheus" >&2; exit 1; }
		skip "$c is missing: install the Debian package prometheus (contrib/install-deps.sh does)"
	fi
done
set -o pipefail
# two ports the kernel says are free now (free_ports of tests/lib/cluster.sh),
# not a random pick in 20000-39999: that range overlaps the ephemeral ports
# of every connection other tests make (and their TIME_WAITs), so a random
# port could be taken and the mount or prometheus fail to listen
. "$QFS_SRCDIR/tests/lib/cluster.sh"
read -r PORT PPORT < <(free_ports 2)
[ -n "$PPORT" ] || fail "no free TCP ports on 127.0.0.1"
qfs_setup -o metrics_listen=127.0.0.1:$PORT
echo "$QFS_PID" >"$T/daemon.pid"
PROM_PID=
# stop the server first, keeping the exit status for qfs_cleanup
trap 'rc=$?; [ -z "$PROM_PID" ] || kill "$PROM_PID" 2>/dev/null; (exit $rc); qfs_cleanup' EXIT
watchdog 120

TB="tab one"
mkdir "$MNT/$TB" || fail "mkdir table"
for i in 1 2 3; do
	head -c 50000 /dev/urandom >"$T/f$i"
	cp "$T/f$i" "$MNT/$TB/f$i" || fail "write f$i"
	cmp "$T/f$i" "$MNT/$TB/f$i" || fail "read back f$i"
done
stat "$MNT/$TB/missing" >/dev/null 2>&1 && fail "a missing file exists"

# --- 1. promtool check metrics, over HTTP and from the control file
# the frontend publishes its counters within a few seconds
for _ in $(seq 50); do
	curl -sS --max-time 20 -o "$T/metrics.http" "http://127.0.0.1:$PORT/metrics" || fail "curl /metrics"
	grep -q '^quorumfs_requests_total{table="tab one",op="write"} [1-9]' "$T/metrics.http" && break
	sleep 0.2
done
grep -q '^quorumfs_requests_total{table="tab one",op="write"} [1-9]' "$T/metrics.http" ||
	fail "no write counter of 'tab one' in /metrics"
cp "$MNT/.quorumfs/metrics" "$T/metrics.file" || fail "read .quorumfs/metrics"
for f in metrics.http metrics.file; do
	promtool check metrics <"$T/$f" >"$T/promtool.out" 2>&1 ||
		fail "promtool check metrics rejects $f: $(head -20 "$T/promtool.out")"
	[ -s "$T/promtool.out" ] && fail "promtool check metrics reports problems in $f: $(head -20 "$T/promtool.out")"
done
note "promtool check metrics: /metrics and .quorumfs/metrics clean ($(grep -c '^# TYPE' "$T/metrics.http") metric families)"

# --- 2. one scrape (and more) by a real Prometheus server on loopback
mkdir "$T/prom" || fail "mkdir prom"
cat >"$T/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: quorumfs
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
promtool check config "$T/prom/prometheus.yml" >"$T/promcfg.out" 2>&1 || fail "promtool check config: $(cat "$T/promcfg.out")"
prometheus --config.file="$T/prom/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$T/prom.out" 2>&1 &
PROM_PID=$!
# query EXPR: print the API's answer to an instant query
query() { curl -sS --max-time 5 -G "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null; }
# first VALUE of a vector answer, or nothing
value() { python3 -c 'import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'; }
up=
for _ in $(seq 60); do
	kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited: $(tail -5 "$T/prom.out")"
	up=$(query 'up{job="quorumfs"}' | value)
	[ "$up" = 1 ] && break
	sleep 0.5
done
[ "$up" = 1 ] || fail "prometheus does not see the mount up (up=$up): $(curl -sS --max-time 5 "http://127.0.0.1:$PPORT/api/v1/targets" 2>&1 | head -c 600)"
err=$(curl -sS --max-time 5 "http://127.0.0.1:$PPORT/api/v1/targets" | python3 -c 'import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
print(";".join(x.get("lastError", "") for x in t))')
[ -z "$err" ] || fail "the scrape reported an error: $err"
w=
for _ in $(seq 20); do
	w=$(query 'quorumfs_requests_total{table="tab one",op="write"}' | value)
	[ -n "$w" ] && [ "$w" != 0 ] && break
	sleep 0.5
done
[ -n "$w" ] && [ "$w" != 0 ] || fail "prometheus has no write counter of 'tab one' (got '$w')"
note "prometheus scraped the mount: up=1, quorumfs_requests_total{table=\"tab one\",op=\"write\"}=$w"
kill "$PROM_PID" 2>/dev/null
wait "$PROM_PID" 2>/dev/null
PROM_PID=
qfs_umount
note "PASS ($SECONDS s)"
exit 0
