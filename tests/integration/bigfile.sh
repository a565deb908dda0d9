#!/bin/bash
# tests/integration/bigfile.sh - file data path: big, sparse, truncated, and
# boundary-sized files.
#
# - a file of QFS_BIG_MB MiB (default 2176: data past the 2 GiB offset) of
#   deterministic non-trivial content (every 1 MiB block differs) in the
#   regions that matter, holes between: its first 128 MiB (1,024 chunks),
#   64 MiB around its middle (where it is truncated below), 128 MiB
#   straddling the 2 GiB offset and its last 32 MiB (merged where they
#   overlap: 352 MiB of data in a 2176 MiB file), written through the mount
#   region after region, each in order; sha256sum through the mount (holes
#   read as zeros), before and after a remount, equals the generator's;
#   then truncated down to half (+ an odd tail, inside data) and up again:
#   prefix intact, zeros after.  (Writing all 2176 MiB took 64 s of a CI
#   run's 133 s; the regions reach the same offsets, chunk indexes and
#   boundaries);
# - a sparse file: one byte at 4 GiB; size 4 GiB + 1, all zeros before, du
#   small; 256 KiB of data straddling the 4 GiB offset reads back exactly;
# - truncate down then up on an 8 MiB file (mid-chunk, and into the inline
#   range): zeros in between;
# - a 0-byte file;
# - sizes around the 64 KiB inline limit and the 128 KiB chunk size (0, 1,
#   4095, 65535, 65536, 65537, 131071, 131072, 131073, 262145) round trip
#   exactly, also when grown by appends across those boundaries and shrunk
#   back by truncate;
# - random pwrites (including all-zero ranges over data) checked against an
#   in-memory model;
# everything checked again after a remount.  Skips when the temp dir's
# filesystem lacks room for the big file (needs ~3x QFS_BIG_MB).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

remount() {
	qfs_umount
	qfs_mount "$@"
	echo "$QFS_PID" >"$T/daemon.pid"
}

BIG_MB=${QFS_BIG_MB:-2176}
qfs_require python3 sha256sum truncate dd du cmp stat df
avail_mb=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
[ "$avail_mb" -ge $((BIG_MB * 3 + 1024)) ] ||
	skip "need $((BIG_MB * 3 + 1024)) MiB free in ${TMPDIR:-/tmp} for a $BIG_MB MiB file, have $avail_mb (set QFS_BIG_MB)"

set -o pipefail
qfs_setup
echo "$QFS_PID" >"$T/daemon.pid"
watchdog "${QFS_BIG_TIMEOUT:-900}"

cat >"$T/big.py" <<'EOF'
# helpers for bigfile.sh; python3 big.py CMD ARGS
import hashlib, os, random, sys

MIB = 1 << 20
_base = random.Random(20240607).randbytes(2 * MIB)

def block(i):
    """1 MiB block i of the pattern: a rotation of a random buffer, stamped."""
    k = (i * 7919) % MIB
    return i.to_bytes(8, "little") + _base[k + 8:k + MIB]

