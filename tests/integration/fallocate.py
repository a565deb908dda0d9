#!/usr/bin/env python3
# tests/integration/fallocate.py - fallocate(2) and honest space numbers on
# a mounted quorumfs (doc/fs.md "fallocate" and "Space and inode numbers").
#
# Usage: fallocate.py MOUNTPOINT main     all checks; leaves files for "verify"
#        fallocate.py MOUNTPOINT verify   after a remount: holes, sizes,
#                                         st_blocks and inode counts kept
#
# Spec: every fallocate that succeeds moves mtime and ctime (not atime) in
# the txn of its change, as ext4 of Linux 6.18, also one that changes no
# byte; one that fails moves nothing.
# Mode 0 grows the size (nothing is reserved: st_blocks unchanged),
# KEEP_SIZE changes no size; PUNCH_HOLE|KEEP_SIZE makes the range read as
# zeros and gives its space back (st_blocks), also on a file with buffered
# writes; ZERO_RANGE zeros the range below the size as a punch and, without
# KEEP_SIZE, grows the size to its end (the bytes from its offset on read
# as zeros, also past a chunk bound and out of an inline file); other modes
# EOPNOTSUPP; EINVAL, EFBIG, EBADF, ESPIPE, EROFS as
# Linux.  st_blocks counts the bytes stored (holes and the trailing zeros
# of a 128 KiB chunk are not); directories show st_size 4096; statvfs
# f_files - f_ffree is the number of inodes in use.

import ctypes
import errno
import os
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from qfscheck import (eq, true, expect_err, run_phase, set_rel, Fail,  # noqa: E402
                      registry, under, mount_rel, wfile, rfile)

MNT = sys.argv[1]
PHASE = sys.argv[2] if len(sys.argv) > 2 else "main"
T = os.path.join(MNT, "falloc")
Q = os.path.join(MNT, ".quorumfs")
CHUNK = 131072
KEEP_SIZE, PUNCH_HOLE, COLLAPSE_RANGE, ZERO_RANGE, INSERT_RANGE = 0x1, 0x2, 0x8, 0x10, 0x20
FILE_MAX = 1 << 44

CHECKS, check = registry()
VERIFY, verify = registry()
P = under(T)
rel = mount_rel(MNT)
set_rel(rel)

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd, mode, off, length):
    """fallocate(2) itself (glibc's posix_fallocate would emulate)."""
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def falloc_path(path, mode, off, length, flags=os.O_WRONLY):
    fd = os.open(path, flags)
    try:
        fallocate(fd, mode, off, length)
    finally:
        os.close(fd)


def rand(n):
    """Random bytes whose last byte is not zero (so the stored length is n)."""
    b = bytearray(os.urandom(n))
    b[-1] |= 1
    return bytes(b)


def blocks(path):
    return os.stat(path).st_blocks


def inodes_used():
    v = os.statvfs(MNT)
    return v.f_files - v.f_ffree


def record(name, value):
    with open(os.path.join(T, ".expected"), "a") as fh:
        fh.write("%s %r\n" % (name, value))


def expected():
    out = {}
    with open(os.path.join(T, ".expected")) as fh:
        for line in fh:
            k, v = line.split(" ", 1)
            out[k] = eval(v)  # written by this script above
    return out


# ------------------------------------------------------------------ checks

