#!/bin/bash
# tests/integration/vlog.sh - the store's value log (doc/format-store.md
# "Value log"): file chunks stay in the WAL segment each replica wrote them
# to, the store pointing at them through its hard links
# (nodes/n*/store/qfs-vlog/).
#  1. random data written with fsync, then kill -9 and a remount: the file
#     reads back exactly, cold (page cache dropped), and every replica
#     holds links (the values really are in the value log); so do small
#     files written one sync each, and a file written by 4 KiB pwrite +
#     fsync (PATCHes stored as extents: counted in the status line) after
#     a clean remount and after kill -9;
#  2. the file deleted: the keeper's collector removes the links of the
#     segments no pointer uses (du of the qfs-vlog directories goes down,
#     the vlog line of .quorumfs/status counts them);
#  3. a byte flipped every 64 KiB in every link of one replica: reading
#     the file never returns other bytes than the ones written (a chunk
#     reads back or fails with EIO: reads are served by the group's leader,
#     which does not fall back to another replica; the scrub reports such
#     a replica);
#  4. the same on all three replicas: at least one chunk fails with EIO,
#     none returns wrong bytes, and the log names the damage.
. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
qfs_require python3 cmp du
set -o pipefail
qfs_setup -o seal_size=2M
watchdog 170
mkdir "$MNT/t" || fail "mkdir table"

