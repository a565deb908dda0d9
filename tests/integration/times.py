#!/usr/bin/env python3
# tests/integration/times.py - timestamps and sizes on a mounted quorumfs.
#
# Usage: times.py MOUNTPOINT main     all checks; leaves files for "verify"
#        times.py MOUNTPOINT verify   after a remount: times set by "main"
#                                     are still exact to the nanosecond
#
# Spec: utimens keeps nanoseconds exactly; no atime update on read (the
# mount is noatime and says so in /proc/mounts); mtime and ctime change on
# write/truncate; ctime alone on chmod/chown/rename/xattr; a directory's
# mtime/ctime change when entries are created, removed or renamed in it;
# st_blocks counts stored bytes (holes are not stored); directories have
# st_size 4096; .quorumfs entries carry the mount time.  One line per
# check; exits 1 if any check failed.

import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from qfscheck import (eq, true, run_phase, set_rel,  # noqa: E402
                      registry, under, mount_rel, wfile)

MNT = sys.argv[1]
PHASE = sys.argv[2] if len(sys.argv) > 2 else "main"
T = os.path.join(MNT, "times")
OLD = 981173106_000000000 + 123456789        # 2001-02-03 04:05:06.123456789 UTC
TICK = 0.03                                  # sleep so a new ctime is visibly later
NEAR_S = 10                                  # "now" tolerance, seconds

CHECKS, check = registry()
VERIFY, verify = registry()
P = under(T)
rel = mount_rel(MNT)
set_rel(rel)


def fmt_ns(ns):
    s, frac = divmod(ns, 1000000000)
    return "%s.%09d" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s)), frac)


def near_now(what, ns):
    now = time.time_ns()
    true("%s: %s is not within %d s of now (%s)" % (what, fmt_ns(ns), NEAR_S, fmt_ns(now)),
         abs(now - ns) < NEAR_S * 1000000000)


def later(what, got, before):
    true("%s: %s is not later than %s" % (what, fmt_ns(got), fmt_ns(before)), got > before)


def same(what, got, want):
    true("%s: changed from %s to %s" % (what, fmt_ns(want), fmt_ns(got)), got == want)


def age(path, follow=True):
    """Set atime=mtime=OLD; return the ctime that setting produced."""
    os.utime(path, ns=(OLD, OLD), follow_symlinks=follow)
    c = os.stat(path, follow_symlinks=follow).st_ctime_ns
    time.sleep(TICK)
    return c