@check
def mode0_grows_size():
    f = P("grow")
    wfile(f, b"abc")
    old = 981173106_000000000
    os.utime(f, ns=(old, old))
    c0 = os.stat(f).st_ctime_ns
    time.sleep(0.02)
    falloc_path(f, 0, 0, 3 * CHUNK + 5)
    s = os.stat(f)
    eq("size after fallocate mode 0 past the end", s.st_size, 3 * CHUNK + 5)
    eq("nothing is reserved: st_blocks", s.st_blocks, 1)
    true("mtime moved by a size change", s.st_mtime_ns > old)
    true("ctime moved", s.st_ctime_ns > c0)
    eq("bytes", rfile(f), b"abc" + b"\0" * (3 * CHUNK + 2))
    falloc_path(f, 0, 100, 1000)            # inside the file: no size change
    eq("size after fallocate inside", os.stat(f).st_size, 3 * CHUNK + 5)
    falloc_path(f, 0, 10 * CHUNK, 1)        # one byte far out
    eq("size after fallocate of 1 byte at 1.25 MiB", os.stat(f).st_size, 10 * CHUNK + 1)
    record("grow_size", 10 * CHUNK + 1)


@check
def keep_size():
    f = P("keep")
    data = rand(5000)
    wfile(f, data)
    old = 981173106_000000000
    os.utime(f, ns=(old, old))
    falloc_path(f, KEEP_SIZE, 0, 10 << 20)
    s = os.stat(f)
    eq("KEEP_SIZE keeps the size", s.st_size, 5000)
    true("KEEP_SIZE moves mtime (as ext4)", s.st_mtime_ns > old)
    eq("KEEP_SIZE keeps the bytes", rfile(f), data)


@check
def punch_middle_gives_space_back():
    f = P("punch")
    data = rand(1000000)
    wfile(f, data)
    b0 = blocks(f)
    true("dense file st_blocks (%d) covers its size" % b0, b0 * 512 >= 1000000 - 4 * 512)
    old = 981173106_000000000
    os.utime(f, ns=(old, old))
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, CHUNK, 2 * CHUNK)   # two whole chunks
    s = os.stat(f)
    eq("size after punch", s.st_size, 1000000)
    true("mtime moved by punch", s.st_mtime_ns > old)
    eq("st_blocks given back: 256 KiB = 512 blocks", b0 - s.st_blocks, 512)
    want = data[:CHUNK] + b"\0" * (2 * CHUNK) + data[3 * CHUNK:]
    eq("bytes after a chunk-aligned punch", rfile(f), want)
    # a partial range inside one chunk
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 1000, 100)
    want = want[:1000] + b"\0" * 100 + want[1100:]
    eq("bytes after punching 100 bytes", rfile(f), want)
    # across a chunk boundary, partial at both ends
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 3 * CHUNK + 7, 2 * CHUNK)
    want = want[:3 * CHUNK + 7] + b"\0" * (2 * CHUNK) + want[5 * CHUNK + 7:]
    eq("bytes after an unaligned punch over two chunk boundaries", rfile(f), want)
    true("st_blocks went down again (%d)" % blocks(f), blocks(f) < s.st_blocks)
    # the tail chunk up to the end and past it: the size stays
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 7 * CHUNK, 10 << 20)
    want = want[:7 * CHUNK] + b"\0" * (1000000 - 7 * CHUNK)
    eq("size after punching past the end", os.stat(f).st_size, 1000000)
    eq("bytes after punching the tail", rfile(f), want)
    record("punch_bytes", None)
    with open(P("punch.model"), "wb") as fh:   # for the verify phase
        fh.write(want)
    record("punch_blocks", blocks(f))


@check
def punch_all_and_beyond():
    f = P("whole")
    wfile(f, rand(5 * CHUNK))
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 0, 5 * CHUNK)
    s = os.stat(f)
    eq("punch of the whole file: size", s.st_size, 5 * CHUNK)
    eq("punch of the whole file: st_blocks", s.st_blocks, 0)
    eq("punch of the whole file: bytes", rfile(f), b"\0" * (5 * CHUNK))
    old = 981173106_000000000
    os.utime(f, ns=(old, old))
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 6 * CHUNK, CHUNK)     # past the end
    s = os.stat(f)
    true("punch past the end moves mtime all the same (as ext4)", s.st_mtime_ns > old)
    eq("punch past the end keeps the size", s.st_size, 5 * CHUNK)
    eq("punch past the end keeps the bytes", rfile(f), b"\0" * (5 * CHUNK))


