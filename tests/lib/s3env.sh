# tests/lib/s3env.sh - a real S3-compatible server for the tests: s3rver
# (npm) behind the SigV4-verifying proxy tests/lib/s3proxy.js, both on free
# loopback ports.  Source it after tests/lib/common.sh (it uses skip/fail).
#
#   s3env_require              skip (77) unless node and the npm modules of
#                              tests/node are installed
#   s3env_start DIR [BUCKET]   start s3rver on DIR (fresh data directory,
#                              BUCKET created at startup, default qfs-test)
#                              and the proxy in front of it; sets S3RVER_PID,
#                              S3RVER_PORT, PROXY_PID, PROXY_PORT, S3_BUCKET,
#                              S3_DATA (s3rver's files: BUCKET/KEY._S3rver_object),
#                              S3_ENDPOINT (the proxy: what clients use) and
#                              exports AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
#                              (s3rver's only account, S3RVER/S3RVER)
#   s3env_stop_s3rver          stop s3rver (the proxy then answers 503)
#   s3env_restart_s3rver       start it again on the same port and data
#   s3env_stop_proxy           stop the proxy (clients get connection refused)
#   s3env_restart_proxy        start the proxy again on the same port
#   s3env_cleanup              stop whatever is running (call it from your
#                              EXIT trap; processes are stopped by PID)
#
# Everything listens on 127.0.0.1 only.  Logs: $S3ENV_DIR/{s3rver,proxy}.log;
# the proxy logs one "s3proxy: reject CODE ..." line per refused request.

: "${QFS_SRCDIR:?source tests/lib/common.sh first}"
S3ENV_NODE_MODULES=$QFS_SRCDIR/tests/node/node_modules
S3RVER_PID=
PROXY_PID=

s3env_require() {
	command -v node >/dev/null 2>&1 || skip "node is not installed (run contrib/install-node-deps.sh)"
	local m
	for m in s3rver/bin/s3rver.js @smithy/signature-v4/package.json @aws-crypto/sha256-js/package.json; do
		[ -e "$S3ENV_NODE_MODULES/$m" ] ||
			skip "npm module ${m%%/package.json} is missing in tests/node (run contrib/install-node-deps.sh)"
	done
}

# _s3env_wait_port FILE PID NAME: wait until FILE holds a port
_s3env_wait_port() {
	local i
	for i in $(seq 100); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { cat "$S3ENV_DIR/$3.log" >&2; fail "$3 exited at startup"; }
		sleep 0.05
	done
	cat "$S3ENV_DIR/$3.log" >&2
	fail "$3 did not start within 5 s"
}

_s3env_run_s3rver() {
	local port=$1
	: >"$S3ENV_DIR/s3rver.log"
	# --openssl-legacy-provider: s3rver encrypts continuation tokens with
	# DES, which OpenSSL 3 only offers through its legacy provider.
	node --openssl-legacy-provider "$S3ENV_NODE_MODULES/s3rver/bin/s3rver.js" -d "$S3_DATA" \
		-a 127.0.0.1 -p "$port" --silent --service-endpoint localhost \
		--configure-bucket "$S3_BUCKET" >"$S3ENV_DIR/s3rver.log" 2>&1 &
	S3RVER_PID=$!
	local i
	for i in $(seq 200); do
		S3RVER_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$S3ENV_DIR/s3rver.log")
		[ -n "$S3RVER_PORT" ] && return 0
		kill -0 "$S3RVER_PID" 2>/dev/null || { cat "$S3ENV_DIR/s3rver.log" >&2; fail "s3rver exited at startup"; }
		sleep 0.05
	done
	fail "s3rver did not start within 10 s"
}

_s3env_run_proxy() {
	local port=${1:-0}
	rm -f "$S3ENV_DIR/proxy.port"
	node "$QFS_SRCDIR/tests/lib/s3proxy.js" --target "127.0.0.1:$S3RVER_PORT" \
		--port-file "$S3ENV_DIR/proxy.port" --listen-port "$port" \
		--access-key S3RVER --secret S3RVER --region us-east-1 >>"$S3ENV_DIR/proxy.log" 2>&1 &
	PROXY_PID=$!
	_s3env_wait_port "$S3ENV_DIR/proxy.port" "$PROXY_PID" proxy
	PROXY_PORT=$(cat "$S3ENV_DIR/proxy.port")
}

s3env_start() {
	S3ENV_DIR=$1
	S3_BUCKET=${2:-qfs-test}
	S3_DATA=$S3ENV_DIR/s3data
	mkdir -p "$S3_DATA"
	_s3env_run_s3rver 0
	_s3env_run_proxy 0
	S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
	AWS_ACCESS_KEY_ID=S3RVER
	AWS_SECRET_ACCESS_KEY=S3RVER
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	unset AWS_SESSION_TOKEN
	# answering? (a signed request through the proxy: 200 from s3rver)
	curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$S3_ENDPOINT/$S3_BUCKET?list-type=2&max-keys=1" ||
		{ cat "$S3ENV_DIR/proxy.log" >&2; fail "s3rver behind the proxy does not answer"; }
}

_s3env_kill() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	local i
	for i in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	kill -9 "$1" 2>/dev/null || true
}

s3env_stop_s3rver() { _s3env_kill "$S3RVER_PID"; S3RVER_PID=; }
s3env_restart_s3rver() { _s3env_run_s3rver "$S3RVER_PORT"; }
s3env_stop_proxy() { _s3env_kill "$PROXY_PID"; PROXY_PID=; }
s3env_restart_proxy() { _s3env_run_proxy "$PROXY_PORT"; }

s3env_cleanup() {
	s3env_stop_proxy
	s3env_stop_s3rver
}