def pattern(n, seed=0):
    """First n bytes of the pattern (offset by seed blocks)."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += block(i)
        i += 1
    return bytes(out[:n])

def readall(p):
    with open(p, "rb") as f:
        return f.read()

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def check_bytes(p, want, what):
    got = readall(p)
    if len(got) != len(want):
        die(f"{what}: {p}: read {len(got)} bytes, want {len(want)}")
    if got != want:
        off = next(i for i in range(len(want)) if got[i] != want[i])
        die(f"{what}: {p}: first difference at offset {off} "
            f"(got {got[off:off+8].hex()}, want {want[off:off+8].hex()})")
    st = os.stat(p)
    if st.st_size != len(want):
        die(f"{what}: {p}: st_size {st.st_size}, want {len(want)}")

ZERO = bytes(MIB)

def regions(mib):
    """The 1 MiB blocks [a, b) of the big file of mib MiB that hold data
    (the rest are holes): the first 128 MiB, 64 MiB around the middle, 128
    MiB straddling 2 GiB and the last 32 MiB, clipped and merged."""
    half = mib // 2
    want = [(0, 128), (half - 32, half + 32), (2048 - 64, 2048 + 64), (mib - 32, mib)]
    out = []
    for a, b in sorted((max(0, a), min(mib, b)) for a, b in want):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out

def cmd_datamib(mib):
    print(sum(b - a for a, b in regions(int(mib))))

def big_block(i, regs):
    """Block i of the big file: the pattern inside a region, else zeros."""
    return block(i) if any(a <= i < b for a, b in regs) else ZERO

def cmd_gen(path, mib, sparse=""):
    """Write mib MiB of pattern to path (only its regions() when sparse is
    given: holes between, each region written in order), fsync, close;
    print the sha256 of the whole file (holes as zeros)."""
    mib = int(mib)
    regs = regions(mib) if sparse else [(0, mib)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for a, b in regs:
        os.lseek(fd, a * MIB, os.SEEK_SET)
        for i in range(a, b):
            mv = memoryview(block(i))
            while mv:
                n = os.write(fd, mv)
                mv = mv[n:]
    os.fsync(fd)
    os.close(fd)
    h = hashlib.sha256()
    for i in range(mib):
        h.update(big_block(i, regs))
    print(h.hexdigest())

def cmd_truncated(path, keep, size, sparse=""):
    """path must be: pattern[:keep] then zeros up to size (streamed); with
    sparse, the pattern of cmd_gen's sparse big file of size bytes."""
    keep, size = int(keep), int(size)
    regs = regions(size // MIB) if sparse else [(0, size // MIB + 1)]
    st = os.stat(path)
    if st.st_size != size:
        die(f"truncated big file: st_size {st.st_size}, want {size}")
    with open(path, "rb") as f:
        i = 0
        off = 0
        while off < size:
            got = f.read(MIB)
            if len(got) != min(MIB, size - off):
                die(f"truncated big file: short read at {off}")
            want = bytearray(big_block(i, regs)[:len(got)])
            if off + len(got) > keep:
                z = max(0, keep - off)
                want[z:] = bytes(len(got) - z)
            if got != want:
                d = next(j for j in range(len(got)) if got[j] != want[j])
                die(f"truncated big file: first difference at offset {off + d} "
                    f"(kept {keep} bytes, size {size})")
            off += len(got)
            i += 1

def cmd_boundary(d):
    """Boundary sizes, appends across them, truncates back."""
    sizes = [0, 1, 3071, 3072, 3073, 4095, 4096, 65535, 65536, 65537, 131071, 131072, 131073, 262145]
    for s in sizes:
        p = os.path.join(d, f"size-{s}")
        want = pattern(s, seed=s % 97)
        with open(p, "wb") as f:
            f.write(want)
        check_bytes(p, want, f"file of {s} bytes")
        # the same size written in odd pieces (kernel sends several writes)
        p2 = os.path.join(d, f"pieces-{s}")
        fd = os.open(p2, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for o in range(0, s, 4099):
            os.write(fd, want[o:o + 4099])
        os.close(fd)
        check_bytes(p2, want, f"file of {s} bytes written in 4099-byte pieces")
    # grow by appends (each in its own open/close) across 64 KiB and 128 KiB
    p = os.path.join(d, "grow")
    full = pattern(300000, seed=7)
    with open(p, "wb") as f:
        f.write(full[:65000])
    cur = 65000
    for s in [65535, 65536, 65537, 131071, 131072, 131073, 262145]:
        with open(p, "ab") as f:
            f.write(full[cur:s])
        cur = s
        check_bytes(p, full[:s], f"grown by append to {s} bytes")
    # one append jumping from inline straight over two chunks
    p3 = os.path.join(d, "jump")
    with open(p3, "wb") as f:
        f.write(full[:100])
    with open(p3, "ab") as f:
        f.write(full[100:262145])
    check_bytes(p3, full[:262145], "appended from 100 to 262145 bytes")
    # shrink back with truncate
    for s in [262144, 131073, 131072, 131071, 65537, 65536, 65535, 1000, 0]:
        os.truncate(p, s)
        check_bytes(p, full[:s], f"truncated down to {s} bytes")
    # and grow again from empty across the inline limit
    with open(p, "ab") as f:
        f.write(full[:70000])
    check_bytes(p, full[:70000], "regrown from 0 to 70000 bytes")
    # across the inline limit (QFS_INLINE_MAX, 3072 bytes): appends, a
    # truncate under it and over it again, an overwrite inside it
    p4 = os.path.join(d, "limit")
    with open(p4, "wb") as f:
        f.write(full[:3000])
    for s in [3071, 3072, 3073, 5000]:
        with open(p4, "ab") as f:
            f.write(full[os.path.getsize(p4):s])
        check_bytes(p4, full[:s], f"grown by append to {s} bytes (inline limit)")
    for s in [3073, 3072, 2000]:
        os.truncate(p4, s)
        check_bytes(p4, full[:s], f"truncated down to {s} bytes (inline limit)")
    os.truncate(p4, 4000)
    check_bytes(p4, full[:2000] + bytes(2000), "truncated up from 2000 to 4000 bytes (inline limit)")
    with open(p4, "r+b") as f:
        f.seek(1000)
        f.write(full[1000:3500])
    check_bytes(p4, full[:3500] + bytes(500), "overwritten across the inline limit")

def cmd_boundary_verify(d):
    sizes = [0, 1, 3071, 3072, 3073, 4095, 4096, 65535, 65536, 65537, 131071, 131072, 131073, 262145]
    for s in sizes:
        want = pattern(s, seed=s % 97)
        check_bytes(os.path.join(d, f"size-{s}"), want, f"after remount, file of {s} bytes")
        check_bytes(os.path.join(d, f"pieces-{s}"), want, f"after remount, pieces file of {s} bytes")
    full = pattern(300000, seed=7)
    check_bytes(os.path.join(d, "grow"), full[:70000], "after remount, regrown file")
    check_bytes(os.path.join(d, "jump"), full[:262145], "after remount, jump file")
    check_bytes(os.path.join(d, "limit"), full[:3500] + bytes(500), "after remount, limit file")

def cmd_random(p, model):
    """Random pwrites/ftruncates through one fd against a bytearray model."""
    rnd = random.Random(4242)
    m = bytearray(pattern(300 * 1024, seed=3))
    with open(p, "wb") as f:
        f.write(m)
    fd = os.open(p, os.O_RDWR)
    for step in range(300):
        r = rnd.random()
        if r < 0.05:
            n = rnd.randrange(0, 1300 * 1024)
            os.ftruncate(fd, n)
            if n < len(m):
                del m[n:]
            else:
                m += bytes(n - len(m))
            continue
        off = rnd.randrange(0, 1200 * 1024)
        ln = rnd.randrange(1, 200 * 1024)
        if r < 0.25:
            data = bytes(ln)                          # zeros over data
        else:
            data = pattern(ln, seed=step)[rnd.randrange(0, 64):][:ln]
            ln = len(data)
        if off > len(m):
            m += bytes(off - len(m))
        m[off:off + ln] = data
        n = os.pwrite(fd, data, off)
        if n != ln:
            die(f"random pwrite: short write {n} of {ln} at {off}")
        if step % 50 == 49:
            os.fsync(fd)
            got = os.pread(fd, len(m) + 10, 0)
            if got != bytes(m):
                die(f"random pwrites: content differs from the model after step {step}")
    os.close(fd)
    check_bytes(p, bytes(m), "random pwrites")
    with open(model, "wb") as f:
        f.write(m)

def cmd_edge4g(p):
    """256 KiB straddling the 4 GiB offset; read back exactly."""
    off = (4 << 30) - 100000
    data = pattern(256 * 1024, seed=11)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    if os.pwrite(fd, data, off) != len(data):
        die("edge4g: short write")
    os.close(fd)
    cmd_edge4g_verify(p)

def cmd_edge4g_verify(p):
    off = (4 << 30) - 100000
    data = pattern(256 * 1024, seed=11)
    st = os.stat(p)
    if st.st_size != off + len(data):
        die(f"edge4g: st_size {st.st_size}, want {off + len(data)}")
    fd = os.open(p, os.O_RDONLY)
    got = os.pread(fd, len(data) + 100, off)
    head = os.pread(fd, 200000, 0)
    before = os.pread(fd, 300000, off - 300000)
    os.close(fd)
    if got != data:
        die("edge4g: data across the 4 GiB offset differs")
    if head != bytes(200000) or before != bytes(300000):
        die("edge4g: the hole before the data is not zeros")

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
EOF
py() { python3 "$T/big.py" "$@" || fail "python check '$1' failed (see above)"; }

mkdir "$MNT/big" || fail "mkdir table"
B=$MNT/big

# --- small cases first: they are quick and say the most when they fail
: >"$B/empty" || fail "create 0-byte file"
[ "$(stat -c %s "$B/empty")" = 0 ] || fail "0-byte file has size $(stat -c %s "$B/empty")"
[ "$(wc -c <"$B/empty")" = 0 ] || fail "0-byte file reads data"
mkdir "$B/bnd" || fail "mkdir"
py boundary "$B/bnd"
py random "$B/rand" "$T/rand.model"
note "boundary sizes, appends, truncates, random pwrites ok"

# truncate down then up on an 8 MiB file: mid-chunk, then into the inline range
py gen "$B/tr" 8 >/dev/null
truncate -s 3000000 "$B/tr" || fail "truncate down"
truncate -s 8388608 "$B/tr" || fail "truncate up"
py truncated "$B/tr" 3000000 8388608
truncate -s 1000 "$B/tr" || fail "truncate down to 1000"
truncate -s 200000 "$B/tr" || fail "truncate up to 200000"
py truncated "$B/tr" 1000 200000
note "truncate down/up ok"

# --- sparse: one byte at 4 GiB
printf X | dd of="$B/sparse" bs=1 seek=$((4 << 30)) conv=notrunc status=none || fail "dd seek 4 GiB"
[ "$(stat -c %s "$B/sparse")" = $(((4 << 30) + 1)) ] || fail "sparse size $(stat -c %s "$B/sparse")"
[ "$(tail -c 1 "$B/sparse")" = X ] || fail "byte at 4 GiB not read back"
cmp -n $((4 << 30)) "$B/sparse" /dev/zero || fail "sparse file: the 4 GiB hole does not read as zeros"
# Holes are not stored and st_blocks counts what is: one byte, not 4 GiB
k=$(du -k "$B/sparse" | cut -f1)
[ "$k" -le 4 ] || fail "du of a 4 GiB sparse file with one byte: $k KiB"
py edge4g "$B/edge4g"
note "sparse ok"

# --- the big file
t0=$SECONDS
want=$(python3 "$T/big.py" gen "$B/huge" "$BIG_MB" sparse) || fail "writing the $BIG_MB MiB file failed"
note "wrote the $BIG_MB MiB file ($(python3 "$T/big.py" datamib "$BIG_MB") MiB of data) in $((SECONDS - t0)) s"
[ "$(stat -c %s "$B/huge")" = $((BIG_MB << 20)) ] || fail "big file size $(stat -c %s "$B/huge")"
got=$(sha256sum <"$B/huge" | cut -d' ' -f1) || fail "reading the big file"
[ "$got" = "$want" ] || fail "big file sha256 $got, generator wrote $want"

remount
t0=$SECONDS
got=$(sha256sum <"$B/huge" | cut -d' ' -f1) || fail "reading the big file after remount"
note "read $BIG_MB MiB in $((SECONDS - t0)) s"
[ "$got" = "$want" ] || fail "after remount, big file sha256 $got, want $want"
[ "$(stat -c %s "$B/empty")" = 0 ] || fail "after remount, 0-byte file has size $(stat -c %s "$B/empty")"
py boundary_verify "$B/bnd"
cmp "$B/rand" "$T/rand.model" || fail "after remount, random-pwrite file differs from the model"
py truncated "$B/tr" 1000 200000
[ "$(stat -c %s "$B/sparse")" = $(((4 << 30) + 1)) ] || fail "after remount, sparse size $(stat -c %s "$B/sparse")"
[ "$(tail -c 1 "$B/sparse")" = X ] || fail "after remount, byte at 4 GiB lost"
py edge4g_verify "$B/edge4g"

# truncate the big file down to half plus an odd tail, then back up
keep=$(((BIG_MB << 19) + 12345))
truncate -s "$keep" "$B/huge" || fail "truncate big file down"
[ "$(stat -c %s "$B/huge")" = "$keep" ] || fail "size after truncating down: $(stat -c %s "$B/huge")"
truncate -s $((BIG_MB << 20)) "$B/huge" || fail "truncate big file up"
py truncated "$B/huge" "$keep" $((BIG_MB << 20)) sparse
remount
py truncated "$B/huge" "$keep" $((BIG_MB << 20)) sparse

qfs_umount
note "PASS ($SECONDS s)"
exit 0
