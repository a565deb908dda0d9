#!/bin/bash
# tests/bench/serial_trace.sh - where one serial unlink's wall time goes,
# without a special build: uprobes (perf probe -x) on a quorumfs binary with
# its symbols, perf record of the daemon during N serial unlinks (after N
# creates) on a fresh default mount, then per unlink each event's time from
# the FUSE request (op_unlink's entry), medians over the unlinks (the first
# 50 skipped): the propose, each replica's WAL sync start and end, the
# quorum durable (the later of the leader's and the first follower's sync
# end), the leader taking a frame after it, the leader's and each
# follower's apply, the answer, op_unlink's return, the client's gap;
# the leader's two ACCEPT sends and how often the leader lost its CPU
# between its first send and its own sync (a context switch out of it
# while runnable: the follower it woke preempted it; doc/perf.md
# "AFTER 54").  The follower threads are the two that sync without ever
# running op_unlink; Fa is the one whose sync ends first.  Each probe
# costs a few microseconds (about ten per unlink).  doc/perf.md "AFTER 36".
#
# Usage (as root, from a build directory):
#   tests/bench/serial_trace.sh [-n N] [BIN...]   (default BIN ./fs/quorumfs)
# Several binaries run one after the other (alternate them by listing
# them twice: A B A B).  Needs perf with uprobes and python3.  Not a test.
N=1000
while getopts n:h opt; do
	case $opt in
	n) N=$OPTARG ;;
	*) sed -n '2,21s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$(pwd)/fs/quorumfs"
[ "$(id -u)" -eq 0 ] || { echo "serial_trace.sh: needs root" >&2; exit 2; }
command -v perf >/dev/null && command -v python3 >/dev/null ||
	{ echo "serial_trace.sh: needs perf and python3" >&2; exit 2; }
