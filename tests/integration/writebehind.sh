#!/bin/bash
# tests/integration/writebehind.sh - the write-back that a full buffer
# starts behind the write (fs/data.c "write-back behind"; doc/fs.md).
#
# A write that fills a file's 8 MiB buffer replies first and writes the
# buffer back after; writes past it go on meanwhile, anything else on the
# file waits for it.  Here, through one descriptor, against an in-memory
# model of the file:
# - 1 MiB writes of random data up to 40 MiB: st_size right after every
#   write; a read of the first and of the last MiB written right after the
#   write that started a write-back (the read waits for it, and sees it);
#   every read here is O_DIRECT: write(2) fills the kernel's page cache
#   (no writeback cache), which would answer a plain read itself;
# - a write into the range in flight (it waits, then wins), a write that
#   straddles the end of the range in flight, an ftruncate down into data
#   and a write past a hole after it, each right after a write-back began;
# - the whole file equal to the model before close, after close, and
#   after a remount; st_blocks after close at least the data's;
# - .quorumfs/stats: more than 3 write-backs ran behind, none failed;
# - two files written at once by two processes, a third process reading
#   the first meanwhile: both equal to their data (no deadlock: watchdog);
# - one file, three threads: 48 MiB of 1 MiB writes, an fsync every 4 ms
#   on the same descriptor, and O_DIRECT reads of random ranges of what
#   was written so far, each equal to the data;
# - the quorum lost while a write-back runs behind (nodes 2 and 3 stopped,
#   quorum_timeout 5 s): the writes past it that fit the buffer are
#   acknowledged; the write that fills the buffer again waits for it and
#   fails with ETIMEDOUT, taking no effect (not a second write-back behind
#   taking everything, the error left for the close); fsync fails with
#   ETIMEDOUT and stats count a failed write-back behind; nodes started,
#   the failed write retried and the rest written, fsync succeeds, and
#   after a remount the file holds every byte.

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

qfs_require python3 cmp
QT=5
qfs_setup -o quorum_timeout=$QT
watchdog 240
mkdir "$MNT/t" || fail "mkdir"

behind() { awk '$1 == "fs" && $2 == "write_behind" { print $'"$1"' }' "$MNT/.quorumfs/stats"; }

cat >"$T/model.py" <<'EOF'
# python3 model.py PATH EXPECT_OUT: the writes above against a model
import errno, os, sys
path, out = sys.argv[1], sys.argv[2]
MiB = 1 << 20
model = bytearray()
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

def pw(data, off):
    n = os.pwrite(fd, data, off)
    assert n == len(data), "short write %d of %d at %d" % (n, len(data), off)
    if off > len(model):
        model.extend(bytes(off - len(model)))
    model[off:off + len(data)] = data
    st = os.fstat(fd)
    assert st.st_size == len(model), "st_size %d, model %d after a write at %d" % (st.st_size, len(model), off)

import mmap
dfd = os.open(path, os.O_RDONLY | os.O_DIRECT)

def dread(f, off, n):
    """n bytes at off read with O_DIRECT: past the kernel's page cache,
    which write(2) fills (no writeback cache), so the daemon answers"""
    lo = off & ~4095
    hi = (off + n + 4095) & ~4095
    buf = mmap.mmap(-1, hi - lo)
    got = os.preadv(f, [buf], lo)
    return bytes(buf[off - lo:max(off - lo, min(got, off + n - lo))])

def check(what, off, n):
    got = dread(dfd, off, n)
    want = bytes(model[off:off + n])
    assert got == want, "%s: %d bytes at %d differ from the model (got %d bytes)" % (what, n, off, len(got))

# 8 MiB: the eighth write fills the buffer and starts a write-back behind
for i in range(8):
    pw(os.urandom(MiB), i * MiB)
check("first MiB right after the write-back began", 0, MiB)
check("last MiB right after the write-back began", 7 * MiB, MiB)
# beside it: a write past it, then one into the range in flight
for i in range(8, 16):
    pw(os.urandom(MiB), i * MiB)
pw(os.urandom(65536), 4 * MiB + 100)
check("the write into the range in flight", 4 * MiB, MiB)
# a write straddling the end of the range in flight (16 MiB)
for i in range(16, 24):
    pw(os.urandom(MiB), i * MiB)
pw(os.urandom(MiB), 16 * MiB - 4096)
# ftruncate down into data right after a write-back began, a hole, a write past it
for i in range(24, 33):
    pw(os.urandom(MiB), i * MiB)
os.ftruncate(fd, 30 * MiB + 5)
del model[30 * MiB + 5:]
assert os.fstat(fd).st_size == 30 * MiB + 5
pw(os.urandom(3 * MiB + 17), 35 * MiB)
for i in range(39, 41):
    pw(os.urandom(MiB), i * MiB)
