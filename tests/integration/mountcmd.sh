#!/bin/bash
# tests/integration/mountcmd.sh - quorumfs through mount(8), fstab,
# mount.fuse3 and systemd's notify protocol (issue 10, item 6; quorumfs(8)
# "MOUNT(8) AND FSTAB", "SYSTEMD").
#
# mount(8) finds its helpers in /sbin only, so the test runs in a private
# mount namespace (unshare -m) where an overlay adds the built
# mount.quorumfs and its mount.fuse.quorumfs link to /sbin; nothing of the
# host changes.  QUORUMFS_BIN points the helper at the built quorumfs.
#
#  1. mount -t quorumfs with fstab/systemd options (_netdev, nofail,
#     x-systemd.*, defaults, auto/noauto, user/nouser, comment=) and kernel
#     flags (noatime): mounted (type fuse.quorumfs, noatime in /proc/mounts);
#     a file round-trips; umount(8) ends the daemon.
#  2. A private fstab line (mount -T FILE MNT) with type quorumfs, ro and
#     log=FILE: mounted read-only, reads the file, logs to FILE (where the
#     cold start of a data directory mounted before shows: rnode elect);
#     umount.
#  2b. mount -a -T FILE twice: the second run sees the line mounted (the
#     source in /proc/mounts is the data directory) and does nothing.
#  3. mount -t fuse.quorumfs (mount.fuse.quorumfs); umount.
#  4. mount.fuse3 "quorumfs#DATA" MNT (the program named by the type, with
#     mount.fuse3's dev,suid added); umount.
#  5. mount -t quorumfs -o replicas=2 fails, saying "bad value", no mount;
#     mount -f (fake) mounts nothing.
#  6. quorumfs mount -f with $NOTIFY_SOCKET: READY=1 with MAINPID once
#     mounted, STOPPING=1 at SIGTERM, and the mount is gone after it.
#  7. contrib/quorumfs@.service passes systemd-analyze verify (when
#     systemd-analyze is installed).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (mount namespaces, mount(8))"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
qfs_require unshare mount umount fusermount3 mountpoint python3 timeout
HELPER=$(cd "$(dirname "$QFS_BIN")/.." && pwd)/contrib/mount.quorumfs
[ -x "$HELPER" ] || fail "the mount helper $HELPER is not built (make check builds it)"
grep -q overlay /proc/filesystems || skip "overlayfs is not available (needed to add a helper to /sbin privately)"

if [ -z "${QFS_IN_NS:-}" ]; then
	exec unshare -m --propagation private env QFS_IN_NS=1 bash "$0" "$@"
fi
# The new namespace starts with a copy of every mount of the host, the FUSE
# mounts of the tests running beside this one (make -j check) too.  While a
# copy lives, its filesystem lives: such a test's fusermount3 -u returns,
# but its daemon is not told and its qfs_umount waits for this test to end
# (20-140 s stalls of bigfile.sh's unmounts).  Detach the copies here; the
# namespace is private, the host's mounts are untouched.
awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^fuse(\.|$)/) print $5; break } }' \
	/proc/self/mountinfo | sort -r | while IFS= read -r m; do
	umount -l "$(printf '%b' "$m")" 2>/dev/null
done

T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-test.XXXXXX")
chmod 755 "$T"
DATA=$T/data
MNT=$T/mnt
mkdir -p "$MNT" "$T/sbin" "$T/bin"
cp "$HELPER" "$T/sbin/mount.quorumfs"
ln -s mount.quorumfs "$T/sbin/mount.fuse.quorumfs"
ln -s "$QFS_BIN" "$T/bin/quorumfs"
export QUORUMFS_BIN=$QFS_BIN

