#!/bin/bash
# tests/integration/createcache.sh - the two store reads a create no longer
# makes (fs/ops.c, doc/fs.md "Kernel caches") answer what the store holds:
#  1. the parent's inode from the directory attribute cache (parent_inode:
#     kept only while the directory has no default ACL): the same sequence
#     of setfacl -d / setfacl -k / chmod g+s / chgrp / chmod on a directory,
#     each followed by creates (file, mkdir, mknod, symlink) in it, gives the
#     same modes, owners and ACLs on the mount as on the native disk, and
#     after a remount (read by a fresh daemon);
#  2. the negative answer (a lookup's ENOENT taken by the create after it):
#     a name looked up as absent, then made by mkdir, symlink, link, rename
#     or a create of another process, refuses O_EXCL (EEXIST) and a plain
#     O_CREAT opens what is there; two processes racing O_EXCL creates of
#     the same 200 names: exactly one wins each name and every close
#     succeeds (a stale answer would fail the loser's write-back instead);
#  3. cp -a of a tree with ACLs, default ACLs, xattrs, hard links,
#     symlinks and a sparse file: rsync -aHAXn lists no difference, and
#     getfacl -R / getfattr -R of both trees agree, before and after a
#     remount.

. "$QFS_SRCDIR/tests/lib/common.sh"
export LC_ALL=C LANG=C TZ=UTC
qfs_require python3 setfacl getfacl getfattr setfattr rsync cp
qfs_setup

NAT=$T/native
mkdir -p "$NAT" "$MNT/t" || fail "mkdir"
umask 022