libc = ctypes.CDLL(None, use_errno=True)
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime):
    """atime/mtime: ns since the epoch, or UTIME_NOW / UTIME_OMIT."""
    def ts(v):
        if v in (UTIME_NOW, UTIME_OMIT):
            return Timespec(0, v)
        return Timespec(*divmod(v, 1000000000))
    arr = (Timespec * 2)(ts(atime), ts(mtime))
    libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    if libc.utimensat(-100, os.fsencode(path), arr, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


# ------------------------------------------------------------------ checks

@check
def new_file_times():
    f = P("new")
    wfile(f, b"x")
    s = os.stat(f)
    near_now("atime of a new file", s.st_atime_ns)
    near_now("mtime of a new file", s.st_mtime_ns)
    near_now("ctime of a new file", s.st_ctime_ns)
    os.mkdir(P("newdir"))
    near_now("mtime of a new dir", os.stat(P("newdir")).st_mtime_ns)


@check
def utimens_nanoseconds():
    f = P("ns")
    wfile(f, b"data")
    for a, m in ((1234567890123456789, 987654321987654321),
                 (OLD, OLD + 1), (1, 999999999), (0, 0),
                 (4102444800_000000001, 4102444800_999999999)):     # 2100
        os.utime(f, ns=(a, m))
        s = os.stat(f)
        eq("atime after utime(ns=%d)" % a, s.st_atime_ns, a)
        eq("mtime after utime(ns=%d)" % m, s.st_mtime_ns, m)
    d = P("nsdir")
    os.mkdir(d)
    os.utime(d, ns=(OLD + 5, OLD + 7))
    s = os.stat(d)
    eq("dir atime/mtime", (s.st_atime_ns, s.st_mtime_ns), (OLD + 5, OLD + 7))
    os.symlink("ns", P("nslink"))
    tgt_before = os.stat(f).st_mtime_ns
    os.utime(P("nslink"), ns=(OLD + 11, OLD + 13), follow_symlinks=False)
    s = os.lstat(P("nslink"))
    eq("symlink atime/mtime (lutimes)", (s.st_atime_ns, s.st_mtime_ns), (OLD + 11, OLD + 13))
    eq("lutimes leaves the target alone", os.stat(f).st_mtime_ns, tgt_before)


@check
def utimens_pre_1970():
    f = P("old")
    wfile(f)
    t = -315619199_000000000 + 42        # 1960-01-01 00:00:01.000000042
    os.utime(f, ns=(t, t - 1))
    s = os.stat(f)
    eq("pre-1970 atime/mtime", (s.st_atime_ns, s.st_mtime_ns), (t, t - 1))


@check
def utimens_omit_now():
    f = P("omit")
    wfile(f)
    os.utime(f, ns=(OLD, OLD))
    utimensat(f, UTIME_OMIT, OLD + 1000)
    s = os.stat(f)
    eq("UTIME_OMIT atime keeps atime", (s.st_atime_ns, s.st_mtime_ns), (OLD, OLD + 1000))
    utimensat(f, OLD + 2000, UTIME_OMIT)
    s = os.stat(f)
    eq("UTIME_OMIT mtime keeps mtime", (s.st_atime_ns, s.st_mtime_ns), (OLD + 2000, OLD + 1000))
    utimensat(f, UTIME_NOW, UTIME_NOW)
    s = os.stat(f)
    near_now("UTIME_NOW atime", s.st_atime_ns)
    near_now("UTIME_NOW mtime", s.st_mtime_ns)
    c0 = age(f)
    os.utime(f, ns=(OLD + 3, OLD + 4))
    later("ctime after utimens", os.stat(f).st_ctime_ns, c0)


@check
def write_updates_mtime_ctime():
    f = P("w")
    wfile(f, b"0123456789")
    c0 = age(f)
    fd = os.open(f, os.O_WRONLY)
    os.pwrite(fd, b"abc", 3)
    os.close(fd)
    s = os.stat(f)
    later("mtime after write", s.st_mtime_ns, OLD)
    near_now("mtime after write", s.st_mtime_ns)
    later("ctime after write", s.st_ctime_ns, c0)
    eq("atime not touched by write", s.st_atime_ns, OLD)
    c0 = age(f)
    with open(f, "ab") as fh:
        fh.write(b"more")
    s = os.stat(f)
    later("mtime after append", s.st_mtime_ns, OLD)
    later("ctime after append", s.st_ctime_ns, c0)


@check
def read_keeps_atime():
    f = P("r")
    wfile(f, b"read me" * 1000)
    os.utime(f, ns=(OLD, OLD + 1))
    c0 = os.stat(f).st_ctime_ns
    with open(f, "rb") as fh:
        fh.read()
    os.listdir(T)
    s = os.stat(f)
    eq("atime after read (noatime)", s.st_atime_ns, OLD)
    eq("mtime after read", s.st_mtime_ns, OLD + 1)
    eq("ctime after read", s.st_ctime_ns, c0)


@check
def truncate_updates_mtime_ctime():
    f = P("t")
    wfile(f, b"x" * 5000)
    c0 = age(f)
    os.truncate(f, 100)
    s = os.stat(f)
    later("mtime after truncate down", s.st_mtime_ns, OLD)
    later("ctime after truncate down", s.st_ctime_ns, c0)
    c0 = age(f)
    fd = os.open(f, os.O_RDWR)
    os.ftruncate(fd, 200000)
    os.close(fd)
    s = os.stat(f)
    later("mtime after ftruncate up", s.st_mtime_ns, OLD)
    later("ctime after ftruncate up", s.st_ctime_ns, c0)
    c0 = age(f)
    os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))
    s = os.stat(f)
    later("mtime after O_TRUNC", s.st_mtime_ns, OLD)
    later("ctime after O_TRUNC", s.st_ctime_ns, c0)