check("the whole file before fsync", 0, len(model) + 10)
os.fsync(fd)
check("the whole file after fsync", 0, len(model) + 10)
os.close(fd)
st = os.stat(path)
assert st.st_size == len(model), "size %d after close, model %d" % (st.st_size, len(model))
# the holes (30 MiB + 5 .. 35 MiB, 38 MiB + 17 .. 39 MiB) are not stored
zero = bytes(4096)
data_blocks = 8 * sum(1 for i in range(0, len(model), 4096) if model[i:i + 4096] != zero[:len(model[i:i + 4096])])
assert st.st_blocks >= data_blocks - 256, "st_blocks %d, data %d" % (st.st_blocks, data_blocks)
with open(out, "wb") as f:
    f.write(model)
print("model ok: %d bytes" % len(model))
EOF

python3 "$T/model.py" "$MNT/t/f" "$T/f.expect" || fail "writes against the model"
cmp "$MNT/t/f" "$T/f.expect" || fail "t/f differs from the model after close"
n=$(behind 3)
[ -n "$n" ] && [ "$n" -gt 3 ] || fail "write-backs behind: '$n', want more than 3 (stats: $(grep '^fs ' "$MNT/.quorumfs/stats"))"
[ "$(behind 5)" = 0 ] || fail "a write-back behind failed: $(grep '^fs ' "$MNT/.quorumfs/stats")"
note "write-backs behind: $n"

# two writers at once, a reader of the first meanwhile
head -c $((24 << 20)) /dev/urandom >"$T/a"
head -c $((20 << 20)) /dev/urandom >"$T/b"
dd if="$T/a" of="$MNT/t/a" bs=1M 2>/dev/null &
pa=$!
dd if="$T/b" of="$MNT/t/b" bs=256k 2>/dev/null &
pb=$!
( for _ in $(seq 40); do cat "$MNT/t/a" >/dev/null 2>&1; done ) &
pr=$!
wait "$pa" || fail "dd a"
wait "$pb" || fail "dd b"
wait "$pr"
cmp "$MNT/t/a" "$T/a" || fail "t/a differs"
cmp "$MNT/t/b" "$T/b" || fail "t/b differs"

# one descriptor, three threads: sequential 1 MiB writes; an fsync every
# few ms (a write-back of its own between and beside the ones behind);
# reads of what was written so far, each equal to the data
cat >"$T/race.py" <<'EOF'
# python3 race.py PATH SRC: the writes of SRC, with fsyncs and reads beside
import mmap, os, random, sys, threading, time
path, src = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
MiB = 1 << 20
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
dfd = os.open(path, os.O_RDONLY | os.O_DIRECT) # reads the daemon answers, not the page cache
buf = mmap.mmap(-1, 3 * MiB)
done = [0]
stop = threading.Event()
errors = []
syncs = [0]
reads = [0]

def syncer():
    while not stop.is_set():
        os.fsync(fd)
        syncs[0] += 1
        time.sleep(0.004)

def reader():
    rnd = random.Random(7)
    while not stop.is_set():
        upto = done[0]
        if upto == 0:
            time.sleep(0.001)
            continue
        off = rnd.randrange(0, upto) & ~4095
        n = min(rnd.randrange(1, 3 * MiB), upto - off) & ~4095
        if n == 0:
            continue
        got = os.preadv(dfd, [memoryview(buf)[:n]], off)
        if got != n or buf[:n] != data[off:off + n]:
            errors.append("read of %d bytes at %d (of %d written) differs" % (n, off, upto))
            stop.set()
        reads[0] += 1

th = [threading.Thread(target=syncer), threading.Thread(target=reader)]
for t in th:
    t.start()
try:
    for off in range(0, len(data), MiB):
        assert os.write(fd, data[off:off + MiB]) == min(MiB, len(data) - off)
        done[0] = off + min(MiB, len(data) - off)
        if stop.is_set():
            break
finally:
    stop.set()
    for t in th:
        t.join()
os.fsync(fd)
os.close(fd)
os.close(dfd)
if errors:
    sys.exit(errors[0])
print("race: %d MiB written, %d fsyncs, %d reads beside" % (len(data) >> 20, syncs[0], reads[0]))
EOF
head -c $((48 << 20)) /dev/urandom >"$T/c"
python3 "$T/race.py" "$MNT/t/c" "$T/c" || fail "writes with fsyncs and reads beside"
cmp "$MNT/t/c" "$T/c" || fail "t/c differs"

