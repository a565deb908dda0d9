# tests/lib/cluster.sh - helpers for tests that run `quorumfs node`
# processes on 127.0.0.1 and a router mount (cluster.sh, cluster4.sh,
# cluster_split.sh, logrep.sh, tests/upgrade/rolling.sh).  Source it after tests/lib/common.sh.
#
# The caller sets: T (its temp dir), C (the cluster file), NODE_PIDS=""
# (its trap kills them), SMNT (the mount whose .quorumfs/status is read).
# Nodes live in $T/nID; start_node records PID<ID> and appends to NODE_PIDS.

# free_ports N: N free TCP ports on 127.0.0.1 (bound, then released),
# drawn at random from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range), so that no socket bound to port 0 later
# (a router's own endpoint, an outgoing connection) can take one of them
# before its node listens on it: a CI run lost logrep.sh that way (node 2's
# port went to node 1's router endpoint).  With an ephemeral range that
# starts below 12000, ports come from the kernel as before.
free_ports() {
	python3 -c '
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 0
ss, ports = [], []
while len(ss) < n:
    s = socket.socket()
    port = random.randrange(10000, lo) if lo >= 12000 else 0
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    ss.append(s)
    ports.append(s.getsockname()[1])
print(" ".join(str(p) for p in ports))' "$1"
}

# new_key FILE: a random cluster key, mode 0600.
new_key() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"
	chmod 600 "$1"
}

# cluster_file AZ...: a key in $T/key and the cluster file $C (default
# $T/cluster) of nodes 1..N in the AZs given, on free loopback ports; sets
# AZS (az_of ID prints node ID's AZ).
cluster_file() {
	local i=1 ports
	AZS="$*"
	C=${C:-$T/cluster}
	new_key "$T/key"
	read -r -a ports <<<"$(free_ports $#)"
	{
		for az in "$@"; do
			echo "node $i az $az addr 127.0.0.1:${ports[$((i - 1))]}"
			i=$((i + 1))
		done
		echo "key key"
	} >"$C"
}
az_of() { echo $AZS | cut -d' ' -f"$1"; }

# cluster_watchdog SECONDS: a hang is a failure: TERM this script (its
# trap stops the nodes and mounts) after SECONDS.
cluster_watchdog() {
	( for _ in $(seq "$1"); do sleep 1; kill -0 $$ 2>/dev/null || exit 0; done
	  echo "FAIL: watchdog: still running after $1 s" >&2; kill -TERM $$ ) &
}

# start_node ID [CLUSTER [BIN]]: start node ID (a daemon) from BIN (default
# $QFS_BIN) with CLUSTER (default $C), record its PID.  HEAL_AFTER set:
# -o heal_after=$HEAL_AFTER (log replicas, doc/cluster.md), else the
# node's default.  NODE_OPTS set: appended to -o (e.g. seal_size=64K).
start_node() {
	local bin=${3:-$QFS_BIN} p
	"$bin" node -o "cluster=${2:-$C},id=$1${HEAL_AFTER:+,heal_after=$HEAL_AFTER}${NODE_OPTS:+,$NODE_OPTS}" "$T/n$1" 2>>"$T/node.err" ||
		fail "node $1 did not start from $bin: $(tail -n 3 "$T/node.err")"
	p=$(cat "$T/n$1/lock")
	[ -n "$p" ] && kill -0 "$p" || fail "node $1: no live pid in its lock file"
	NODE_PIDS="$NODE_PIDS $p"
	eval "PID$1=$p"
}
pid_of() { eval "echo \$PID$1"; }

# status: the remote status of $SMNT (node lines, then replica lines
# "group G node N az A role R ballot B leader L last N durable N commit N applied N").
status() { cat "$SMNT/.quorumfs/status"; }
# applied NODE GROUP: that replica's applied LSN (empty if it does not answer).
applied() {
	status | awk -v n="$1" -v g="$2" '$1 == "group" && $2 == g && $3 == "node" && $4 == n {
		for (i = 5; i < NF; i++) if ($i == "applied") print $(i + 1) }'
}
leader_of() {
	status | awk -v g="$1" '$1 == "group" && $2 == g && / role leader / { print $4; exit }'
}
# leader_wait GROUP: leader_of GROUP, waited for (30 s at most: a
# re-election after a missed heartbeat on a loaded machine leaves none for
# a moment, and one reading could see that); empty if none came.
leader_wait() {
	local l= _
	for _ in $(seq 300); do
		l=$(leader_of "$1")
		[ -n "$l" ] && break
		sleep 0.1
	done
	echo "$l"
}
# caught_up NODE GROUP [OTHERS...]: wait (20 s at most) until NODE applied
# what OTHERS (default: nodes 1 2 3 but NODE) did, as of now.
caught_up() {
	local n=$1 g=$2 want=0 a o
	shift 2
	[ $# -gt 0 ] || set -- 1 2 3
	for o in "$@"; do
		[ "$o" = "$n" ] && continue
		a=$(applied "$o" "$g")
		[ -n "$a" ] && [ "$a" -gt "$want" ] && want=$a
	done
	for _ in $(seq 200); do
		a=$(applied "$n" "$g")
		[ -n "$a" ] && [ "$a" -ge "$want" ] && return 0
		sleep 0.1
	done
	fail "node $n did not catch up on group $g: applied ${a:-none} want $want"
}

# writer DIR PREFIX SECONDS: write files of random data into DIR, each
# fsynced, until SECONDS passed or the file STOP exists two levels above
# DIR; every acknowledged file's name and sha256 go to PREFIX.acked there.
# Exit 1 at the first client error (printed).
writer() {
	python3 - "$@" <<'PY'
import os, sys, time, hashlib
d, prefix, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
top = os.path.dirname(os.path.dirname(d))
stop = os.path.join(top, "STOP")
acked = open(os.path.join(top, prefix + ".acked"), "w")
end, i, errors = time.time() + secs, 0, 0
while time.time() < end and not os.path.exists(stop):
    data = os.urandom(1000 + (i * 7919) % 60000)
    p = os.path.join(d, "%s%05d" % (prefix, i))
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        print("client error on %s: %s" % (p, e), file=sys.stderr)
        errors += 1
        break
    acked.write("%s %s\n" % (os.path.basename(p), hashlib.sha256(data).hexdigest()))
    acked.flush()
    i += 1
print("wrote %d files" % i)
sys.exit(1 if errors else 0)
PY
}
# verify DIR ACKED: every file listed in ACKED (name sha256) is in DIR with
# that content; prints how many, exits 1 at the first that differs (or is
# missing).  8 threads read: each open of a cold file waits for its lookup
# rounds on the nodes (25 ms under ASan), 2,400 files one after the other
# took 56 s of cluster4.sh.
verify() {
	python3 - "$1" "$2" <<'PY'
import sys, hashlib, os
from concurrent.futures import ThreadPoolExecutor
d, acked = sys.argv[1], sys.argv[2]
want = [line.split() for line in open(acked)]

def check(e):
    name, h = e
    with open(os.path.join(d, name), "rb") as f:
        return None if hashlib.sha256(f.read()).hexdigest() == h else name

with ThreadPoolExecutor(8) as ex:
    for bad in ex.map(check, want):
        if bad is not None:
            sys.exit("acknowledged file %s differs" % bad)
print("verified %d files" % len(want))
PY
}