@check
def chmod_chown_ctime_only():
    f = P("c")
    wfile(f, b"c")
    c0 = age(f)
    os.chmod(f, 0o600)
    s = os.stat(f)
    later("ctime after chmod", s.st_ctime_ns, c0)
    same("mtime after chmod", s.st_mtime_ns, OLD)
    same("atime after chmod", s.st_atime_ns, OLD)
    if os.geteuid() == 0:
        c0 = s.st_ctime_ns
        time.sleep(TICK)
        os.chown(f, 1000, 1000)
        s = os.stat(f)
        later("ctime after chown", s.st_ctime_ns, c0)
        same("mtime after chown", s.st_mtime_ns, OLD)


@check
def xattr_and_rename_ctime_only():
    f = P("x")
    wfile(f, b"x")
    c0 = age(f)
    os.setxattr(f, "user.t", b"1")
    s = os.stat(f)
    later("ctime after setxattr", s.st_ctime_ns, c0)
    same("mtime after setxattr", s.st_mtime_ns, OLD)
    c0 = s.st_ctime_ns
    time.sleep(TICK)
    os.removexattr(f, "user.t")
    s = os.stat(f)
    later("ctime after removexattr", s.st_ctime_ns, c0)
    same("mtime after removexattr", s.st_mtime_ns, OLD)
    c0 = s.st_ctime_ns
    time.sleep(TICK)
    os.rename(f, P("x2"))
    s = os.stat(P("x2"))
    later("ctime of a renamed file", s.st_ctime_ns, c0)
    same("mtime of a renamed file", s.st_mtime_ns, OLD)


def dir_changed(what, dirs, op):
    before = [age(d) for d in dirs]
    op()
    for d, c0 in zip(dirs, before):
        s = os.stat(d)
        w = "%s: %s" % (what, rel(d))
        later(w + " mtime", s.st_mtime_ns, OLD)
        near_now(w + " mtime", s.st_mtime_ns)
        later(w + " ctime", s.st_ctime_ns, c0)


def dir_unchanged(what, d, op):
    os.utime(d, ns=(OLD, OLD))
    op()
    same("%s: %s mtime" % (what, rel(d)), os.stat(d).st_mtime_ns, OLD)


@check
def directory_times():
    d = P("dir")
    d2 = P("dir2")
    os.mkdir(d)
    os.mkdir(d2)
    dir_changed("create", [d], lambda: wfile(os.path.join(d, "f"), b"f"))
    dir_changed("mkdir", [d], lambda: os.mkdir(os.path.join(d, "sub")))
    dir_changed("symlink", [d], lambda: os.symlink("f", os.path.join(d, "l")))
    dir_changed("mkfifo", [d], lambda: os.mkfifo(os.path.join(d, "p")))
    dir_changed("rename in place", [d], lambda: os.rename(os.path.join(d, "f"), os.path.join(d, "g")))
    dir_changed("rename across dirs", [d, d2],
                lambda: os.rename(os.path.join(d, "g"), os.path.join(d2, "g")))
    wfile(os.path.join(d, "victim"), b"v")
    dir_changed("rename over an existing file", [d, d2],
                lambda: os.rename(os.path.join(d2, "g"), os.path.join(d, "victim")))
    dir_changed("dir rename across dirs", [d, d2],
                lambda: os.rename(os.path.join(d, "sub"), os.path.join(d2, "sub")))
    dir_changed("unlink", [d], lambda: os.unlink(os.path.join(d, "l")))
    dir_changed("rmdir", [d2], lambda: os.rmdir(os.path.join(d2, "sub")))
    wfile(os.path.join(d, "h"), b"h")
    def append():
        with open(os.path.join(d, "h"), "ab") as fh:
            fh.write(b"more")
    dir_unchanged("write to a file inside", d, append)
    dir_unchanged("chmod of a file inside", d, lambda: os.chmod(os.path.join(d, "h"), 0o600))
    dir_unchanged("read of the dir", d, lambda: os.listdir(d))