daemon_pid() { cat "$DATA/lock" 2>/dev/null; }
cleanup() {
	local rc=$? p
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
	p=$(daemon_pid)
	[ -n "$p" ] && qfs_reap "$p"
	[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null
	[ $rc -ne 0 ] && [ -f "$DATA/quorumfs.log" ] && tail -n 20 "$DATA/quorumfs.log" >&2
	umount /usr/sbin 2>/dev/null
	# a sanitizer report of a daemon (in its log or output) fails the test
	qfs_sanitizer_found "$DATA/quorumfs.log" "$T"/fstab.log "$T"/fg.out "$T"/err && rc=1
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mount -t overlay overlay -o "lowerdir=$T/sbin:/usr/sbin" /usr/sbin || skip "cannot overlay /usr/sbin in a private namespace"
[ -x /sbin/mount.quorumfs ] || fail "the overlay does not show /sbin/mount.quorumfs"

# mounted_type: the type and options of $MNT in /proc/mounts
mounted() { awk -v m="$MNT" '$2 == m { print $3, $4 }' /proc/mounts; }
# umount_wait: umount(8), then the daemon must exit
umount_wait() {
	local p
	p=$(daemon_pid)
	umount "$MNT" || fail "umount $MNT failed"
	for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && fail "daemon $p still runs 20 s after umount"
	[ -z "$(mounted)" ] || fail "still mounted after umount: $(mounted)"
}

# ---- 1. mount -t quorumfs with fstab and systemd options
head -c 7000 /dev/urandom >"$T/r1"
timeout 60 mount -t quorumfs \
	-o _netdev,nofail,x-systemd.automount,x-systemd.device-timeout=10s,defaults,noauto,auto,user,nouser,comment=qfs,rw,noatime \
	"$DATA" "$MNT" 2>"$T/err" || { cat "$T/err" >&2; fail "mount -t quorumfs failed"; }
m=$(mounted)
case $m in
"fuse.quorumfs "*noatime*) note "mount -t quorumfs: $m" ;;
*) fail "mount -t quorumfs: unexpected /proc/mounts entry '$m'" ;;
esac
mkdir "$MNT/t" && cp "$T/r1" "$MNT/t/f" || fail "write through the mount(8) mount"
cmp -s "$T/r1" "$MNT/t/f" || fail "bytes differ"
umount_wait

# ---- 2. a private fstab line
cat >"$T/fstab" <<EOF2
# quorumfs test fstab
$DATA  $MNT  quorumfs  noauto,nofail,_netdev,x-systemd.requires=network-online.target,ro,log=$T/fstab.log  0  0
EOF2
timeout 60 mount -T "$T/fstab" "$MNT" 2>"$T/err" || { cat "$T/err" >&2; fail "mount -T FSTAB MNT failed"; }
case $(mounted) in
"fuse.quorumfs ro,"*) ;;
*) fail "fstab mount: expected a read-only fuse.quorumfs mount, got '$(mounted)'" ;;
esac
cmp -s "$T/r1" "$MNT/t/f" || fail "the fstab mount does not read the file"
touch "$MNT/t/new" 2>/dev/null && fail "the fstab ro mount accepted a create"
grep -q 'mounted mountpoint=.* ro=1' "$T/fstab.log" || fail "the fstab log= option was not used"
# a mount of an existing data directory starts cold (it holds DATA/lock):
# the preferred members campaign at once (doc/paxos.md section 2)
grep -q 'rnode elect node=.* campaigning=[1-9]' "$T/fstab.log" ||
	fail "the second mount of the data directory did not start cold (no rnode elect line)"
umount_wait

# ---- 2b. mount -a -T FSTAB, twice: the second run must see the line as
# mounted (the source in /proc/mounts is the data directory) and neither
# fail nor start a second daemon ("already a mount point", exit 32 before)
cat >"$T/fstab.a" <<EOF2
$DATA  $MNT  quorumfs  _netdev,nofail,x-systemd.requires=network-online.target  0  0
EOF2
timeout 60 mount -a -T "$T/fstab.a" 2>"$T/err" || { cat "$T/err" >&2; fail "mount -a -T FSTAB failed"; }
[ "$(awk -v m="$MNT" '$2 == m { print $1 }' /proc/mounts)" = "$DATA" ] ||
	fail "/proc/mounts does not name the data directory as the source: $(grep " $MNT " /proc/mounts)"
timeout 60 mount -a -T "$T/fstab.a" 2>"$T/err" || { cat "$T/err" >&2; fail "a second mount -a -T FSTAB failed"; }
[ -s "$T/err" ] && { cat "$T/err" >&2; fail "a second mount -a complained"; }
[ "$(grep -c " $MNT " /proc/mounts)" -eq 1 ] || fail "mount -a mounted twice: $(grep " $MNT " /proc/mounts)"
cmp -s "$T/r1" "$MNT/t/f" || fail "the mount -a mount does not read the file"
umount_wait

