#!/usr/bin/env python3
# tests/integration/posix.py - syscall behaviour of a mounted quorumfs.
#
# Usage: posix.py MOUNTPOINT [DATA_DIR]
#
# Every check works inside its own table (MOUNTPOINT/posix) except the ones
# about the root and the control tree.  Each check prints one line, "ok NAME"
# or "FAIL NAME: what was expected, what we got" (errno names, not numbers);
# a failing assertion ends its check, the other checks still run, and the
# script exits 1 if any check failed.  stdlib only (ctypes for renameat2 and
# readdir, since Python has no wrapper for them).

import ctypes
import os
import random
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from qfscheck import (expect_err, expect_one_of, eq, true, run_checks, set_rel,  # noqa: E402
                      registry, under, mount_rel, rfile, exists)

MNT = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else None
T = os.path.join(MNT, "posix")
Q = os.path.join(MNT, ".quorumfs")

CHECKS, check = registry()
RNG = random.Random(20240607)
P = under(T)
rel = mount_rel(MNT, long_path=200, long_value=60)
set_rel(rel)

def wfile(path, data, mode=0o644, flags=os.O_TRUNC):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, mode)
    try:
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + 1048576])
    finally:
        os.close(fd)


def rnd(n):
    return RNG.randbytes(n)


def preadall(fd, n, off):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b:
            break
        out += b
    return out


libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4


def renameat2(src, dst, flags):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_char_p, ctypes.c_uint]
    r = libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


class Dirent(ctypes.Structure):
    # glibc struct dirent on 64-bit Linux (x86_64, aarch64)
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def raw_readdir(path):
    """All names readdir(3) returns, '.' and '..' included, in order."""
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    d = libc.opendir(os.fsencode(path))
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    names = []
    try:
        while True:
            ctypes.set_errno(0)
            ent = libc.readdir(d)
            if not ent:
                e = ctypes.get_errno()
                if e:
                    raise OSError(e, os.strerror(e), path)
                break
            names.append(ent.contents.d_name)
    finally:
        libc.closedir(d)
    return names


# ---------------------------------------------------------------- errors

