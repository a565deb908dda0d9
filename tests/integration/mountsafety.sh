#!/bin/bash
# tests/integration/mountsafety.sh - operating a mount safely (issue 10,
# items 3, 4, 5, 10, 11; quorumfs(8) "MOUNT SAFETY", "SIGNALS", "LOGS").
#
#  1. Option values: -o replicas=2, reads=x, quorum_timeout=0, throttle=x,
#     scrub_repair=maybe, scrub=x, read_ahead=1/65M/lots/(none) say "bad value" naming option and value; an unknown option says so; nothing mounted.
#  2. Refusals, each with its exact message and no mount: a data directory
#     inside the mountpoint (nothing created in it; also a log file or a
#     file:// archive there), a non-empty mountpoint
#     (accepted with -o nonempty), a data directory that is a file, a data
#     directory on a read-only file system (a read-only bind mount), a
#     missing mountpoint, a bad archive URL, a missing archive directory;
#     the mount right after a failed one, and `umount && mount`, succeed
#     (the last daemon, still closing, held the lock: "in use"); so does
#     `umount && quorumfs scrub DATA` (refused while mounted).
#  3. A background mount (the real daemon mode; its pid is in DATA/lock):
#     a second mount of the same data dir is refused on its own stderr,
#     naming the running pid, and nothing of it reaches the first's log; a
#     mount over the live mountpoint is refused ("already a mount point").
#  4. Names: tables "a b" and "x<newline>y" are escaped (\040, \012) in
#     .quorumfs/status and stats, so no line is forged and fields do not
#     split; every log line is one "TIME LEVEL event key=value" line, and
#     group ids in the log are 16 hex digits.
#  5. SIGHUP: logrotate (create + postrotate kill -HUP, then copytruncate)
#     rotates the log: the mount stays, serves, and logs to the new file
#     ("log reopened"); the rotated file gets nothing after the HUP.
#  6. SIGTERM with a file written but not closed: the daemon flushes it,
#     unmounts and exits 0; a remount reads the bytes.
#  7. -o ro: /proc/mounts says ro; no canary runs (asked for or not); reads work; create, mkdir, unlink, rmdir,
#     rename, chmod, truncate, setxattr, a write to .quorumfs/nodes all
#     fail with EROFS; status says "mode ro".
#  8. kill -9: the remount says "stale mount: run fusermount3 -u MNT";
#     after fusermount3 -u it mounts.
#  9. An emptied node directory (replaced disk) is rebuilt with a WARN line
#     naming the node; the data is still all there.
# 10. quorumfs mount -f -d -o log=FILE: libfuse's debug lines are in FILE as
#     "fuse msg=" events, every line formatted, nothing on stderr; SIGINT
#     unmounts and exits 0.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (bind mounts, FUSE allow_other)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
qfs_require fusermount3 mountpoint python3 logrotate setfattr timeout
T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-test.XXXXXX")
chmod 755 "$T"
DATA=$T/data
MNT=$T/mnt
mkdir -p "$MNT"
RO=$T/rodata