# ---- 3. mount -t fuse.quorumfs
timeout 60 mount -t fuse.quorumfs "$DATA" "$MNT" 2>"$T/err" || { cat "$T/err" >&2; fail "mount -t fuse.quorumfs failed"; }
[ "$(mounted | cut -d' ' -f1)" = fuse.quorumfs ] || fail "mount -t fuse.quorumfs: '$(mounted)'"
cmp -s "$T/r1" "$MNT/t/f" || fail "fuse.quorumfs mount does not read the file"
umount_wait

# ---- 4. mount.fuse3 "quorumfs#DATA" (runs `quorumfs DATA MNT -o ...`)
if command -v mount.fuse3 >/dev/null 2>&1; then
	PATH=$T/bin:$PATH timeout 60 mount.fuse3 "quorumfs#$DATA" "$MNT" -o noatime 2>"$T/err" ||
		{ cat "$T/err" >&2; fail "mount.fuse3 quorumfs#DATA failed"; }
	cmp -s "$T/r1" "$MNT/t/f" || fail "the mount.fuse3 mount does not read the file"
	umount_wait
else
	note "mount.fuse3 is not installed: its form is not tested"
fi

# ---- 5. a refused option, and a fake mount
if timeout 30 mount -t quorumfs -o replicas=2 "$DATA" "$MNT" 2>"$T/err"; then
	fail "mount -t quorumfs -o replicas=2 succeeded"
fi
grep -q "bad value '2' for option replicas" "$T/err" || { cat "$T/err" >&2; fail "no 'bad value' message through mount(8)"; }
[ -z "$(mounted)" ] || fail "a refused mount left a mount"
timeout 30 mount -f -t quorumfs "$DATA" "$MNT" || fail "mount -f (fake) failed"
[ -z "$(mounted)" ] || fail "mount -f (fake) mounted"

# ---- 6. sd_notify (Type=notify)
python3 - "$T/notify.sock" "$T/notify.txt" <<'EOP' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".bound", "w").close()
s.settimeout(90)
with open(sys.argv[2], "a") as out:
    for _ in range(2):
        msg = s.recv(4096).decode()
        out.write(msg.replace("\n", " ") + "\n")
        out.flush()
EOP
LISTENER=$!
for _ in $(seq 100); do [ -e "$T/notify.txt.bound" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify.sock "$QFS_BIN" mount -f "$DATA" "$MNT" >"$T/fg.out" 2>&1 &
FG=$!
for _ in $(seq 300); do grep -q READY=1 "$T/notify.txt" 2>/dev/null && break; sleep 0.1; done
grep -q "READY=1 MAINPID=$FG " "$T/notify.txt" || fail "no READY=1 MAINPID=$FG on NOTIFY_SOCKET: $(cat "$T/notify.txt" 2>/dev/null)"
mountpoint -q "$MNT" || fail "READY=1 before the mount"
kill -TERM "$FG"
wait "$FG"
rc=$?
[ $rc -eq 0 ] || fail "quorumfs -f exited $rc after SIGTERM"
for _ in $(seq 50); do grep -q STOPPING=1 "$T/notify.txt" && break; sleep 0.1; done
grep -q STOPPING=1 "$T/notify.txt" || fail "no STOPPING=1 at SIGTERM"
[ -z "$(mounted)" ] || fail "still mounted after SIGTERM"
wait "$LISTENER" 2>/dev/null
LISTENER=

# ---- 7. the systemd unit
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir "$T/unit"
	sed -e "s|@bindir@|$(dirname "$QFS_BIN")|g" "$QFS_SRCDIR/contrib/quorumfs@.service.in" \
		>"$T/unit/quorumfs@var-lib-quorumfs.service"
	(cd "$T/unit" && timeout 60 systemd-analyze verify --man=no quorumfs@var-lib-quorumfs.service) \
		>"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "systemd-analyze verify failed"; }
	[ -s "$T/verify.out" ] && { cat "$T/verify.out" >&2; fail "systemd-analyze verify complained"; }
else
	note "systemd-analyze is not installed: the unit is not verified"
fi
echo "PASS: mountcmd"