# Every mode quorumfs supports, as ext4 of Linux 6.18 does them (checked on
# a native ext4 directory): a call that succeeds moves mtime and ctime (to
# the same time), whether or not it changes a byte or the size; one that
# fails moves nothing; atime never moves.  (mode, offset, length) on a file
# of SMALL bytes (inline) and of BIG bytes (chunked), offsets relative to
# the size.
TIME_CASES = (
    ("mode 0 growing the size", 0, "end", 4096),
    ("mode 0 inside the size", 0, 100, 1000),
    ("mode 0 straddling the end", 0, "end-100", 4096),
    ("KEEP_SIZE inside", KEEP_SIZE, 0, 1000),
    ("KEEP_SIZE straddling the end", KEEP_SIZE, "end-100", 4096),
    ("KEEP_SIZE past the end", KEEP_SIZE, "end+4096", 4096),
    ("PUNCH_HOLE|KEEP_SIZE inside", PUNCH_HOLE | KEEP_SIZE, 100, 1000),
    ("PUNCH_HOLE|KEEP_SIZE straddling the end", PUNCH_HOLE | KEEP_SIZE, "end-100", 4096),
    ("PUNCH_HOLE|KEEP_SIZE at the end", PUNCH_HOLE | KEEP_SIZE, "end", 4096),
    ("PUNCH_HOLE|KEEP_SIZE past the end", PUNCH_HOLE | KEEP_SIZE, "end+4096", 4096),
    ("ZERO_RANGE inside", ZERO_RANGE, 100, 1000),
    ("ZERO_RANGE straddling the end", ZERO_RANGE, "end-100", 4096),
    ("ZERO_RANGE past the end", ZERO_RANGE, "end+4096", 4096),
    ("ZERO_RANGE|KEEP_SIZE inside", ZERO_RANGE | KEEP_SIZE, 100, 1000),
    ("ZERO_RANGE|KEEP_SIZE straddling the end", ZERO_RANGE | KEEP_SIZE, "end-100", 4096),
    ("ZERO_RANGE|KEEP_SIZE past the end", ZERO_RANGE | KEEP_SIZE, "end+4096", 4096),
)
TIME_FAILS = (
    ("length 0", 0, 0, 0, "EINVAL"),
    ("length -1", 0, 0, -1, "EINVAL"),
    ("offset -1", 0, -1, 10, "EINVAL"),
    ("PUNCH_HOLE without KEEP_SIZE", PUNCH_HOLE, 0, 4096, "EOPNOTSUPP"),
    ("ZERO_RANGE|PUNCH_HOLE", ZERO_RANGE | PUNCH_HOLE | KEEP_SIZE, 0, 4096, "EOPNOTSUPP"),
    ("COLLAPSE_RANGE", COLLAPSE_RANGE, 0, 4096, "EOPNOTSUPP"),
    ("INSERT_RANGE", INSERT_RANGE, 0, 4096, "EOPNOTSUPP"),
    ("PUNCH_HOLE|KEEP_SIZE past the largest size", PUNCH_HOLE | KEEP_SIZE, FILE_MAX, 1, "EFBIG"),
)


def where(off, size):
    if isinstance(off, int):
        return off
    if off == "end":
        return size
    return size + int(off[3:])


def proposals():
    """The cell proposals so far (.quorumfs/stats: one per stored txn)."""
    with open(os.path.join(Q, "stats")) as fh:
        for line in fh:
            w = line.split()
            if w[:2] == ["cell", "proposals"]:
                return int(w[2])
    raise Fail("no 'cell proposals N' line in .quorumfs/stats")