@check
def sizes_and_blocks():
    f = P("sz")
    wfile(f)
    s = os.stat(f)
    eq("empty file size", s.st_size, 0)
    eq("empty file st_blocks", s.st_blocks, 0)
    true("st_blksize > 0", s.st_blksize > 0)
    wfile(f, b"1")
    s = os.stat(f)
    eq("1-byte file size", s.st_size, 1)
    true("1-byte file st_blocks > 0 (got %d)" % s.st_blocks, s.st_blocks > 0)
    data = os.urandom(300000)
    wfile(f, data)
    s = os.stat(f)
    eq("300000-byte file size", s.st_size, 300000)
    true("dense file: st_blocks*512 (%d) >= size" % (s.st_blocks * 512), s.st_blocks * 512 >= 300000)
    true("dense file: st_blocks*512 (%d) < 2*size" % (s.st_blocks * 512), s.st_blocks * 512 < 600000)
    fd = os.open(f, os.O_WRONLY)
    os.pwrite(fd, b"tail", 299998)
    os.close(fd)
    eq("size after overlapping write past EOF", os.stat(f).st_size, 300002)
    os.truncate(f, 10)
    s = os.stat(f)
    eq("size after truncate down", s.st_size, 10)
    true("st_blocks*512 after truncate to 10 bytes is small (got %d)" % (s.st_blocks * 512),
         0 < s.st_blocks * 512 < 131072)
    d = P("sizedir")
    os.mkdir(d)
    eq("dir st_size", os.stat(d).st_size, 4096)
    wfile(os.path.join(d, "x"), b"x")
    eq("dir st_size with an entry", os.stat(d).st_size, 4096)


@check
def sparse_blocks():
    g = P("sparse")
    fd = os.open(g, os.O_WRONLY | os.O_CREAT, 0o644)
    os.pwrite(fd, b"z", 10 * 1048576)
    os.close(fd)
    s = os.stat(g)
    eq("sparse file size", s.st_size, 10 * 1048576 + 1)
    # one byte stored: its chunk holds just it (trailing zeros are not kept)
    eq("sparse file: st_blocks of one stored byte", s.st_blocks, 1)
    fd = os.open(g, os.O_RDWR)
    try:
        os.write(fd, b"a" * 4096)
        eq("fstat size while open", os.fstat(fd).st_size, 10 * 1048576 + 1)
    finally:
        os.close(fd)
    f = P("sparse_trunc")
    wfile(f, b"x")
    os.truncate(f, 100 * 1048576)
    s = os.stat(f)
    eq("size after truncate up to 100 MiB", s.st_size, 100 * 1048576)
    eq("st_blocks after truncate up to 100 MiB: the one byte", s.st_blocks, 1)
    with open(f, "rb") as fh:
        fh.seek(50 * 1048576)
        eq("bytes in the hole", fh.read(4096), b"\0" * 4096)


@check
def mount_says_noatime():
    opts = None
    with open("/proc/mounts") as fh:
        for line in fh:
            f = line.split()
            if f[1] == MNT.replace(" ", "\\040"):
                opts = f[3].split(",")
    true("the mount is in /proc/mounts", opts is not None)
    true("/proc/mounts says noatime (got %s)" % ",".join(opts), "noatime" in opts)
    f = P("atime_probe")
    wfile(f, b"x" * 200000)
    os.utime(f, ns=(OLD, OLD))
    for _ in range(3):
        with open(f, "rb") as fh:
            fh.read()
    eq("atime after three reads", os.stat(f).st_atime_ns, OLD)