@check
def enoent():
    m = P("missing")
    expect_err("ENOENT", os.open, m, os.O_RDONLY)
    expect_err("ENOENT", os.stat, m)
    expect_err("ENOENT", os.lstat, m)
    expect_err("ENOENT", os.unlink, m)
    expect_err("ENOENT", os.rmdir, m)
    expect_err("ENOENT", os.readlink, m)
    expect_err("ENOENT", os.chmod, m, 0o600)
    expect_err("ENOENT", os.truncate, m, 0)
    expect_err("ENOENT", os.listdir, m)
    expect_err("ENOENT", os.rename, m, P("missing2"))
    expect_err("ENOENT", os.mkdir, P("nodir", "x"))
    expect_err("ENOENT", os.open, P("nodir", "x"), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("ENOENT", os.stat, os.path.join(MNT, "no-such-table"))
    # a failed lookup must not be cached as a lasting negative answer
    wfile(m, b"now here")
    eq("content after creating a name that was looked up missing", rfile(m), b"now here")
    os.unlink(m)
    expect_err("ENOENT", os.stat, m)


@check
def eexist():
    f = P("ex_file")
    wfile(f, b"keep me")
    expect_err("EEXIST", os.open, f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    expect_err("EEXIST", os.open, f, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o644)
    eq("content after failed O_EXCL|O_TRUNC", rfile(f), b"keep me")
    expect_err("EEXIST", os.mkdir, f)
    expect_err("EEXIST", os.symlink, "x", f)
    expect_err("EEXIST", os.mkfifo, f)
    true("ex_file is still a regular file", stat.S_ISREG(os.lstat(f).st_mode))
    d = P("ex_dir")
    os.mkdir(d)
    expect_err("EEXIST", os.mkdir, d)
    expect_err("EEXIST", os.open, d, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.symlink("dangling-target", P("ex_link"))
    expect_err("EEXIST", os.open, P("ex_link"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    true("O_EXCL through a dangling symlink created nothing", not exists(P("dangling-target")))
    n = P("ex_new")
    fd = os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    expect_err("EEXIST", os.open, n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


@check
def enotempty():
    d = P("ne_dir")
    os.mkdir(d)
    wfile(os.path.join(d, "f"), b"x")
    expect_err("ENOTEMPTY", os.rmdir, d)
    eq("listing after failed rmdir", os.listdir(d), ["f"])
    d2 = P("ne_dir2")
    os.makedirs(os.path.join(d2, "sub"))
    expect_err("ENOTEMPTY", os.rmdir, d2)
    d3 = P("ne_dir3")
    os.mkdir(d3)
    os.mkfifo(os.path.join(d3, "fifo"))
    expect_err("ENOTEMPTY", os.rmdir, d3)
    e = P("ne_empty")
    os.mkdir(e)
    expect_err("ENOTEMPTY", os.rename, e, d)
    true("source dir survives failed rename", stat.S_ISDIR(os.stat(e).st_mode))
    eq("target content after failed rename", rfile(os.path.join(d, "f")), b"x")
    os.unlink(os.path.join(d, "f"))
    os.rmdir(d)
    expect_err("ENOENT", os.stat, d)


@check
def table_with_open_unlinked_file():
    # a table whose only file is unlinked but still open cannot be dropped
    # (EBUSY) until that file is closed; the fd keeps working meanwhile
    t = os.path.join(MNT, "busy_table")
    os.mkdir(t)
    f = os.path.join(t, "held")
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"still here")
        os.unlink(f)
        expect_err("EBUSY", os.rmdir, t)
        eq("read through the fd of the unlinked file", os.pread(fd, 100, 0), b"still here")
    finally:
        os.close(fd)
    os.rmdir(t)
    expect_err("ENOENT", os.stat, t)


@check
def enotdir():
    f = P("nd_file")
    wfile(f, b"file data")
    expect_err("ENOTDIR", os.rmdir, f)
    expect_err("ENOTDIR", os.open, os.path.join(f, "x"), os.O_RDONLY)
    expect_err("ENOTDIR", os.stat, os.path.join(f, "x"))
    expect_err("ENOTDIR", os.mkdir, os.path.join(f, "x"))
    expect_err("ENOTDIR", os.open, os.path.join(f, "x"), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("ENOTDIR", os.listdir, f)
    expect_err("ENOTDIR", os.open, f, os.O_RDONLY | os.O_DIRECTORY)
    d = P("nd_dir")
    os.mkdir(d)
    wfile(os.path.join(d, "inner"), b"inner")
    expect_err("ENOTDIR", os.rename, d, f)
    eq("file content after failed dir-over-file rename", rfile(f), b"file data")
    eq("dir content after failed dir-over-file rename", os.listdir(d), ["inner"])


@check
def eisdir():
    d = P("id_dir")
    os.mkdir(d)
    expect_err("EISDIR", os.open, d, os.O_WRONLY)
    expect_err("EISDIR", os.open, d, os.O_RDWR)
    expect_err("EISDIR", os.open, d, os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("EISDIR", os.unlink, d)
    expect_err("EISDIR", os.truncate, d, 0)
    fd = os.open(d, os.O_RDONLY)
    try:
        expect_err("EISDIR", os.read, fd, 10)
    finally:
        os.close(fd)
    f = P("id_file")
    wfile(f, b"abc")
    expect_err("EISDIR", os.rename, f, d)
    eq("file after failed file-over-dir rename", rfile(f), b"abc")
    true("dir still a dir", stat.S_ISDIR(os.stat(d).st_mode))


@check
def einval_rename():
    os.makedirs(P("iv_a", "b", "c"))
    wfile(P("iv_a", "b", "c", "f"), b"deep")
    expect_err("EINVAL", os.rename, P("iv_a"), P("iv_a", "x"))
    expect_err("EINVAL", os.rename, P("iv_a"), P("iv_a", "b", "x"))
    expect_err("EINVAL", os.rename, P("iv_a", "b"), P("iv_a", "b", "c", "x"))
    expect_err("EINVAL", renameat2, P("iv_a"), P("iv_a", "b", "c", "x"), RENAME_NOREPLACE)
    eq("subtree after failed renames", rfile(P("iv_a", "b", "c", "f")), b"deep")
    eq("listing of iv_a/b/c", os.listdir(P("iv_a", "b", "c")), ["f"])
    wfile(P("iv_x"), b"xxx")
    wfile(P("iv_y"), b"yyy")
    expect_err("EINVAL", renameat2, P("iv_x"), P("iv_y"), RENAME_EXCHANGE | RENAME_NOREPLACE)
    expect_err("EINVAL", renameat2, P("iv_x"), P("iv_y"), RENAME_WHITEOUT)
    expect_err("EINVAL", renameat2, P("iv_x"), P("iv_y"), 8)
    eq("iv_x after refused renameat2", rfile(P("iv_x")), b"xxx")
    eq("iv_y after refused renameat2", rfile(P("iv_y")), b"yyy")
    # exchanging a directory with its own ancestor or descendant (tests/integration/links.sh
    # covers RENAME_EXCHANGE itself)
    expect_err("EINVAL", renameat2, P("iv_a"), P("iv_a", "b", "c"), RENAME_EXCHANGE)
    expect_err("EINVAL", renameat2, P("iv_a", "b", "c"), P("iv_a"), RENAME_EXCHANGE)
    eq("subtree after refused exchanges", rfile(P("iv_a", "b", "c", "f")), b"deep")


@check
def enametoolong():
    n255 = "a" * 255
    wfile(P(n255), b"255")
    eq("read back 255-byte name", rfile(P(n255)), b"255")
    true("255-byte name listed", n255 in os.listdir(T))
    m255 = "b" * 255
    os.rename(P(n255), P(m255))
    eq("read after rename to 255-byte name", rfile(P(m255)), b"255")
    os.unlink(P(m255))
    u255 = "\u00e9" * 127 + "z"          # 255 bytes of UTF-8
    eq("utf-8 test name byte length", len(os.fsencode(u255)), 255)
    os.mkdir(P(u255))
    true("utf-8 255-byte dir listed", u255 in os.listdir(T))
    os.rmdir(P(u255))

    n256 = "a" * 256
    u256 = "\u00e9" * 128                 # 256 bytes of UTF-8
    wfile(P("ntl_src"), b"src")
    expect_err("ENAMETOOLONG", os.open, P(n256), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("ENAMETOOLONG", os.open, P(u256), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("ENAMETOOLONG", os.mkdir, P(n256))
    expect_err("ENAMETOOLONG", os.symlink, "x", P(n256))
    expect_err("ENAMETOOLONG", os.mkfifo, P(n256))
    expect_err("ENAMETOOLONG", os.stat, P(n256))
    expect_err("ENAMETOOLONG", os.rename, P("ntl_src"), P(n256))
    eq("source after failed rename to a 256-byte name", rfile(P("ntl_src")), b"src")
    true("no 256-byte entry appeared", all(len(os.fsencode(x)) <= 255 for x in os.listdir(T)))

    t4095 = "d/" * 2047 + "e"
    eq("symlink target length", len(t4095), 4095)
    os.symlink(t4095, P("ntl_link"))
    eq("readlink of a 4095-byte target", os.readlink(P("ntl_link")), t4095)
    eq("lstat size of a 4095-byte symlink", os.lstat(P("ntl_link")).st_size, 4095)
    expect_err("ENAMETOOLONG", os.symlink, t4095 + "f", P("ntl_link2"))
    true("no symlink left by failed 4096-byte symlink", not exists(P("ntl_link2")))


@check
def eperm():
    f = P("ep_file")
    wfile(f, b"one")
    os.mkdir(P("ep_dir"))
    expect_err("EPERM", os.link, P("ep_dir"), P("ep_hard"))
    true("failed link created nothing", not exists(P("ep_hard")))
    eq("st_nlink of the directory after a failed link", os.stat(P("ep_dir")).st_nlink, 2)
    expect_err("EPERM", os.open, os.path.join(MNT, "rootfile"), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("EPERM", os.symlink, "posix", os.path.join(MNT, "rootlink"))
    expect_err("EPERM", os.mkfifo, os.path.join(MNT, "rootfifo"))
    if os.geteuid() == 0:
        expect_err("EPERM", os.mknod, os.path.join(MNT, "rootdev"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    expect_err("EPERM", os.link, f, os.path.join(MNT, "roothard"))
    # moving a file to the root would also create a non-directory there
    expect_one_of(["EPERM", "EXDEV"], os.rename, f, os.path.join(MNT, "rootmoved"))
    eq("file after failed move to the root", rfile(f), b"one")
    for n in ("rootfile", "rootlink", "rootfifo", "rootdev", "roothard", "rootmoved"):
        true("no %s at the root" % n, not exists(os.path.join(MNT, n)))
    bad = [n for n in os.listdir(MNT)
           if n != ".quorumfs" and not stat.S_ISDIR(os.lstat(os.path.join(MNT, n)).st_mode)]
    eq("non-directories at the root", bad, [])


@check
def erofs_control():
    st = os.path.join(Q, "status")
    true(".quorumfs is a directory", stat.S_ISDIR(os.stat(Q).st_mode))
    before = rfile(st)
    true("status readable and has a version line", b"version " in before)
    expect_err("EROFS", os.open, os.path.join(Q, "new"), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_err("EROFS", os.open, st, os.O_WRONLY)
    expect_err("EROFS", os.open, st, os.O_RDWR)
    expect_err("EROFS", os.open, st, os.O_WRONLY | os.O_TRUNC)
    expect_err("EROFS", os.open, st, os.O_WRONLY | os.O_APPEND)
    expect_err("EROFS", os.mkdir, os.path.join(Q, "d"))
    expect_err("EROFS", os.symlink, "x", os.path.join(Q, "l"))
    expect_err("EROFS", os.mkfifo, os.path.join(Q, "p"))
    expect_err("EROFS", os.unlink, st)
    expect_err("EROFS", os.rename, st, os.path.join(Q, "renamed"))
    expect_err("EROFS", os.chmod, st, 0o666)
    expect_err("EROFS", os.chown, st, 1, 1)
    expect_err("EROFS", os.utime, st, ns=(1, 1))
    expect_err("EROFS", os.truncate, st, 0)
    expect_err("EROFS", os.setxattr, st, "user.x", b"1")
    expect_err("EROFS", os.removexattr, st, "user.x")
    expect_err("EROFS", os.chmod, Q, 0o777)
    wfile(P("ro_src"), b"src")
    expect_err("EROFS", os.rename, P("ro_src"), os.path.join(Q, "moved"))
    eq("file after failed rename into .quorumfs", rfile(P("ro_src")), b"src")
    for n in ("new", "d", "l", "p", "renamed", "moved"):
        true("no .quorumfs/%s appeared" % n, not exists(os.path.join(Q, n)))
    true("status still present", b"version " in rfile(st))


@check
def exdev_tables():
    t2 = os.path.join(MNT, "posix_other")
    os.mkdir(t2)
    wfile(P("xd_file"), b"cross")
    expect_err("EXDEV", os.rename, P("xd_file"), os.path.join(t2, "xd_file"))
    eq("source after EXDEV", rfile(P("xd_file")), b"cross")
    true("target absent after EXDEV", not exists(os.path.join(t2, "xd_file")))
    os.makedirs(P("xd_dir", "sub"))
    expect_err("EXDEV", os.rename, P("xd_dir"), os.path.join(t2, "xd_dir"))
    expect_err("EXDEV", renameat2, P("xd_file"), os.path.join(t2, "nr"), RENAME_NOREPLACE)
    r = subprocess.run(["mv", P("xd_file"), os.path.join(t2, "moved")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eq("mv between tables exit status (output %r)" % r.stdout, r.returncode, 0)
    eq("content moved by mv", rfile(os.path.join(t2, "moved")), b"cross")
    true("mv removed the source", not exists(P("xd_file")))


# ---------------------------------------------------------------- data

@check
def rw_seek_pread_pwrite():
    os.umask(0o022)
    f = P("rw")
    data = bytearray(rnd(100000))
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    for a, b in ((0, 1000), (1000, 70000), (70000, 100000)):
        eq("write() return", os.write(fd, data[a:b]), b - a)
    os.close(fd)
    s = os.stat(f)
    eq("mode of new file", stat.S_IMODE(s.st_mode), 0o640)
    true("is a regular file", stat.S_ISREG(s.st_mode))
    eq("st_size", s.st_size, 100000)
    eq("st_nlink of a file", s.st_nlink, 1)
    eq("owner of new file", (s.st_uid, s.st_gid), (os.geteuid(), os.getegid()))
    eq("read back", rfile(f), bytes(data))
    fd = os.open(f, os.O_RDWR)
    try:
        eq("lseek SEEK_END", os.lseek(fd, 0, os.SEEK_END), 100000)
        eq("read at EOF", os.read(fd, 10), b"")
        eq("lseek -10 SEEK_END", os.lseek(fd, -10, os.SEEK_END), 99990)
        eq("read last 10", os.read(fd, 10), bytes(data[-10:]))
        os.lseek(fd, 100, os.SEEK_SET)
        eq("lseek SEEK_CUR", os.lseek(fd, 50, os.SEEK_CUR), 150)
        eq("read after SEEK_CUR", os.read(fd, 20), bytes(data[150:170]))
        eq("pread across 64 KiB", preadall(fd, 100, 65500), bytes(data[65500:65600]))
        eq("pread beyond EOF", os.pread(fd, 10, 200000), b"")
        eq("pread doesn't move the offset", os.lseek(fd, 0, os.SEEK_CUR), 170)
        patch = rnd(300)
        eq("pwrite return", os.pwrite(fd, patch, 65400), 300)
        data[65400:65700] = patch
        os.lseek(fd, 10, os.SEEK_SET)
        os.write(fd, b"HELLO")
        data[10:15] = b"HELLO"
        eq("pread sees own pwrite before close", preadall(fd, 300, 65400), patch)
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    eq("content after pwrite/write", rfile(f), bytes(data))
    eq("size unchanged by in-place writes", os.stat(f).st_size, 100000)


@check
def large_and_boundaries():
    f = P("big")
    n = 3 * 131072 + 12345
    data = bytearray(rnd(n))
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    for off in range(0, n, 4096):          # like cp: many small writes
        os.write(fd, data[off:off + 4096])
    os.close(fd)
    eq("size of chunked file", os.stat(f).st_size, n)
    eq("chunked file read back", rfile(f), bytes(data))
    fd = os.open(f, os.O_RDWR)
    try:
        for off in (131072 - 7, 2 * 131072 - 1, 3 * 131072):
            p = rnd(4000)
            os.pwrite(fd, p, off)
            data[off:off + 4000] = p
            eq("pread across chunk boundary at %d" % off, preadall(fd, 4000, off), p)
    finally:
        os.close(fd)
    eq("chunked file after boundary pwrites", rfile(f), bytes(data))
    g = P("edge64k")
    d = rnd(65536)
    wfile(g, d)
    eq("65536-byte file", rfile(g), d)
    wfile(g, b"!", flags=os.O_APPEND)
    eq("65536+1 byte file", rfile(g), d + b"!")
    os.truncate(g, 65536)
    eq("back to 65536", rfile(g), d)
    os.truncate(g, 100)
    eq("down to 100", rfile(g), d[:100])
    big = rnd(1048576 + 7)
    wfile(g, big)
    eq("1 MiB + 7 written in one write", rfile(g), big)


@check
def truncate_up_down():
    f = P("tr")
    wfile(f, b"hello")
    os.truncate(f, 300000)
    eq("size after truncate up", os.stat(f).st_size, 300000)
    eq("truncate up reads zeros", rfile(f), b"hello" + bytes(300000 - 5))
    os.truncate(f, 3)
    eq("truncate down", rfile(f), b"hel")
    os.truncate(f, 3)
    eq("truncate to same size", rfile(f), b"hel")
    fd = os.open(f, os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
        eq("fstat after ftruncate 0", os.fstat(fd).st_size, 0)
        os.ftruncate(fd, 10)
        eq("ftruncate up reads zeros", preadall(fd, 100, 0), bytes(10))
    finally:
        os.close(fd)
    eq("size after ftruncate", os.stat(f).st_size, 10)
    # shrink then grow must not resurrect old bytes (inline and chunked)
    wfile(f, b"a" * 1000)
    os.truncate(f, 10)
    os.truncate(f, 1000)
    eq("inline shrink+grow", rfile(f), b"a" * 10 + bytes(990))
    wfile(f, b"\xab" * 200000)
    os.truncate(f, 70000)
    os.truncate(f, 200000)
    eq("chunked shrink+grow", rfile(f), b"\xab" * 70000 + bytes(130000))
    d = rnd(300000)
    wfile(f, d)
    os.truncate(f, 131072 + 5)
    fd = os.open(f, os.O_WRONLY)
    os.pwrite(fd, b"Z", 262144 + 1)
    os.close(fd)
    eq("shrink mid-chunk then write past EOF", rfile(f), d[:131077] + bytes(262145 - 131077) + b"Z")


@check
def o_trunc():
    f = P("otrunc")
    wfile(f, b"a" * 100)
    fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
    try:
        eq("fstat size right after open(O_TRUNC) of a 100-byte file", os.fstat(fd).st_size, 0)
        os.write(fd, b"hi")
    finally:
        os.close(fd)
    eq("O_TRUNC + write 2 bytes over a 100-byte file", rfile(f), b"hi")
    wfile(f, b"x" * 300000)
    wfile(f, b"0123456789")
    eq("O_TRUNC + write 10 bytes over a 300000-byte file", rfile(f), b"0123456789")
    fd = os.open(f, os.O_RDWR | os.O_TRUNC)
    os.close(fd)
    eq("size after O_RDWR|O_TRUNC open+close", os.stat(f).st_size, 0)
    eq("content after O_TRUNC open+close", rfile(f), b"")


@check
def sparse():
    f = P("sparse")
    end = 10 * 1048576
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"end", end)
        os.pwrite(fd, b"mid", 5 * 1048576 + 3)
    finally:
        os.close(fd)
    eq("sparse size", os.stat(f).st_size, end + 3)
    fd = os.open(f, os.O_RDONLY)
    try:
        eq("sparse head zeros", preadall(fd, 4096, 0), bytes(4096))
        eq("sparse hole zeros", preadall(fd, 1048576, 2 * 1048576 + 17), bytes(1048576))
        eq("sparse mid", preadall(fd, 9, 5 * 1048576), bytes(3) + b"mid" + bytes(3))
        eq("sparse tail", preadall(fd, 10, end - 3), bytes(3) + b"end")
    finally:
        os.close(fd)
    whole = rfile(f)
    eq("sparse total length", len(whole), end + 3)
    true("sparse file contains only the written bytes", whole.count(0) == len(whole) - 6)
    g = P("sparse2")
    wfile(g, b"abc")
    fd = os.open(g, os.O_WRONLY)
    os.pwrite(fd, b"z", 70000)
    os.close(fd)
    eq("write past EOF of a small file", rfile(g), b"abc" + bytes(70000 - 3) + b"z")
    z = bytes(262144) + b"x"
    wfile(g, z)
    eq("explicit all-zero chunks", rfile(g), z)


@check
def o_append():
    f = P("app")
    wfile(f, b"abc")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"def")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"ghi")
    finally:
        os.close(fd)
    eq("O_APPEND ignores the offset", rfile(f), b"abcdefghi")
    a = os.open(f, os.O_WRONLY | os.O_APPEND)
    b = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(a, b"1")
        os.write(b, b"2")
        os.write(a, b"3")
    finally:
        os.close(a)
        os.close(b)
    eq("two O_APPEND fds", rfile(f), b"abcdefghi123")
    big = rnd(70000)
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    os.write(fd, big)
    os.close(fd)
    eq("append across 64 KiB", rfile(f), b"abcdefghi123" + big)


@check
def unlink_open_file():
    f = P("gone")
    data = rnd(100000)
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.unlink(f)
        expect_err("ENOENT", os.stat, f)
        true("unlinked name not listed", "gone" not in os.listdir(T))
        st = os.fstat(fd)
        eq("fstat size of unlinked open file", st.st_size, 100000)
        eq("fstat nlink of unlinked open file", st.st_nlink, 0)
        eq("read unlinked open file", preadall(fd, 200000, 0), data)
        os.pwrite(fd, b"NEW", 50)
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, b"tail")
        want = data[:50] + b"NEW" + data[53:] + b"tail"
        eq("fstat size after writes to unlinked file", os.fstat(fd).st_size, 100004)
        eq("read back writes to unlinked file", preadall(fd, 200000, 0), want)
        wfile(f, b"other")           # a new file under the same name
        eq("new file with the same name", rfile(f), b"other")
        eq("old fd still reads its own data", preadall(fd, 200000, 0), want)
        os.pwrite(fd, b"XX", 0)
        eq("writes through old fd don't touch the new file", rfile(f), b"other")
        os.ftruncate(fd, 10)
        eq("ftruncate unlinked file", preadall(fd, 100, 0), b"XX" + want[2:10])
        os.fsync(fd)
    finally:
        os.close(fd)
    eq("new file after old fd closed", rfile(f), b"other")
    # rename over an open file: the fd keeps the old inode's data
    wfile(P("ro_target"), b"old target")
    wfile(P("ro_source"), b"source")
    fd = os.open(P("ro_target"), os.O_RDONLY)
    try:
        os.rename(P("ro_source"), P("ro_target"))
        eq("fd of replaced file", preadall(fd, 100, 0), b"old target")
        eq("path after rename", rfile(P("ro_target")), b"source")
    finally:
        os.close(fd)


@check
def symlinks():
    wfile(P("sl_target"), b"target data")
    os.symlink("sl_target", P("sl_rel"))
    os.symlink(P("sl_target"), P("sl_abs"))
    for name, tgt in (("sl_rel", "sl_target"), ("sl_abs", P("sl_target"))):
        st = os.lstat(P(name))
        true("%s is a symlink" % name, stat.S_ISLNK(st.st_mode))
        eq("readlink %s" % name, os.readlink(P(name)), tgt)
        eq("lstat size of %s" % name, st.st_size, len(os.fsencode(tgt)))
        eq("read through %s" % name, rfile(P(name)), b"target data")
        eq("stat through %s follows" % name, os.stat(P(name)).st_ino, os.stat(P("sl_target")).st_ino)
    odd = "with space/\u00e9t\u00e9\n../x"
    os.symlink(odd, P("sl_odd"))
    eq("readlink odd target", os.readlink(P("sl_odd")), odd)
    os.symlink("nowhere", P("sl_dangling"))
    expect_err("ENOENT", os.stat, P("sl_dangling"))
    true("lstat of dangling works", stat.S_ISLNK(os.lstat(P("sl_dangling")).st_mode))
    os.mkdir(P("sl_dir"))
    wfile(P("sl_dir", "in"), b"i")
    os.symlink("sl_dir", P("sl_dirlink"))
    eq("listdir through dir symlink", os.listdir(P("sl_dirlink")), ["in"])
    expect_err("EINVAL", os.readlink, P("sl_target"))
    os.unlink(P("sl_rel"))
    eq("target survives unlink of symlink", rfile(P("sl_target")), b"target data")
    eq("symlink nlink", os.lstat(P("sl_abs")).st_nlink, 1)


@check
def fifo():
    f = P("fifo")
    os.mkfifo(f, 0o640)
    st = os.lstat(f)
    true("S_ISFIFO", stat.S_ISFIFO(st.st_mode))
    eq("fifo permission bits", stat.S_IMODE(st.st_mode), 0o640)
    eq("fifo size", st.st_size, 0)
    r = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
    try:
        w = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(w, b"ping")
            eq("data through the fifo", os.read(r, 10), b"ping")
        finally:
            os.close(w)
    finally:
        os.close(r)
    os.unlink(f)
    expect_err("ENOENT", os.lstat, f)


@check
def mknod_nodes():
    if os.geteuid() != 0:
        print("# mknod device nodes: not root, only S_IFREG/S_IFSOCK")
    else:
        os.mknod(P("chr"), stat.S_IFCHR | 0o640, os.makedev(1, 3))
        st = os.lstat(P("chr"))
        true("S_ISCHR", stat.S_ISCHR(st.st_mode))
        eq("char dev rdev", (os.major(st.st_rdev), os.minor(st.st_rdev)), (1, 3))
        eq("char dev mode", stat.S_IMODE(st.st_mode), 0o640)
        os.mknod(P("blk"), stat.S_IFBLK | 0o600, os.makedev(7, 129))
        st = os.lstat(P("blk"))
        true("S_ISBLK", stat.S_ISBLK(st.st_mode))
        eq("block dev rdev", (os.major(st.st_rdev), os.minor(st.st_rdev)), (7, 129))
    os.mknod(P("sock"), stat.S_IFSOCK | 0o644)
    true("S_ISSOCK", stat.S_ISSOCK(os.lstat(P("sock")).st_mode))
    os.mknod(P("regnod"), stat.S_IFREG | 0o644)
    st = os.lstat(P("regnod"))
    true("mknod S_IFREG gives a regular file", stat.S_ISREG(st.st_mode))
    eq("mknod S_IFREG size", st.st_size, 0)
    wfile(P("regnod"), b"w", flags=0)
    eq("write to mknod'ed file", rfile(P("regnod")), b"w")


@check
def rename_files():
    os.mkdir(P("rn"))
    r = lambda *a: P("rn", *a)
    wfile(r("a"), b"AAA")
    ino = os.stat(r("a")).st_ino
    os.rename(r("a"), r("b"))
    expect_err("ENOENT", os.stat, r("a"))
    eq("renamed content", rfile(r("b")), b"AAA")
    eq("inode kept by rename", os.stat(r("b")).st_ino, ino)
    wfile(r("c"), b"CCCCCC")
    os.rename(r("b"), r("c"))
    eq("overwrite: content", rfile(r("c")), b"AAA")
    eq("overwrite: inode of source", os.stat(r("c")).st_ino, ino)
    eq("overwrite: listing", sorted(os.listdir(P("rn"))), ["c"])
    os.rename(r("c"), r("c"))
    eq("rename onto itself", rfile(r("c")), b"AAA")
    os.mkdir(r("sub"))
    wfile(r("sub", "c"), b"in sub")
    os.rename(r("c"), r("sub", "c"))
    eq("overwrite across dirs", rfile(r("sub", "c")), b"AAA")
    eq("listing after cross-dir rename", sorted(os.listdir(P("rn"))), ["sub"])
    os.symlink("sub", r("lnk"))
    wfile(r("plain"), b"p")
    os.rename(r("lnk"), r("plain"))
    true("symlink over file", stat.S_ISLNK(os.lstat(r("plain")).st_mode))
    os.mkdir(r("e1"))
    os.mkdir(r("e2"))
    e1 = os.stat(r("e1")).st_ino
    n0 = os.stat(P("rn")).st_nlink
    os.rename(r("e1"), r("e2"))
    eq("empty dir over empty dir: inode", os.stat(r("e2")).st_ino, e1)
    expect_err("ENOENT", os.stat, r("e1"))
    eq("parent nlink after dir-over-dir", os.stat(P("rn")).st_nlink, n0 - 1)
    wfile(r("n1"), b"n1")
    renameat2(r("n1"), r("n2"), RENAME_NOREPLACE)
    eq("RENAME_NOREPLACE to a free name", rfile(r("n2")), b"n1")
    wfile(r("n3"), b"n3")
    expect_err("EEXIST", renameat2, r("n3"), r("n2"), RENAME_NOREPLACE)
    eq("RENAME_NOREPLACE source intact", rfile(r("n3")), b"n3")
    eq("RENAME_NOREPLACE target intact", rfile(r("n2")), b"n1")
    os.mkdir(r("d3"))
    expect_err("EEXIST", renameat2, r("d3"), r("e2"), RENAME_NOREPLACE)
    true("dir source intact", stat.S_ISDIR(os.stat(r("d3")).st_mode))


@check
def rename_dir_subtree():
    os.makedirs(P("tree", "b", "c"))
    wfile(P("tree", "f1"), b"f1")
    wfile(P("tree", "b", "f2"), b"f2")
    wfile(P("tree", "b", "c", "f3"), rnd(70000))
    f3 = rfile(P("tree", "b", "c", "f3"))
    os.symlink("f1", P("tree", "l"))
    for i in range(200):
        wfile(P("tree", "b", "many%03d" % i), b"%d" % i)
    os.makedirs(P("dest", "deeper"))
    dn = os.stat(P("dest", "deeper")).st_nlink
    tn = os.stat(T).st_nlink
    os.rename(P("tree"), P("dest", "deeper", "moved"))
    expect_err("ENOENT", os.stat, P("tree"))
    m = P("dest", "deeper", "moved")
    eq("moved f1", rfile(os.path.join(m, "f1")), b"f1")
    eq("moved f2", rfile(os.path.join(m, "b", "f2")), b"f2")
    eq("moved f3", rfile(os.path.join(m, "b", "c", "f3")), f3)
    eq("moved symlink", os.readlink(os.path.join(m, "l")), "f1")
    eq("moved dir listing", len(os.listdir(os.path.join(m, "b"))), 202)
    for i in range(0, 200, 37):
        eq("moved many%03d" % i, rfile(os.path.join(m, "b", "many%03d" % i)), b"%d" % i)
    eq("'..' of moved dir", os.stat(os.path.join(m, "..")).st_ino, os.stat(P("dest", "deeper")).st_ino)
    eq("new parent nlink", os.stat(P("dest", "deeper")).st_nlink, dn + 1)
    eq("old parent nlink", os.stat(T).st_nlink, tn - 1)
    os.mkdir(P("tree"))
    eq("a new dir with the old name is empty", os.listdir(P("tree")), [])
    os.rmdir(P("tree"))
    os.rename(os.path.join(m, "b"), P("b_back"))
    eq("deep dir moved back", rfile(P("b_back", "c", "f3")), f3)
    eq("old place emptied", sorted(os.listdir(m)), ["f1", "l"])
    wfile(P("b_back", "c", "f4"), b"after")
    eq("write in moved dir", rfile(P("b_back", "c", "f4")), b"after")


@check
def nlink_dirs():
    d = P("nl")
    os.mkdir(d)
    eq("new dir nlink", os.stat(d).st_nlink, 2)
    for s in ("s1", "s2", "s3"):
        os.mkdir(os.path.join(d, s))
    eq("nlink with 3 subdirs", os.stat(d).st_nlink, 5)
    wfile(os.path.join(d, "file"), b"x")
    os.symlink("file", os.path.join(d, "link"))
    os.mkfifo(os.path.join(d, "fifo"))
    eq("non-dirs don't count", os.stat(d).st_nlink, 5)
    os.rmdir(os.path.join(d, "s1"))
    eq("nlink after rmdir", os.stat(d).st_nlink, 4)
    os.mkdir(P("nl2"))
    os.rename(os.path.join(d, "s2"), P("nl2", "s2"))
    eq("nlink of source parent after dir move", os.stat(d).st_nlink, 3)
    eq("nlink of target parent after dir move", os.stat(P("nl2")).st_nlink, 3)
    os.rename(os.path.join(d, "file"), os.path.join(d, "file2"))
    eq("file rename doesn't change nlink", os.stat(d).st_nlink, 3)
    subdirs = sum(1 for e in os.scandir(T) if e.is_dir(follow_symlinks=False))
    eq("table dir nlink = 2 + subdirs", os.stat(T).st_nlink, 2 + subdirs)


@check
def statfs():
    v = os.statvfs(T)
    eq("f_namemax", v.f_namemax, 255)
    true("f_bsize > 0 (got %d)" % v.f_bsize, v.f_bsize > 0)
    true("f_blocks > 0 (got %d)" % v.f_blocks, v.f_blocks > 0)
    true("f_bfree <= f_blocks", v.f_bfree <= v.f_blocks)
    true("f_bavail <= f_bfree", v.f_bavail <= v.f_bfree)
    eq("statvfs of root f_namemax", os.statvfs(MNT).f_namemax, 255)
    if DATA:
        # statfs reports what a user can still write: the data dir
        # filesystem's numbers (less the reserve) divided by the copies each
        # byte gets on that disk (doc/fs.md "Space and inode numbers")
        d = os.statvfs(DATA)
        mt, dt = v.f_blocks * v.f_frsize, d.f_blocks * d.f_frsize
        k = max(1, round(dt / max(mt, 1)))
        true("total size %d is the data dir filesystem's %d divided by the copies (1..8, got %d)" % (mt, dt, k),
             1 <= k <= 8 and abs(mt * k - dt) <= dt * 0.05)
        ma, da = v.f_bavail * v.f_frsize, d.f_bavail * d.f_frsize
        true("available %d x %d copies within 10%% (and the reserve) of the data dir filesystem's %d" % (ma, k, da),
             abs(ma * k - da) <= max(da * 0.10, 64 << 20) + (64 << 20))


@check
def readdir_order():
    d = P("rd")
    os.mkdir(d)
    names = ["B", "a", "A", "b", "10", "9", "_x", ".hidden", "z z", "\u00e9t\u00e9",
             "\u00c9", "a.b", "a-b", "~"] + ["n%04d" % i for i in range(0, 300, 3)]
    for i, n in enumerate(names):
        if i % 5 == 0:
            os.mkdir(os.path.join(d, n))
        else:
            wfile(os.path.join(d, n), b"")
    os.symlink("a", os.path.join(d, "sym"))
    names.append("sym")
    raw = raw_readdir(d)
    eq("'.' and '..' present once each", (raw.count(b"."), raw.count(b"..")), (1, 1))
    got = [x for x in raw if x not in (b".", b"..")]
    want = sorted(os.fsencode(n) for n in names)
    eq("readdir entries sorted bytewise", got, want)
    for e in os.scandir(d):
        st = os.lstat(e.path)
        eq("d_type dir of %s" % e.name, e.is_dir(follow_symlinks=False), stat.S_ISDIR(st.st_mode))
        eq("d_type symlink of %s" % e.name, e.is_symlink(), stat.S_ISLNK(st.st_mode))
        eq("d_ino of %s" % e.name, e.inode(), st.st_ino)
    for n in names[::4]:
        p = os.path.join(d, n)
        (os.rmdir if os.path.isdir(p) and not os.path.islink(p) else os.unlink)(p)
    left = sorted(os.fsencode(n) for n in names if n not in names[::4])
    eq("readdir after removals", [x for x in raw_readdir(d) if x not in (b".", b"..")], left)


@check
def attrs_misc():
    f = P("misc")
    wfile(f, b"m")
    ino = os.stat(f).st_ino
    eq("inode stable across lookups", os.stat(f).st_ino, ino)
    os.chmod(f, 0o4751)
    eq("chmod with setuid", stat.S_IMODE(os.stat(f).st_mode), 0o4751)
    os.chmod(f, 0o600)
    eq("chmod", stat.S_IMODE(os.stat(f).st_mode), 0o600)
    if os.geteuid() == 0:
        os.chown(f, 1234, 5678)
        s = os.stat(f)
        eq("chown", (s.st_uid, s.st_gid), (1234, 5678))
        os.chown(f, -1, 42)
        s = os.stat(f)
        eq("chgrp only", (s.st_uid, s.st_gid), (1234, 42))
        wfile(P("misc_target"), b"t")
        os.symlink("misc_target", P("misc_link"))
        os.lchown(P("misc_link"), 77, 88)
        s = os.lstat(P("misc_link"))
        eq("lchown of a symlink", (s.st_uid, s.st_gid), (77, 88))
        s = os.stat(P("misc_target"))
        eq("lchown didn't touch the target", (s.st_uid, s.st_gid), (0, 0))
    true("inodes differ between files", os.stat(f).st_ino != os.stat(T).st_ino)
    d = os.stat(T)
    true("table is a dir", stat.S_ISDIR(d.st_mode))


def main():
    os.umask(0o022)
    try:
        os.mkdir(T)
    except OSError as e:
        print("FAIL setup: mkdir table %s: %s" % (T, e))
        return 1
    return run_checks(CHECKS, rel)


if __name__ == "__main__":
    sys.exit(main())