@check
def times_as_ext4():
    old = 981173106_000000000
    for kind, size in (("inline", 3000), ("chunked", 2 * CHUNK + 100)):
        f = P("times_%s" % kind)
        wfile(f, b"x")
        dfd = os.open(T, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)   # the table directory's pending times stored now, not by a timer below
        finally:
            os.close(dfd)
        for name, mode, off, length in TIME_CASES:
            data = rand(size)
            wfile(f, data)
            os.utime(f, ns=(old, old))
            c0 = os.stat(f).st_ctime_ns
            time.sleep(0.02)
            fd = os.open(f, os.O_RDWR)
            try:
                p0 = proposals()
                fallocate(fd, mode, where(off, size), length)
                p1 = proposals()
                s = os.fstat(fd)                # through the open handle
            finally:
                os.close(fd)
            what = "%s file, %s" % (kind, name)
            eq("%s: one txn (the change and its times together)" % what, p1 - p0, 1)
            true("%s: mtime moved (as ext4)" % what, s.st_mtime_ns > old)
            true("%s: ctime moved" % what, s.st_ctime_ns > c0)
            eq("%s: mtime = ctime" % what, s.st_mtime_ns, s.st_ctime_ns)
            eq("%s: atime kept" % what, s.st_atime_ns, old)
            s2 = os.stat(f)                     # and after the close
            eq("%s: mtime after close" % what, s2.st_mtime_ns, s.st_mtime_ns)
            eq("%s: ctime after close" % what, s2.st_ctime_ns, s.st_ctime_ns)
            eq("%s: atime after close" % what, s2.st_atime_ns, old)
        f = P("times_%s" % kind)
        wfile(f, rand(size))
        os.utime(f, ns=(old, old))
        s0 = os.stat(f)
        time.sleep(0.02)
        fd = os.open(f, os.O_RDWR)
        try:
            for name, mode, off, length, err in TIME_FAILS:
                expect_err(err, fallocate, fd, mode, off, length)
                s = os.fstat(fd)
                what = "%s file, failed %s" % (kind, name)
                eq("%s: mtime kept" % what, s.st_mtime_ns, old)
                eq("%s: ctime kept" % what, s.st_ctime_ns, s0.st_ctime_ns)
                eq("%s: atime kept" % what, s.st_atime_ns, old)
                eq("%s: size kept" % what, s.st_size, size)
        finally:
            os.close(fd)


@check
def punch_inline_file():
    f = P("small")
    data = rand(3000)
    wfile(f, data)
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 1000, 1000)
    eq("bytes of a small (inline) file after punch", rfile(f), data[:1000] + b"\0" * 1000 + data[2000:])
    falloc_path(f, PUNCH_HOLE | KEEP_SIZE, 2000, 5000)
    s = os.stat(f)
    eq("small file: size after punching its tail", s.st_size, 3000)
    eq("small file: st_blocks after punching its tail (1000 bytes stored)", s.st_blocks, 2)
    eq("small file: bytes", rfile(f), data[:1000] + b"\0" * 2000)