vlog_kb() { du -sk "$DATA"/nodes/n*/store/qfs-vlog 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
nlinks() { ls "$DATA"/nodes/n"$1"/store/qfs-vlog 2>/dev/null | grep -c '\.wal$'; }

# --- 1. write, kill -9, remount, read back cold
head -c $((24 << 20)) /dev/urandom >"$T/src" || fail "random source"
# serial small files, each synced alone (one chunk PUT per sync): read
# back through their pointers after the remount (no kept buffer, no
# cached fd)
for i in $(seq 24); do
	head -c $((20000 + i * 3001)) "$T/src" | tail -c $((9000 + i * 1000)) >"$T/s$i"
	dd if="$T/s$i" of="$MNT/t/s$i" bs=64k conv=fsync status=none || fail "dd s$i"
done
dd if="$T/src" of="$MNT/t/f" bs=1M conv=fsync status=none || fail "dd into the mount"
for n in 1 2 3; do # (a follower may not have applied the last entry yet)
	[ "$(nlinks $n)" -ge 1 ] || fail "node $n holds no value log link"
done
[ $(($(nlinks 1) + $(nlinks 2) + $(nlinks 3))) -ge 6 ] || fail "expected several links per replica"
# the big file's entries left the replicas' page cache once applied
# (qfs_wal_uncache, doc/rnode.md section 2): nodes 2 and 3 keep less
# than 14 MiB of their logs cached (their last entry until applied, the
# 2 MiB unit an applied one ended in, the small files' records), not the
# 24 MiB they cached before; polled, since a follower applies the last
# entries when the commit point reaches it.  Node 1 is left out: its
# archiver reads its segments back.  A data directory in tmpfs keeps
# everything, and fincore may be missing: skipped.  (A segment the log
# released stays as the value log's link: both names are looked at.)
wal_res_kb() { # each segment once: the log's name and the value log's link are one file
	find "$DATA"/nodes/n"$1"/wal "$DATA"/nodes/n"$1"/store/qfs-vlog -name '*.wal' -printf '%i %p\n' 2>/dev/null |
		sort -u -k1,1 | cut -d' ' -f2- | xargs -r fincore -b -n -o RES 2>/dev/null |
		awk '{ s += $1 } END { print int(s / 1024) }'
}
if [ "$(stat -f -c %T "$DATA")" != tmpfs ] && command -v fincore >/dev/null; then
	for n in 2 3; do
		for _ in $(seq 100); do [ "$(wal_res_kb $n)" -lt $((14 << 10)) ] && break; sleep 0.1; done
		r=$(wal_res_kb $n)
		echo "# node $n: $r KiB of its log in the page cache"
		[ "$r" -lt $((14 << 10)) ] || fail "node $n keeps $r KiB of its log in the page cache after a 24 MiB write"
	done
fi
qfs_kill9
qfs_mount
qfs_drop_caches 3
cmp "$T/src" "$MNT/t/f" || fail "the file differs after kill -9 and a remount"
for i in $(seq 24); do
	cmp "$T/s$i" "$MNT/t/s$i" || fail "small file s$i differs after kill -9 and a remount"
done

# --- 1b. small writes, one fsync each (PATCHes stored as extents of the
# chunks' records, doc/format-store.md "Value log"): appends and
# overwrites by 4 KiB pwrite + fsync, some unaligned; a clean remount,
# then kill -9 and a remount: the file reads back exactly, cold
python3 - "$T/src" "$MNT/t/p" "$T/p.want" <<'PY' || fail "pwrite + fsync"
import os, random, sys
src = open(sys.argv[1], "rb").read(3 << 20)
fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
want = bytearray()
def pw(off, data):
    global want
    os.pwrite(fd, data, off)
    os.fsync(fd)
    if off > len(want):
        want += bytes(off - len(want))
    want[off:off + len(data)] = data
rnd = random.Random(8)
for i in range(300):          # appends: 1.2 MiB, 4 KiB each
    pw(i * 4096, src[i * 4096:(i + 1) * 4096])
for i in range(120):          # overwrites, some unaligned, some past the end
    off = rnd.randrange(0, len(want) + 20000)
    n = rnd.choice([4096, 4096, 1000, 6000, 17])
    pw(off, src[(1 << 20) + i * 7001:(1 << 20) + i * 7001 + n])
os.close(fd)
open(sys.argv[3], "wb").write(want)
PY
cmp "$T/p.want" "$MNT/t/p" || fail "file p differs after its pwrites"
ext=0
for _ in $(seq 40); do # (the keeper sums the counters every 10 s)
	ext=$(awk '/^vlog /{ for (i = 1; i < NF; i++) if ($i == "extents") print $(i + 1) }' "$MNT/.quorumfs/status")
	[ "${ext:-0}" -gt 0 ] && break
	sleep 0.5
done
note "PATCHes stored as extents: $ext"
[ "${ext:-0}" -gt 300 ] || fail "the fsync'd writes were not stored as extents (extents ${ext:-none})"
qfs_umount
qfs_mount
qfs_drop_caches 3
cmp "$T/p.want" "$MNT/t/p" || fail "file p differs after a remount"
qfs_kill9
qfs_mount
qfs_drop_caches 3
cmp "$T/p.want" "$MNT/t/p" || fail "file p differs after kill -9 and a remount"
rm "$MNT/t/p" || fail "rm p"

before=$(vlog_kb)
note "value log after the write: ${before} KiB on three replicas"

# --- 2. delete: the collector frees the segments
rm "$MNT/t/f" "$MNT/t"/s* || fail "rm"
sync "$MNT/t" 2>/dev/null || true
after=$before
for _ in $(seq 60); do
	after=$(vlog_kb)
	[ "$after" -lt $((before / 2)) ] && break
	sleep 0.5
done
note "value log 30 s after the delete at most: ${after} KiB"
[ "$after" -lt $((before / 2)) ] || fail "the value log did not shrink after the delete: $before -> $after KiB"
for _ in $(seq 40); do # (the keeper sums its pass over the three nodes)
	vl=$(grep '^vlog ' "$MNT/.quorumfs/status") || fail "no vlog line in .quorumfs/status"
	echo "$vl" | awk '{ exit !($3 > 0 && $11 == 0 && $13 > 0) }' && break
	sleep 0.5
done
note "$vl"
echo "$vl" | awk '{ exit !($3 > 0 && $11 == 0 && $13 > 0) }' ||
	fail "the status line does not count the segments and the collected ones: $vl"

# --- 3 and 4. damaged links: never wrong bytes
head -c $((6 << 20)) /dev/urandom >"$T/src2" || fail "random source"
dd if="$T/src2" of="$MNT/t/g" bs=1M conv=fsync status=none || fail "dd g"
# (here the applies take records from the WAL's kept buffer: a file
# offset handed out wrong for them made every chunk fail this cmp)
qfs_drop_caches 3
cmp "$T/src2" "$MNT/t/g" || fail "file g differs before any damage"
flip() { # flip one byte every 64 KiB of every link of the nodes given
	local n
	for n in "$@"; do
		for f in "$DATA"/nodes/n"$n"/store/qfs-vlog/*.wal; do
			[ -f "$f" ] || continue
			# the collector may remove a link no pointer uses
			# between the listing and the flip: not a failure
			python3 "$QFS_SRCDIR/tests/lib/chunkread.py" --flip "$f" 2>"$T/flip.err" ||
				[ ! -e "$f" ] || fail "flipping bytes in $f: $(cat "$T/flip.err")"
		done
	done
}
readcheck() { python3 "$QFS_SRCDIR/tests/lib/chunkread.py" "$MNT/t/g" "$T/src2"; } # good/eio counts; fails on wrong bytes
flip 3
qfs_drop_caches 3
out=$(readcheck) || fail "reading with one damaged replica: $out"
note "one damaged replica: $out"
log_mark
flip 1 2
qfs_drop_caches 3
out=$(readcheck) || fail "reading with three damaged replicas: $out"
note "three damaged replicas: $out"
case "$out" in *"eio 0") fail "no read failed with every replica damaged: $out" ;; esac
log_since | qgrep "vlog value damaged" || fail "the damage was not logged"
# the WAL shares the damaged files: no clean restart is expected
qfs_kill9
echo "PASS"