qfs_umount
mount_again -o quorum_timeout=$QT
cmp "$MNT/t/f" "$T/f.expect" || fail "t/f differs from the model after a remount"
cmp "$MNT/t/c" "$T/c" || fail "t/c differs after a remount"
cmp "$MNT/t/a" "$T/a" || fail "t/a differs after a remount"
cmp "$MNT/t/b" "$T/b" || fail "t/b differs after a remount"

# the quorum lost under a write-back behind
failed0=$(behind 5)
head -c $((17 << 20)) /dev/urandom >"$T/g"
cat >"$T/lost.py" <<'EOF'
# python3 lost.py PATH DATA CTL: create PATH and write its first MiB
# (buffered: the file's state is in memory, so the writes below need not
# read the store), say "opened" in CTL and wait for "stopped"; then
# write the rest of DATA (16 MiB) in 1 MiB writes with no quorum: the
# 8th MiB starts a write-back behind, the next 7 fit the buffer beside it
# and are acknowledged, the one that fills it again must fail with
# ETIMEDOUT (the write-back behind failed); fsync fails with ETIMEDOUT;
# say "failed", wait for "go", write from the failed write on, fsync:
# it succeeds.
import errno, os, sys, time
path, src, ctl = sys.argv[1:4]
data = open(src, "rb").read()
MiB = 1 << 20

def say_wait(say, want):
    with open(ctl, "w") as f:
        f.write(say + "\n")
    while open(ctl).read() != want + "\n":
        time.sleep(0.1)

fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
assert os.pwrite(fd, data[:MiB], 0) == MiB
say_wait("opened", "stopped")
failed_at = None
for off in range(MiB, len(data), MiB):
    t0 = time.monotonic()
    try:
        n = os.pwrite(fd, data[off:off + MiB], off)
    except OSError as e:
        if e.errno != errno.ETIMEDOUT:
            sys.exit("write at %d MiB without a quorum: %s, want ETIMEDOUT" % (off // MiB, e))
        print("write at %d MiB: ETIMEDOUT after %.2f s" % (off // MiB, time.monotonic() - t0), flush=True)
        failed_at = off
        break
    assert n == MiB
    print("write at %d MiB: %.2f s" % (off // MiB, time.monotonic() - t0), flush=True)
if failed_at is None:
    sys.exit("every write succeeded while the write-back behind failed")
if failed_at < 9 * MiB:
    sys.exit("a write at %d MiB failed: the writes that fit beside the write-back must not" % (failed_at // MiB))
try:
    os.fsync(fd)
    sys.exit("fsync without a quorum succeeded")
except OSError as e:
    if e.errno != errno.ETIMEDOUT:
        sys.exit("fsync without a quorum: %s, want ETIMEDOUT" % e)
print("fsync: ETIMEDOUT", flush=True)
say_wait("failed", "go")
for off in range(failed_at, len(data), MiB):
    assert os.pwrite(fd, data[off:off + MiB], off) == MiB
os.fsync(fd)
os.close(fd)
print("fsync after the nodes came back: ok", flush=True)
EOF
# ctl_wait WORD: until lost.py says WORD in $T/ctl; 1 if it ended first
ctl_wait() {
	for _ in $(seq 600); do
		grep -q "$1" "$T/ctl" 2>/dev/null && return 0
		kill -0 "$pl" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "$1" "$T/ctl"
}
echo wait >"$T/ctl"
python3 "$T/lost.py" "$MNT/t/g" "$T/g" "$T/ctl" >"$T/lost.out" 2>&1 &
pl=$!
ctl_wait opened || { cat "$T/lost.out" >&2; fail "t/g not created"; }
qfs_node_ctl "stop 2" || fail "stop 2"
qfs_node_ctl "stop 3" || fail "stop 3"
sleep 2.5 # a read lease taken just before runs out (deadline.sh)
echo stopped >"$T/ctl"
ctl_wait failed || { cat "$T/lost.out" >&2; fail "no fsync failure without a quorum"; }
failed1=$(behind 5)
[ "$failed1" -gt "$failed0" ] || fail "stats count no failed write-back behind: $(grep '^fs ' "$MNT/.quorumfs/stats")"
qfs_node_ctl "start 2" || fail "start 2"
qfs_node_ctl "start 3" || fail "start 3"
echo go >"$T/ctl"
wait "$pl" || { cat "$T/lost.out" >&2; fail "writes without a quorum"; }
cat "$T/lost.out"
cmp "$MNT/t/g" "$T/g" || fail "t/g differs after the quorum came back"
qfs_umount
mount_again
cmp "$MNT/t/g" "$T/g" || fail "t/g differs after a remount"
cmp "$MNT/t/f" "$T/f.expect" || fail "t/f differs after the second remount"
qfs_umount
echo "PASS: writebehind"