@check
def zero_range():
    # inside a chunked file, over a chunk bound: as a punch, size kept
    f = P("zero")
    data = rand(3 * CHUNK + 100)
    wfile(f, data)
    old = 981173106_000000000
    os.utime(f, ns=(old, old))
    falloc_path(f, ZERO_RANGE, CHUNK - 10, 20)
    want = data[:CHUNK - 10] + b"\0" * 20 + data[CHUNK + 10:]
    s = os.stat(f)
    eq("ZERO_RANGE inside: size", s.st_size, len(data))
    true("ZERO_RANGE moved mtime", s.st_mtime_ns > old)
    eq("ZERO_RANGE inside: bytes", rfile(f), want)
    # KEEP_SIZE past the end: the bytes below the size only
    falloc_path(f, ZERO_RANGE | KEEP_SIZE, 3 * CHUNK, CHUNK)
    want = want[:3 * CHUNK] + b"\0" * 100
    eq("ZERO_RANGE|KEEP_SIZE past the end: size", os.stat(f).st_size, len(data))
    eq("ZERO_RANGE|KEEP_SIZE past the end: bytes", rfile(f), want)
    # wholly past the end with KEEP_SIZE: no byte changes, but mtime and
    # ctime move, as on ext4 and xfs (they allocate there)
    os.utime(f, ns=(old, old))
    c0 = os.stat(f).st_ctime_ns
    time.sleep(0.02)
    falloc_path(f, ZERO_RANGE | KEEP_SIZE, 4 * CHUNK, CHUNK)
    s = os.stat(f)
    eq("ZERO_RANGE|KEEP_SIZE wholly past the end: size", s.st_size, len(data))
    true("ZERO_RANGE|KEEP_SIZE wholly past the end moved mtime", s.st_mtime_ns > old)
    true("ZERO_RANGE|KEEP_SIZE wholly past the end moved ctime", s.st_ctime_ns > c0)
    eq("ZERO_RANGE|KEEP_SIZE wholly past the end: bytes", rfile(f), want)
    # without KEEP_SIZE past the end: zeros from the offset, size to the end
    falloc_path(f, ZERO_RANGE, 2 * CHUNK + 5, 3 * CHUNK)
    want = want[:2 * CHUNK + 5] + b"\0" * (3 * CHUNK)
    eq("ZERO_RANGE past the end: size", os.stat(f).st_size, 5 * CHUNK + 5)
    eq("ZERO_RANGE past the end: bytes", rfile(f), want)
    with open(P("zero.model"), "wb") as fh:   # for the verify phase
        fh.write(want)
    # an inline file grown past the inline limit by ZERO_RANGE
    g = P("zero_small")
    small = rand(3000)
    wfile(g, small)
    falloc_path(g, ZERO_RANGE, 1000, 2 * CHUNK)
    eq("inline file, ZERO_RANGE past the end: size", os.stat(g).st_size, 1000 + 2 * CHUNK)
    eq("inline file, ZERO_RANGE past the end: bytes", rfile(g), small[:1000] + b"\0" * (2 * CHUNK))
    fd = os.open(g, os.O_RDWR)
    try:
        os.pwrite(fd, b"tail", 1000 + 2 * CHUNK)
    finally:
        os.close(fd)
    eq("inline file grown by ZERO_RANGE, then written", rfile(g),
       small[:1000] + b"\0" * (2 * CHUNK) + b"tail")
    # with buffered writes: they are written back first, then zeroed
    h = P("zero_buffered")
    fd = os.open(h, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        buf = rand(200000)
        os.write(fd, buf)
        fallocate(fd, ZERO_RANGE, 50000, 100000)
        eq("ZERO_RANGE over buffered writes", os.pread(fd, 200000, 0),
           buf[:50000] + b"\0" * 100000 + buf[150000:])
    finally:
        os.close(fd)


@check
def punch_with_buffered_writes():
    f = P("buffered")
    data = bytearray(rand(600000))
    fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(data))              # buffered, not yet written back
        fallocate(fd, PUNCH_HOLE | KEEP_SIZE, 100000, 300000)
        data[100000:400000] = b"\0" * 300000
        eq("read through the same fd after punch", os.pread(fd, 600000, 0), bytes(data))
        os.pwrite(fd, b"after", 200000)        # write into the hole, still open
        data[200000:200005] = b"after"
        fallocate(fd, 0, 0, 700000)            # grow with a write buffered
        data += b"\0" * 100000
        eq("size while open", os.fstat(fd).st_size, 700000)
    finally:
        os.close(fd)
    eq("bytes after close", rfile(f), bytes(data))
    with open(P("buffered.model"), "wb") as fh:
        fh.write(bytes(data))