@check
def control_tree_times():
    q = os.path.join(MNT, ".quorumfs")
    for p in [q] + [os.path.join(q, n) for n in os.listdir(q)]:
        s = os.stat(p)
        eq("%s: atime = mtime = ctime" % rel(p), (s.st_atime_ns, s.st_ctime_ns), (s.st_mtime_ns, s.st_mtime_ns))
        true("%s: mtime %s is the mount time, not 1970" % (rel(p), fmt_ns(s.st_mtime_ns)),
             s.st_mtime_ns > 1600000000 * 10**9)
        true("%s: mtime %s is not in the future" % (rel(p), fmt_ns(s.st_mtime_ns)),
             s.st_mtime_ns <= time.time_ns())
        true("%s: mtime %s is within an hour of now" % (rel(p), fmt_ns(s.st_mtime_ns)),
             time.time_ns() - s.st_mtime_ns < 3600 * 10**9)


# -------------------------------------------------- persistence across mounts

@check
def persist_setup():
    f = P("keep")
    wfile(f, b"keep")
    os.utime(f, ns=(1111111111_111111111, 1222222222_222222222))
    wfile(P("keep_written"), b"written")
    os.mkdir(P("keep_dir"))
    os.utime(P("keep_dir"), ns=(OLD + 1, OLD + 2))
    os.symlink("keep", P("keep_link"))
    os.utime(P("keep_link"), ns=(OLD + 3, OLD + 4), follow_symlinks=False)
    s = os.stat(P("keep_written"))
    with open(os.path.join(T, ".expected"), "w") as fh:
        fh.write("%d %d %d %d\n" % (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns, s.st_size))
    os.sync()


@check
def closed_out_of_order_setup():
    # a file created first and closed last: the directory's mtime as seen
    # after the other file's close must not step back when the first is
    # stored (a pending create's store set the parent's times to its
    # create time, older than what the other file's store had set)
    d = P("ooo")
    os.mkdir(d)
    fa = os.open(os.path.join(d, "a"), os.O_CREAT | os.O_WRONLY, 0o644)
    time.sleep(0.05)
    fb = os.open(os.path.join(d, "b"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fb)
    seen = os.stat(d).st_mtime_ns
    os.write(fa, b"a")
    os.close(fa)
    with open(os.path.join(T, ".ooo"), "w") as fh:
        fh.write("%d\n" % seen)


@verify
def closed_out_of_order():
    with open(os.path.join(T, ".ooo")) as fh:
        seen = int(fh.read())
    s = os.stat(P("ooo"))
    true("directory mtime after remount %s is older than %s, seen before the last close" %
         (fmt_ns(s.st_mtime_ns), fmt_ns(seen)), s.st_mtime_ns >= seen)


@verify
def persisted():
    s = os.stat(P("keep"))
    eq("utimens ns after remount", (s.st_atime_ns, s.st_mtime_ns),
       (1111111111_111111111, 1222222222_222222222))
    s = os.stat(P("keep_dir"))
    eq("dir times after remount", (s.st_atime_ns, s.st_mtime_ns), (OLD + 1, OLD + 2))
    s = os.lstat(P("keep_link"))
    eq("symlink times after remount", (s.st_atime_ns, s.st_mtime_ns), (OLD + 3, OLD + 4))
    with open(os.path.join(T, ".expected")) as fh:
        a, m, c, n = (int(x) for x in fh.read().split())
    s = os.stat(P("keep_written"))
    eq("times and size of a written file after remount",
       (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns, s.st_size), (a, m, c, n))


def main():
    return run_phase(PHASE, T, CHECKS, VERIFY, rel)


if __name__ == "__main__":
    sys.exit(main())