# --- 1. the parent's inode from the cache
seq1() { # seq1 DIR: changes of DIR's default ACL, group, mode, each with creates after
	local d=$1/d
	mkdir "$d" && chmod 755 "$d"
	touch "$d/a0"; mkdir "$d/s0"
	setfacl -d -m u:4211:rwx,g::r-x "$d"
	touch "$d/a1"; mkdir "$d/s1"; mknod "$d/p1" p; ln -s a1 "$d/l1"
	touch "$d/s1/a2" # a subdirectory inherited the default ACL
	setfacl -k "$d"
	touch "$d/a3"; mkdir "$d/s3"
	chgrp 4211 "$d" && chmod 2775 "$d"
	touch "$d/a4"; mkdir "$d/s4"
	chmod 0755 "$d" # set-gid off (root keeps it off: chmod as owner)
	touch "$d/a5"; mkdir "$d/s5"
	setfacl -d -m o::--- "$d"
	touch "$d/a6"; mkdir "$d/s6"
	setfattr -n user.k -v v "$d" # another xattr change, then a create
	touch "$d/a7"
	setfacl -b "$d"
	touch "$d/a8"; mkdir "$d/s8"
}
# by_path DIR STATFMT CMD...: one line per path under DIR (sorted): the
# path, stat -c STATFMT of it, then the lines CMD prints for it (getfacl
# -p or getfattr -d style: a "# file: PATH" line starts each path's lines;
# other comment and empty lines are dropped) joined by spaces, sorted when
# SORT=1 (the lines the per-path loops of stat, getfacl -cp and getfattr
# printed, byte for byte; one stat and one CMD for all paths: the forks per
# path took about 25 s of each check3 at a load of 7).  Fails the test
# when find, stat or the merge fails (CMD's errors, as before, do not).
by_path() {
	local dir=$1 fmt=$2
	shift 2
	(cd "$dir" && find . -mindepth 1 | sort >"$T/bp.names" &&
		tr '\n' '\0' <"$T/bp.names" | xargs -0 stat -c "$fmt" >"$T/bp.stat" &&
		{ tr '\n' '\0' <"$T/bp.names" | xargs -0 "$@" 2>/dev/null; true; } >"$T/bp.out" &&
		awk -v srt="${SORT:-0}" '
			function norm(p) { sub(/^\.\//, "", p); return p }
			FILENAME == ARGV[1] { name[++n] = $0; next }
			FILENAME == ARGV[2] { st[++n2] = $0; next }
			/^# file: / { cur = norm(substr($0, 9)); next }
			/^#/ || /^$/ { next }
			{ k = ++cnt[cur]; line[cur, k] = $0 }
			END {
				if (n == 0 || n2 != n) exit 1
				for (i = 1; i <= n; i++) {
					p = norm(name[i]); m = cnt[p] + 0
					if (srt) for (a = 2; a <= m; a++) for (b = a; b > 1 && line[p, b - 1] > line[p, b]; b--) {
						t = line[p, b]; line[p, b] = line[p, b - 1]; line[p, b - 1] = t }
					s = name[i] " " st[i] " "
					for (k = 1; k <= m; k++) s = s line[p, k] " "
					print s
				}
			}' "$T/bp.names" "$T/bp.stat" "$T/bp.out") || fail "listing $dir (stat -c '$fmt', $1) failed"
}
describe() { # describe DIR: modes, owners, ACLs of everything under DIR
	by_path "$1" '%A %u:%g' getfacl -p
}
seq1 "$NAT" || fail "sequence 1 on the native disk"
seq1 "$MNT/t" || fail "sequence 1 on the mount"
describe "$NAT/d" >"$T/nat1"
describe "$MNT/t/d" >"$T/qfs1"
diff "$T/nat1" "$T/qfs1" >"$T/diff1" || fail "modes/owners/ACLs of creates differ from the native disk: $(head -20 "$T/diff1")"
grep -q 'a1 .*user:4211:rwx' "$T/qfs1" || fail "a1 did not inherit the default ACL: $(grep a1 "$T/qfs1")"
echo "ok   creates after default ACL, group and mode changes of their directory agree with the native disk"

# --- 2. the negative answer
python3 - "$MNT/t" <<'EOF' || fail "negative answer (see above)"
import errno, os, sys
d = os.path.join(sys.argv[1], "neg")
os.mkdir(d)
src = os.path.join(d, "src")
with open(src, "wb") as f:
    f.write(os.urandom(100))
def absent(p):
    try:
        os.stat(p)
    except FileNotFoundError:
        return
    sys.exit("%s exists before the test" % p)
def excl_fails(p, how):
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as e:
        if e.errno != errno.EEXIST:
            sys.exit("%s: O_EXCL after %s: %s" % (p, how, e))
        return
    os.close(fd)
    sys.exit("%s: O_EXCL create succeeded after %s made the name" % (p, how))
makers = {
    "mkdir": lambda p: os.mkdir(p),
    "symlink": lambda p: os.symlink("src", p),
    "link": lambda p: os.link(src, p),
    "rename": lambda p: (open(p + ".tmp", "wb").write(os.urandom(10)), os.rename(p + ".tmp", p)),
    "create": lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)),
    "fork": lambda p: os.waitpid(os.spawnlp(os.P_NOWAIT, "sh", "sh", "-c", "echo x > '%s'" % p), 0),
}
for i in range(20):
    for how, make in makers.items():
        p = os.path.join(d, "%s%d" % (how, i))
        absent(p)  # the lookup's ENOENT
        make(p)
        excl_fails(p, how)
        if how not in ("mkdir", "symlink"):
            fd = os.open(p, os.O_CREAT | os.O_RDONLY)  # opens what is there
            st = os.fstat(fd)
            os.close(fd)
            if st.st_ino != os.stat(p).st_ino:
                sys.exit("%s: O_CREAT opened another inode" % p)
print("ok   a name made after a lookup saw it absent refuses O_EXCL (mkdir, symlink, link, rename, create, another process)")
# two processes race O_EXCL creates of the same names
r = os.path.join(d, "race")
os.mkdir(r)
N = 200
pids = []
for w in range(2):
    pid = os.fork()
    if pid == 0:
        won = 0
        try:
            for i in range(N):
                p = os.path.join(r, "n%d" % i)
                try:
                    os.stat(p)
                except FileNotFoundError:
                    pass
                try:
                    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
                os.write(fd, b"%d" % w + os.urandom(50))
                os.close(fd)  # the write-back: fails if the name was taken meanwhile
                won += 1
            with open(os.path.join(d, "won%d" % w), "w") as f:
                f.write(str(won))
            os._exit(0)
        except Exception as e:
            print("writer %d: %s" % (w, e))
            os._exit(1)
    pids.append(pid)
for pid in pids:
    _, st = os.waitpid(pid, 0)
    if st != 0:
        sys.exit("a racing writer failed")
won = sum(int(open(os.path.join(d, "won%d" % w)).read()) for w in range(2))
names = sorted(os.listdir(r))
if won != N or len(names) != N:
    sys.exit("racing O_EXCL creates: %d won, %d names, expected %d" % (won, len(names), N))
print("ok   2 processes racing O_EXCL creates of %d names: one wins each, every close succeeds" % N)
EOF

# --- 3. cp -a of a tree with ACLs, xattrs, hard links, symlinks, a sparse file
S=$NAT/src
mkdir -p "$S/a/b/c" "$S/e" || fail "mkdir src"
for i in $(seq 30); do head -c $((RANDOM % 9000 + 1)) /dev/urandom >"$S/a/f$i"; done
for i in $(seq 10); do head -c 300 /dev/urandom >"$S/a/b/g$i"; done
head -c 5000 /dev/urandom >"$S/a/b/c/h"
chmod 640 "$S/a/f1" && chmod 2755 "$S/a/b" && chmod 700 "$S/e"
chgrp 4211 "$S/a/f2" && chown 4212 "$S/a/f3"
setfacl -m u:4211:r,g:4212:rw "$S/a/f4"
setfacl -d -m u:4211:rwx "$S/a/b/c" && setfacl -m u:4212:rx "$S/a/b/c"
setfattr -n user.color -v blue "$S/a/f5" && setfattr -n user.big -v "$(head -c 2000 /dev/urandom | base64 -w0)" "$S/a/f6"
setfattr -n user.dir -v yes "$S/a/b"
ln "$S/a/f7" "$S/a/b/hard7" && ln "$S/a/f7" "$S/e/hard7b"
ln -s ../f8 "$S/a/b/sym8" && ln -s /nonexistent "$S/e/dangling"
python3 -c "
import os
with open('$S/e/sparse', 'wb') as f:
    f.write(os.urandom(5000)); f.seek(5 << 20); f.write(os.urandom(7000))
" || fail "sparse"
touch -d '2001-02-03 04:05:06.789' "$S/a/f9" "$S/a/b/c"
cp -a "$S" "$MNT/t/copy" || fail "cp -a into the mount"
acls_of() { # acls_of DIR: stat, ACLs and xattrs of everything under DIR, by path
	describe "$1"
	SORT=1 by_path "$1" '%s:%h %Y ' getfattr -h -d -m -
}
check3() {
	rsync -aHAXn --itemize-changes "$S/" "$MNT/t/copy/" >"$T/rs" || fail "rsync -n $1"
	[ ! -s "$T/rs" ] || fail "rsync -aHAXn lists differences $1: $(head -20 "$T/rs")"
	acls_of "$S" >"$T/a3"
	acls_of "$MNT/t/copy" >"$T/b3"
	diff "$T/a3" "$T/b3" >"$T/diff3" || fail "getfacl/getfattr of the copy differ $1: $(head -20 "$T/diff3")"
	echo "ok   cp -a of a tree with ACLs, xattrs, hard links, symlinks, a sparse file: no difference $1"
}
check3 "(mounted)"
describe "$MNT/t/d" >"$T/qfs1b"

# --- after a remount: what the store holds
qfs_umount
qfs_mount
describe "$MNT/t/d" >"$T/qfs1c"
diff "$T/qfs1" "$T/qfs1c" >"$T/diff1c" || fail "sequence 1 differs after a remount: $(head -20 "$T/diff1c")"
echo "ok   sequence 1 read back after a remount"
check3 "(after a remount)"
echo PASS