@check
def sparse_du():
    f = P("sparse1g")
    with open(f, "wb") as fh:
        fh.truncate(1 << 30)
    eq("1 GiB of hole: st_blocks", blocks(f), 0)
    fd = os.open(f, os.O_WRONLY)
    os.pwrite(fd, rand(4096), 512 << 20)       # one 4 KiB block at a chunk start
    os.close(fd)
    s = os.stat(f)
    eq("1 GiB file with one 4 KiB block: size", s.st_size, 1 << 30)
    eq("1 GiB file with one 4 KiB block: st_blocks (4 KiB)", s.st_blocks, 8)
    fd = os.open(f, os.O_WRONLY)
    os.pwrite(fd, rand(4096), (100 << 20) + 3 * 4096)   # 12 KiB into a chunk
    os.close(fd)
    # the chunk is kept from its start to its last non-zero byte: 16 KiB
    eq("st_blocks after a second block 12 KiB into a chunk", blocks(f), 8 + 32)
    record("sparse_blocks", 40)


@check
def errors():
    f = P("err")
    wfile(f, rand(1000))
    fd = os.open(f, os.O_RDWR)
    try:
        for mode, name in ((ZERO_RANGE | PUNCH_HOLE | KEEP_SIZE, "ZERO_RANGE|PUNCH_HOLE"),
                           (COLLAPSE_RANGE, "COLLAPSE_RANGE"), (INSERT_RANGE, "INSERT_RANGE"),
                           (PUNCH_HOLE, "PUNCH_HOLE without KEEP_SIZE")):
            try:
                fallocate(fd, mode, 0, 4096)
            except OSError as e:
                true("errno of fallocate %s: %s, expected EOPNOTSUPP" % (name, errno.errorcode.get(e.errno)),
                     e.errno == errno.EOPNOTSUPP)
            else:
                raise Fail("fallocate %s succeeded" % name)
        expect_err("EINVAL", fallocate, fd, 0, -1, 10)
        expect_err("EINVAL", fallocate, fd, 0, 0, 0)
        expect_err("EINVAL", fallocate, fd, 0, 0, -5)
        expect_err("EFBIG", fallocate, fd, 0, FILE_MAX - 10, 11)
        expect_err("EFBIG", fallocate, fd, PUNCH_HOLE | KEEP_SIZE, FILE_MAX, 1)
        fallocate(fd, 0, FILE_MAX - 10, 10)     # exactly the largest size is fine
        eq("size at the largest file size", os.fstat(fd).st_size, FILE_MAX)
        os.ftruncate(fd, 1000)
        # the failures above did not turn fallocate off for the mount
        fallocate(fd, 0, 0, 2000)
        eq("fallocate still works after refused modes", os.fstat(fd).st_size, 2000)
    finally:
        os.close(fd)
    rd = os.open(f, os.O_RDONLY)
    try:
        expect_err("EBADF", fallocate, rd, 0, 0, 10)
        expect_err("EBADF", fallocate, rd, PUNCH_HOLE | KEEP_SIZE, 0, 10)
    finally:
        os.close(rd)
    dfd = os.open(T, os.O_RDONLY | os.O_DIRECTORY)
    try:
        expect_err("EBADF", fallocate, dfd, 0, 0, 10)   # not open for writing
    finally:
        os.close(dfd)
    os.mkfifo(P("fifo"))
    ffd = os.open(P("fifo"), os.O_RDWR)
    try:
        expect_err("ESPIPE", fallocate, ffd, 0, 0, 10)
    finally:
        os.close(ffd)
    sfd = os.open(os.path.join(Q, "status"), os.O_RDONLY)
    try:
        expect_err("EBADF", fallocate, sfd, 0, 0, 10)
    finally:
        os.close(sfd)
    nfd = os.open(os.path.join(Q, "nodes"), os.O_WRONLY)
    try:
        expect_err("EROFS", fallocate, nfd, 0, 0, 10)
        expect_err("EROFS", fallocate, nfd, PUNCH_HOLE | KEEP_SIZE, 0, 10)
    finally:
        os.close(nfd)