. "$(dirname "$0")/../lib/abba.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-strace.XXXXXX")
MNT=$T/mnt
PID= PP= GRP=
cleanup() {
	[ -n "$PP" ] && kill -INT "$PP" 2>/dev/null && wait "$PP" 2>/dev/null
	fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	[ -n "$GRP" ] && perf probe -q -d "$GRP:*" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

parse() {
	python3 - "$1" <<'PY'
import re, statistics as st, sys
ev = []
for line in open(sys.argv[1]):
    m = re.match(r'\s*(\d+)\s+([\d.]+):\s+\S+:(\w+):(.*)', line)
    if m:
        e = m.group(3).replace('__return', '')
        if e == 'sched_switch':  # the thread switched out while runnable, or not
            e = 'preempted' if 'prev_state=R ' in m.group(4) else 'slept'
        ev.append((float(m.group(2)) * 1e6, int(m.group(1)), e))
ev.sort()
optids = {t for _, t, e in ev if e == 'op_unlink'}
cnt = {}
for _, t, e in ev:
    if e == 'sync' and t not in optids:
        cnt[t] = cnt.get(t, 0) + 1
fol = sorted(cnt, key=lambda t: -cnt[t])[:2]
keys = ['propose', 'L_send1', 'L_send2', 'L_sync', 'Fa_sync', 'Fb_sync', 'L_sync_end', 'Fa_sync_end', 'Fb_sync_end',
        'durable', 'L_frame', 'L_apply', 'L_apply_end', 'answer', 'ret',
        'Fa_apply', 'Fa_apply_end', 'Fb_apply', 'Fb_apply_end', 'gap']
res = {k: [] for k in keys}
preempted = 0
starts = [i for i, x in enumerate(ev) if x[2] == 'op_unlink']
for j in range(50, len(starts) - 1):
    i = starts[j]
    t0, F = ev[i][0], ev[i][1]
    k = i + 1
    while k < len(ev) and not (ev[k][2] == 'op_unlink_ret' and ev[k][1] == F):
        k += 1
    if k >= len(ev):
        break
    w = ev[i:k + 1]
    def first(pred, after=t0):
        for tt, t, e in w:
            if tt >= after and pred(t, e):
                return tt
        return None
    r = {'propose': first(lambda t, e: e == 'propose'),
         'L_sync': first(lambda t, e: e == 'sync' and t not in fol),
         'L_sync_end': first(lambda t, e: e == 'sync_ret' and t not in fol),
         'ret': ev[k][0]}
    fs = []
    for f in fol:
        g = [first(lambda t, e, f=f, n=n: e == n and t == f) for n in ('sync', 'sync_ret', 'apply', 'apply_ret')]
        fs.append((g[1] if g[1] is not None else 1e18, g))
    fs.sort(key=lambda x: x[0])
    for name, (_, g) in zip(['Fa', 'Fb'], fs):
        r[name + '_sync'], r[name + '_sync_end'], r[name + '_apply'], r[name + '_apply_end'] = g
    if r['L_sync_end'] is not None and r.get('Fa_sync_end') is not None:
        r['durable'] = max(r['L_sync_end'], r['Fa_sync_end'])
    sends = [tt for tt, t, e in w if e == 'send' and t == F]
    if len(sends) >= 2:
        r['L_send1'], r['L_send2'] = sends[0], sends[1]
        if r['L_sync'] is not None and any(e == 'preempted' and t == F and sends[0] <= tt <= r['L_sync']
                                           for tt, t, e in w):
            preempted += 1
    r['L_frame'] = first(lambda t, e: e == 'frame' and t not in fol, r.get('Fa_sync_end') or t0)
    r['L_apply'] = first(lambda t, e: e == 'apply' and t not in fol)
    r['L_apply_end'] = first(lambda t, e: e == 'apply_ret' and t not in fol)
    r['answer'] = first(lambda t, e: e == 'answer' and t not in fol)
    for kk in keys:
        if kk != 'gap' and r.get(kk) is not None:
            res[kk].append(r[kk] - t0)
    res['gap'].append(ev[starts[j + 1]][0] - ev[k][0])
print('unlinks traced %d (a follower apply ending before its start ended in the unlink before)' % len(res['ret']))
print('  leader preempted between its first send and its sync: %d of %d' % (preempted, len(res['ret'])))
for kk in keys:
    v = res[kk]
    if len(v) >= 2:
        q = st.quantiles(v, n=4)
        print('  %-13s %8.1f us  (n=%d, p25 %.0f, p75 %.0f)' % (kk, st.median(v), len(v), q[0], q[2]))
PY
}

run=0
for BIN in "$@"; do
	run=$((run + 1))
	GRP=qfsst$$r$run
	perf probe -q -x "$BIN" -a "$GRP:op_unlink=op_unlink" -a "$GRP:op_unlink_ret=op_unlink%return" \
		-a "$GRP:propose=qfs_rnode_propose" -a "$GRP:sync=qfs_wal_sync" \
		-a "$GRP:sync_ret=qfs_wal_sync%return" -a "$GRP:apply=drive_apply" \
		-a "$GRP:apply_ret=drive_apply%return" -a "$GRP:frame=on_frame" -a "$GRP:answer=answer" \
		-a "$GRP:send=qfs_net_send_frame" ||
		{ echo "serial_trace.sh: perf probe failed on $BIN" >&2; exit 1; }
	qfs_ab_mount trace "$BIN" # (tests/lib/abba.sh: a fresh data dir, PID set)
	mkdir "$MNT/b" || exit 1
	python3 - "$MNT/b" "$N" <<'PY' || exit 1
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
for i in range(n):
    fd = os.open("%s/f%06d" % (d, i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
PY
	perf record -q -e "$GRP:*" -e sched:sched_switch -p "$PID" -o "$T/perf.data" 2>/dev/null &
	PP=$!
	sleep 1
	echo "bin=$BIN load=$(cut -d' ' -f1 /proc/loadavg)"
	python3 - "$MNT/b" "$N" <<'PY' || exit 1
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
t = time.monotonic()
for i in range(n):
    os.unlink("%s/f%06d" % (d, i))
print("unlinks/s %.0f (traced)" % (n / (time.monotonic() - t)))
PY
	sleep 0.5
	kill -INT "$PP"
	wait "$PP"
	PP=
	perf script -i "$T/perf.data" -F tid,time,event,trace --ns >"$T/events.txt" 2>/dev/null
	fusermount3 -u "$MNT" || exit 1
	wait "$PID"
	PID=
	perf probe -q -d "$GRP:*"
	GRP=
	parse "$T/events.txt"
done