daemon_pid() { cat "$DATA/lock" 2>/dev/null; }
cleanup() {
	local rc=$?
	mountpoint -q "$RO" 2>/dev/null && umount "$RO"
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	fusermount3 -u "$T/mnt2" 2>/dev/null
	local p
	p=$(daemon_pid)
	[ -n "$p" ] && qfs_reap "$p"
	[ $rc -ne 0 ] && [ -f "$DATA/quorumfs.log" ] && tail -n 20 "$DATA/quorumfs.log" >&2
	# a sanitizer report of a daemon (in its log or output) fails the test
	qfs_sanitizer_found "$DATA/quorumfs.log"* "$T"/fg.log "$T"/fg.out "$T"/out && rc=1
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# mount_bg [opts...]: background mount (returns once mounted)
mount_bg() {
	timeout 60 "$QFS_BIN" mount "$@" "$DATA" "$MNT" || fail "mount $* failed"
	mountpoint -q "$MNT" || fail "not mounted after quorumfs mount $*"
}
# umount_wait: unmount and wait for the daemon to exit
umount_wait() {
	local p
	p=$(daemon_pid)
	fusermount3 -u "$MNT" || fail "fusermount3 -u failed"
	for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	fail "daemon $p still running 20 s after the unmount"
}
# refused WANT cmd...: cmd must fail, print WANT (fixed string) on stderr,
# and leave nothing mounted on $MNT
refused() {
	local want=$1 before
	shift
	before=$(grep -c " $MNT " /proc/mounts)
	if timeout 30 "$@" >"$T/out" 2>&1; then
		fusermount3 -u "$MNT" 2>/dev/null
		fail "accepted: $* (wanted: $want)"
	fi
	grep -qF -- "$want" "$T/out" || { cat "$T/out" >&2; fail "$* did not say: $want"; }
	[ "$(grep -c " $MNT " /proc/mounts)" -eq "$before" ] || fail "$* left a mount"
	note "refused: $(head -n1 "$T/out")"
}

# ---- 1. option values
refused "bad value '2' for option replicas: replicas must be 1 or 3" "$QFS_BIN" mount -o replicas=2 "$DATA" "$MNT"
refused "bad value 'x' for option reads" "$QFS_BIN" mount -o reads=x "$DATA" "$MNT"
refused "bad value '0' for option quorum_timeout" "$QFS_BIN" mount -o quorum_timeout=0 "$DATA" "$MNT"
refused "bad value 'loud' for option loglevel" "$QFS_BIN" mount -o loglevel=loud "$DATA" "$MNT"
refused "unknown mount option 'frobnicate'" "$QFS_BIN" mount -o frobnicate "$DATA" "$MNT"
# options that take a word: a wrong word is a bad value, not an unknown option
refused "bad value 'x' for option throttle: want wait or fail" "$QFS_BIN" mount -o throttle=x "$DATA" "$MNT"
refused "bad value 'maybe' for option scrub_repair: want on or off" "$QFS_BIN" mount -o scrub_repair=maybe "$DATA" "$MNT"
refused "bad value 'x' for option scrub: want on or off" "$QFS_BIN" mount -o scrub=x "$DATA" "$MNT"
for v in 1 65M lots; do
	refused "bad value '$v' for option read_ahead: want BYTES from 4K to 64M" "$QFS_BIN" mount -o read_ahead=$v "$DATA" "$MNT"
done
refused "bad value '' for option read_ahead" "$QFS_BIN" mount -o read_ahead "$DATA" "$MNT"

# ---- 2. refusals
refused "data directory $MNT/data is inside the mountpoint $MNT" "$QFS_BIN" mount "$MNT/data" "$MNT"
[ -z "$(ls -A "$MNT")" ] || fail "the refused mount created something in the mountpoint: $(ls -A "$MNT")"
refused "data directory $MNT is inside the mountpoint $MNT" "$QFS_BIN" mount "$MNT" "$MNT"
ln -s "$MNT/sub" "$T/link"
refused "is inside the mountpoint $MNT" "$QFS_BIN" mount "$T/link" "$MNT"
refused "log file $MNT/q.log is inside the mountpoint $MNT" "$QFS_BIN" mount -o log="$MNT/q.log" "$DATA" "$MNT"
refused "cannot open log file $T/nodir/q.log: No such file or directory" "$QFS_BIN" mount -o log="$T/nodir/q.log" "$DATA" "$MNT"
grep -q '(see ' "$T/out" && fail "a log file that cannot be opened is named as the place to look: $(cat "$T/out")"
refused "archive directory $MNT/arch is inside the mountpoint $MNT" "$QFS_BIN" mount -o archive="file://$MNT/arch" "$DATA" "$MNT"
[ -z "$(ls -A "$MNT")" ] || fail "a refused mount created something in the mountpoint: $(ls -A "$MNT")"
echo x >"$MNT/file"
refused "mountpoint $MNT is not empty" "$QFS_BIN" mount "$DATA" "$MNT"
rm -f "$MNT/file"
echo x >"$T/afile"
refused "data directory $T/afile is not a directory" "$QFS_BIN" mount "$T/afile" "$MNT"
refused "mountpoint $T/nowhere does not exist" "$QFS_BIN" mount "$DATA" "$T/nowhere"
mkdir -p "$RO"
mount --bind "$RO" "$RO" && mount -o remount,bind,ro "$RO" || fail "cannot make a read-only bind mount"
refused "data directory $RO is on a read-only file system" "$QFS_BIN" mount "$RO" "$MNT"
refused "cannot create data directory $RO/sub: Read-only file system" "$QFS_BIN" mount "$RO/sub" "$MNT"
umount "$RO"

# -o nonempty mounts over files (and leaves them there after)
echo keep >"$MNT/under"
mount_bg -o nonempty
[ -e "$MNT/under" ] && fail "the file under the mount is visible through it"
umount_wait
[ "$(cat "$MNT/under")" = keep ] || fail "the file under the mount changed"
rm -f "$MNT/under"

# a bad archive URL is a bad value; a mount that fails after taking the
# lock (missing archive directory) and a mount just unmounted (umount &&
# mount) do not make the next mount say "in use by another quorumfs"
refused "bad value 'file://rel' for option archive" "$QFS_BIN" mount -o archive=file://rel "$DATA" "$MNT"
refused "archive directory $T/noarch does not exist" "$QFS_BIN" mount -o archive="file://$T/noarch" "$DATA" "$MNT"
mount_bg
fusermount3 -u "$MNT" || fail "fusermount3 -u"
mount_bg
# the offline scrub right after an unmount (umount && quorumfs scrub) waits
# for the closing daemon too (it said "in use (mounted?)": exit 2); and it
# is still refused while the data directory is mounted
refused "data directory $DATA is in use by another quorumfs (pid $(daemon_pid)" "$QFS_BIN" scrub "$DATA"
for i in 1 2 3; do
	fusermount3 -u "$MNT" || fail "fusermount3 -u"
	rc=0
	timeout 60 "$QFS_BIN" scrub "$DATA" >"$T/scrub.out" 2>&1 || rc=$?
	[ $rc -eq 0 ] || { cat "$T/scrub.out" >&2; fail "umount && quorumfs scrub (try $i): exit $rc"; }
	mount_bg
done
umount_wait

# ---- 3. a background mount; a second mount of it
mount_bg -o seal_age=1s
PID=$(daemon_pid)
kill -0 "$PID" 2>/dev/null || fail "DATA/lock does not hold the daemon's pid ($PID)"
mkdir "$MNT/t1"
head -c 5000 /dev/urandom >"$T/r1"
cp "$T/r1" "$MNT/t1/f"
log_before=$(wc -l <"$DATA/quorumfs.log")
mkdir -p "$T/mnt2"
refused "data directory $DATA is in use by another quorumfs (pid $PID" "$QFS_BIN" mount "$DATA" "$T/mnt2"
refused "data directory $DATA is in use by another quorumfs (pid $PID" "$QFS_BIN" mount -f "$DATA" "$T/mnt2"
mountpoint -q "$T/mnt2" && fail "the second mount is mounted"
refused "mountpoint $MNT is already a mount point (type fuse.quorumfs): unmount it first (fusermount3 -u $MNT)" \
	"$QFS_BIN" mount "$T/other" "$MNT"
grep -q "in use\|already a mount point" "$DATA/quorumfs.log" && fail "a refused mount wrote into the running mount's log"
cmp -s "$T/r1" "$MNT/t1/f" || fail "the first mount does not serve its file after the refusals"

# ---- 4. names in control files and the log
mkdir "$MNT/a b" "$MNT/$(printf 'x\ny')" "$MNT/back\\slash"
echo 1 >"$MNT/a b/f"
echo 2 >"$MNT/$(printf 'x\ny')/f"
S=$MNT/.quorumfs/status
grep -qx 'table a\\040b group [0-9a-f]\{16\} ino [0-9]*' "$S" || { cat "$S" >&2; fail "status does not escape 'a b' as a\\040b"; }
grep -qx 'table x\\012y group [0-9a-f]\{16\} ino [0-9]*' "$S" || { cat "$S" >&2; fail "status does not escape x<newline>y as x\\012y"; }
grep -qx 'table back\\134slash group [0-9a-f]\{16\} ino [0-9]*' "$S" || fail "status does not escape a backslash as \\134"
awk '$1 == "table" && NF != 6 { bad = 1; print "bad line: " $0 } END { exit bad }' "$S" || fail "a table line of status has a field count other than 6"
grep -q '^y ' "$S" && fail "a table name forged a line in status"
grep -q '^table a\\040b op ' "$MNT/.quorumfs/stats" || fail "stats does not escape 'a b'"
grep -q '^y \|^table a b ' "$MNT/.quorumfs/stats" && fail "a table name forged a line or split a field in stats"
grep -q '^table a\\040b mode ' "$MNT/.quorumfs/capacity" || fail "capacity does not escape 'a b'"
grep -q '^y \|^table a b ' "$MNT/.quorumfs/capacity" && fail "a table name forged a line or split a field in capacity"
grep -q '^data_dir \|^mountpoint ' "$S" || fail "status lost its data_dir/mountpoint lines"
grep -qx 'mode rw' "$S" || fail "status does not say mode rw"
rmdir "$MNT/back\\slash" || fail "rmdir of a table with a backslash"
# every log line: TIME LEVEL text, group ids 16 hex digits
bad=$(grep -vcE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (ERR|WARN|INFO|DEBUG) [a-z]' "$DATA/quorumfs.log")
[ "$bad" -eq 0 ] || { grep -vE '^[0-9]{4}-[0-9-]+T[0-9:.]+Z (ERR|WARN|INFO|DEBUG) [a-z]' "$DATA/quorumfs.log" | head >&2; fail "$bad log lines are not formatted events"; }
grep -E 'group=' "$DATA/quorumfs.log" | grep -vE 'group=[0-9a-f]{16}( |$)' | head -3 | grep . && fail "a log line spells a group id other than %016llx"
grep -q 'table created name=a\\040b group=' "$DATA/quorumfs.log" || fail "the log does not escape the table name 'a b'"

# ---- 5. SIGHUP and logrotate
LOG=$DATA/quorumfs.log
cat >"$T/logrotate.conf" <<EOR
$LOG {
	rotate 3
	create 0600 root root
	missingok
	postrotate
		kill -HUP \$(cat $DATA/lock)
	endscript
}
EOR
logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" || fail "logrotate (create) failed"
[ -f "$LOG.1" ] || fail "logrotate did not rotate the log"
for _ in $(seq 50); do grep -q 'log reopened signal=SIGHUP' "$LOG" 2>/dev/null && break; sleep 0.1; done
grep -q "log reopened signal=SIGHUP file=$LOG" "$LOG" || fail "no 'log reopened' line in the new log after SIGHUP"
kill -0 "$PID" 2>/dev/null || fail "SIGHUP ended the daemon"
mountpoint -q "$MNT" || fail "SIGHUP unmounted the filesystem"
rotated_size=$(stat -c %s "$LOG.1")
mkdir "$MNT/after_hup" && head -c 3000 /dev/urandom >"$T/r2" && cp "$T/r2" "$MNT/after_hup/f" ||
	fail "the mount does not work after SIGHUP"
cmp -s "$T/r2" "$MNT/after_hup/f" || fail "bytes differ after SIGHUP"
grep -q 'table created name=after_hup' "$LOG" || fail "the new log does not get the daemon's lines"
[ "$(stat -c %s "$LOG.1")" -eq "$rotated_size" ] || fail "the daemon still writes to the rotated log"
# copytruncate (no signal needed; O_APPEND writes go to the new end)
cat >"$T/logrotate2.conf" <<EOR
$LOG {
	rotate 3
	copytruncate
	postrotate
		kill -HUP \$(cat $DATA/lock)
	endscript
}
EOR
logrotate -f -s "$T/logrotate.state" "$T/logrotate2.conf" || fail "logrotate (copytruncate) failed"
for _ in $(seq 50); do grep -q 'log reopened' "$LOG" 2>/dev/null && break; sleep 0.1; done
mkdir "$MNT/after_copytruncate" || fail "mkdir after copytruncate"
grep -q 'table created name=after_copytruncate' "$LOG" || fail "no line in the log after copytruncate"
[ "$(head -c 1 "$LOG" | od -An -c | tr -d ' ')" != '\0' ] || fail "the log has a hole of zeros after copytruncate"
note "SIGHUP: logrotate create and copytruncate ok"

# ---- 6. SIGTERM flushes a file written but not closed, then unmounts
head -c 200000 /dev/urandom >"$T/r3"
# a writer that keeps its one descriptor open (any close, even of a dup,
# would flush): it writes, says so, and waits
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
data = open(sys.argv[2], "rb").read()
while data:
    data = data[os.write(fd, data):]
open(sys.argv[3], "w").close()
time.sleep(120)
' "$MNT/t1/open_at_term" "$T/r3" "$T/written" &
WRITER=$!
for _ in $(seq 200); do [ -e "$T/written" ] && break; sleep 0.1; done
[ -e "$T/written" ] || fail "the writer did not write"
kill -TERM "$PID"
for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "the daemon did not exit after SIGTERM"
kill "$WRITER"
wait "$WRITER" 2>/dev/null
grep -q " $MNT " /proc/mounts && fail "the mount is still there after SIGTERM"
grep -q 'unmounted .*why=SIGTERM' "$LOG" || fail "no 'unmounted why=SIGTERM' line"
grep -q 'unmount flushed open files count=1 failed=0' "$LOG" || fail "the open file was not flushed at SIGTERM"

# ---- 7. -o ro
mount_bg -o ro,canary_interval=250ms
grep " $MNT " /proc/mounts | awk '{ print $4 }' | grep -q '^ro,' || fail "/proc/mounts does not say ro: $(grep " $MNT " /proc/mounts)"
cmp -s "$T/r3" "$MNT/t1/open_at_term" || fail "the file written at SIGTERM is not all there"
cmp -s "$T/r1" "$MNT/t1/f" || fail "reads fail on a read-only mount"
grep -qx 'mode ro' "$MNT/.quorumfs/status" || fail "status does not say mode ro"
python3 - "$MNT" <<'EOP' || fail "a change on the read-only mount did not fail with EROFS"
import errno, os, sys
m = sys.argv[1]
def erofs(what, f):
    try:
        f()
    except OSError as e:
        if e.errno != errno.EROFS:
            sys.exit(f"{what}: {e} (want EROFS)")
        return
    sys.exit(f"{what}: succeeded on a read-only mount")
erofs("create", lambda: os.open(f"{m}/t1/new", os.O_WRONLY | os.O_CREAT, 0o644))
erofs("open for writing", lambda: os.open(f"{m}/t1/f", os.O_WRONLY))
erofs("mkdir table", lambda: os.mkdir(f"{m}/newtable"))
erofs("mkdir", lambda: os.mkdir(f"{m}/t1/d"))
erofs("unlink", lambda: os.unlink(f"{m}/t1/f"))
erofs("rmdir", lambda: os.rmdir(f"{m}/after_hup"))
erofs("rename", lambda: os.rename(f"{m}/t1/f", f"{m}/t1/g"))
erofs("chmod", lambda: os.chmod(f"{m}/t1/f", 0o600))
erofs("truncate", lambda: os.truncate(f"{m}/t1/f", 0))
erofs("utime", lambda: os.utime(f"{m}/t1/f", (0, 0)))
erofs("symlink", lambda: os.symlink("x", f"{m}/t1/l"))
erofs("setxattr", lambda: os.setxattr(f"{m}/t1/f", "user.a", b"1"))
erofs("removexattr", lambda: os.removexattr(f"{m}/t1/f", "user.a"))
erofs("write .quorumfs/nodes", lambda: os.open(f"{m}/.quorumfs/nodes", os.O_WRONLY))
EOP
# no canary on a read-only mount (it writes), even when asked for one
grep -q 'canary off on a read-only mount' "$LOG" || fail "no 'canary off on a read-only mount' line"
sleep 1.5 # six canary intervals of 250 ms (it was 3 s of 1 s intervals)
av=$(cat "$MNT/.quorumfs/availability")
echo "$av" | grep -q ' canary_ok 0 canary_failed 0$' || fail "the canary ran on a read-only mount: $(echo "$av" | head -n 1)"
echo "$av" | grep -q '^table /canary ' && fail "canary operations on a read-only mount: $(echo "$av" | grep '^table /canary ' | head -n 1)"
umount_wait

# ---- 8. kill -9, then the remount names the stale mount
mount_bg
PID=$(daemon_pid)
kill -9 "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
refused "mountpoint $MNT: stale mount (its daemon is gone): run fusermount3 -u $MNT" "$QFS_BIN" mount "$DATA" "$MNT"
fusermount3 -u "$MNT" || fail "fusermount3 -u of the stale mount failed"
mount_bg
cmp -s "$T/r1" "$MNT/t1/f" || fail "data lost after kill -9"
umount_wait

# ---- 9. an emptied node directory is rebuilt with a WARN line
rm -rf "${DATA:?}/nodes/n3/"*
mount_bg
grep -q 'WARN cell node directory empty node=3 az=c .*action=rebuild' "$LOG" ||
	fail "no WARN line for the emptied node 3 directory"
grep -q 'WARN cell node directory empty node=[12]' "$LOG" && fail "WARN for a node that was not emptied"
cmp -s "$T/r1" "$MNT/t1/f" || fail "data lost after node 3 was emptied"
[ -n "$(ls -A "$DATA/nodes/n3")" ] || fail "node 3's directory was not rebuilt"
umount_wait

# ---- 10. libfuse's own messages (debug tracing here) reach the log as
# formatted lines; nothing goes around it; SIGINT unmounts
# (a background job of a script starts with SIGINT ignored, which libfuse
# respects: give it the default disposition, as a terminal's job has)
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
	"$QFS_BIN" mount -f -d -o log="$T/fg.log" "$DATA" "$MNT" >"$T/fg.out" 2>&1 &
FG=$!
for _ in $(seq 300); do mountpoint -q "$MNT" && [ -e "$MNT/.quorumfs/status" ] && break; sleep 0.1; done
# (a directory handle may still be open in the kernel when the signal ends
# the session: it is freed at the end, as a leak checker sees)
ls "$MNT/t1" >/dev/null || fail "the foreground mount does not serve"
kill -INT "$FG"
wait "$FG" || fail "quorumfs -f exited non-zero after SIGINT"
grep -q " $MNT " /proc/mounts && fail "the mount is still there after SIGINT"
grep -q 'unmounted .*why=SIGINT' "$T/fg.log" || fail "no 'unmounted why=SIGINT' line"
grep -q 'DEBUG fuse msg="unique: [0-9]*, opcode: ' "$T/fg.log" || fail "libfuse's messages are not in the log as fuse msg= lines"
bad=$(grep -vcE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (ERR|WARN|INFO|DEBUG) [a-z]' "$T/fg.log")
[ "$bad" -eq 0 ] || fail "$bad unformatted lines in the -d log"
[ -s "$T/fg.out" ] && { cat "$T/fg.out" >&2; fail "quorumfs -f -o log=FILE wrote around its log"; }
echo "PASS: mountsafety"