@check
def directory_size():
    d = P("dirsize")
    os.mkdir(d)
    s = os.stat(d)
    eq("directory st_size", s.st_size, 4096)
    eq("directory st_blocks", s.st_blocks, 8)
    for i in range(50):
        wfile(os.path.join(d, "f%02d" % i), b"x")
    eq("directory st_size with entries", os.stat(d).st_size, 4096)
    eq("table directory st_size", os.stat(T).st_size, 4096)
    eq("root st_size", os.stat(MNT).st_size, 4096)


@check
def df_inodes():
    d = P("inodes")
    os.mkdir(d)
    u0 = inodes_used()
    true("inodes in use > 1 (got %d)" % u0, u0 > 1)
    for i in range(10):
        wfile(os.path.join(d, "f%d" % i), b"x")
    eq("inodes used after 10 creates", inodes_used() - u0, 10)
    os.mkdir(os.path.join(d, "sub"))
    os.symlink("f0", os.path.join(d, "l"))
    os.mkfifo(os.path.join(d, "p"))
    eq("inodes used after mkdir, symlink, mkfifo", inodes_used() - u0, 13)
    for i in range(5):
        os.unlink(os.path.join(d, "f%d" % i))
    os.rmdir(os.path.join(d, "sub"))
    eq("inodes used after 5 unlinks and an rmdir", inodes_used() - u0, 7)
    os.rename(os.path.join(d, "f5"), os.path.join(d, "f6"))   # replaces f6
    eq("inodes used after a rename over a file", inodes_used() - u0, 6)
    os.link(os.path.join(d, "f6"), os.path.join(d, "f6b"))   # a name, not an inode
    eq("inodes used after a hard link", inodes_used() - u0, 6)
    os.unlink(os.path.join(d, "f6"))
    eq("inodes used after unlinking one of two names", inodes_used() - u0, 6)
    fd = os.open(os.path.join(d, "f7"), os.O_RDONLY)
    try:
        os.unlink(os.path.join(d, "f7"))
        eq("an open unlinked file still uses its inode", inodes_used() - u0, 6)
    finally:
        os.close(fd)
    deadline = time.time() + 30                 # released after close (the release is asynchronous: 30 s for a loaded machine)
    while inodes_used() - u0 != 5 and time.time() < deadline:
        time.sleep(0.05)
    eq("inodes used after the last close of an unlinked file", inodes_used() - u0, 5)
    # a new table counts its directory
    t2 = os.path.join(MNT, "falloc_t2")
    os.mkdir(t2)
    eq("inodes used after a new table", inodes_used() - u0, 6)
    wfile(os.path.join(t2, "x"), b"x")
    eq("inodes used after a file in the new table", inodes_used() - u0, 7)
    v = os.statvfs(MNT)
    true("f_favail = f_ffree", v.f_favail == v.f_ffree)


# -------------------------------------------------- persistence across mounts

@verify
def persisted():
    e = expected()
    eq("size of a grown file after remount", os.stat(P("grow")).st_size, e["grow_size"])
    eq("punched file after remount", rfile(P("punch")), rfile(P("punch.model")))
    eq("st_blocks of the punched file after remount", blocks(P("punch")), e["punch_blocks"])
    eq("buffered-punch file after remount", rfile(P("buffered")), rfile(P("buffered.model")))
    eq("ZERO_RANGE file after remount", rfile(P("zero")), rfile(P("zero.model")))
    eq("st_blocks of the sparse file after remount", blocks(P("sparse1g")), e["sparse_blocks"])
    eq("directory st_size after remount", os.stat(P("dirsize")).st_size, 4096)
    # and the punched file can be punched again after the remount
    falloc_path(P("punch"), PUNCH_HOLE | KEEP_SIZE, 0, 1000000)
    eq("st_blocks after punching everything", blocks(P("punch")), 0)


def main():
    return run_phase(PHASE, T, CHECKS, VERIFY, rel)


if __name__ == "__main__":
    sys.exit(main())
