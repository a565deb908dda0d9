#!/usr/bin/env python3
# tests/integration/links.py - hard links through a mounted quorumfs:
# link(2) and the errno of every error path, one inode behind all names
# (st_ino, st_nlink, data, ctime), unlink and rename-over of one name,
# open-unlinked files with several names, linkat of an unlinked file,
# concurrent unlinks of the names of one file.  Driven by links.sh, which
# also runs the real tools (rsync -aH, tar, cp -al), RENAME_EXCHANGE and
# the remount.
#
# Usage: links.py MOUNTPOINT          the checks (tables lk, lk_other, ...)
#        links.py MOUNTPOINT --after  after a remount: what the checks left

import ctypes
import os
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from qfscheck import (expect_err, expect_one_of, eq, true, run_checks, set_rel,  # noqa: E402
                      registry, under, mount_rel, wfile, rfile, exists)

MNT = sys.argv[1]
T = os.path.join(MNT, "lk")
U = os.path.join(MNT, "lk_other")
CHECKS, check = registry()
P = under(T)
rel = mount_rel(MNT, long_path=200, long_value=60)
set_rel(rel)


def later(a, b):
    """timestamp b (ns) is after a"""
    return b > a


@check
def link_basics():
    f, g = P("b_f"), P("b_g")
    data = os.urandom(200000)  # chunked, not inline
    wfile(f, data)
    s0 = os.stat(f)
    d0 = os.stat(T)
    time.sleep(0.02)
    os.link(f, g)
    s1, s2, d1 = os.stat(f), os.stat(g), os.stat(T)
    eq("st_ino of the two names", s2.st_ino, s1.st_ino)
    eq("st_ino unchanged by link", s1.st_ino, s0.st_ino)
    eq("st_nlink after link", (s1.st_nlink, s2.st_nlink), (2, 2))
    true("link changes the inode's ctime", later(s0.st_ctime_ns, s1.st_ctime_ns))
    eq("link leaves mtime", s1.st_mtime_ns, s0.st_mtime_ns)
    true("link changes the directory's mtime", later(d0.st_mtime_ns, d1.st_mtime_ns))
    true("link changes the directory's ctime", later(d0.st_ctime_ns, d1.st_ctime_ns))
    eq("data through the new name", rfile(g), data)
    with open(g, "r+b") as h:
        h.seek(100000)
        h.write(b"written via g")
    eq("a write through one name is seen through the other", rfile(f)[100000:100013], b"written via g")
    eq("listing", sorted(n for n in os.listdir(T) if n.startswith("b_")), ["b_f", "b_g"])
    # a symlink and a fifo can be linked too (the link is to them, not their target)
    os.symlink("b_f", P("b_sym"))
    os.link(P("b_sym"), P("b_sym2"), follow_symlinks=False)
    eq("st_ino of a linked symlink", os.lstat(P("b_sym2")).st_ino, os.lstat(P("b_sym")).st_ino)
    eq("readlink of the linked symlink", os.readlink(P("b_sym2")), "b_f")
    eq("st_nlink of the symlink", os.lstat(P("b_sym")).st_nlink, 2)
    eq("st_nlink of its target unchanged", os.stat(f).st_nlink, 2)
    os.mkfifo(P("b_fifo"))
    os.link(P("b_fifo"), P("b_fifo2"))
    true("a linked fifo is a fifo", stat.S_ISFIFO(os.stat(P("b_fifo2")).st_mode))
    eq("st_nlink of the fifo", os.stat(P("b_fifo")).st_nlink, 2)
    # a link into a subdirectory
    os.mkdir(P("b_dir"))
    os.link(f, P("b_dir", "deep"))
    eq("st_nlink with a name in a subdirectory", os.stat(g).st_nlink, 3)
    eq("subdirectory nlink unchanged by a file link", os.stat(P("b_dir")).st_nlink, 2)


@check
def link_errors():
    f = P("e_f")
    wfile(f, b"one")
    os.mkdir(P("e_dir"))
    wfile(os.path.join(U, "e_there"), b"other table")
    expect_err("EPERM", os.link, P("e_dir"), P("e_dirlink"))
    expect_err("EXDEV", os.link, f, os.path.join(U, "e_cross"))
    expect_err("EXDEV", os.link, os.path.join(U, "e_there"), P("e_cross2"))
    expect_err("EEXIST", os.link, f, f)
    expect_err("EEXIST", os.link, f, P("e_dir"))
    wfile(P("e_g"), b"two")
    expect_err("EEXIST", os.link, f, P("e_g"))
    eq("the existing name keeps its data", rfile(P("e_g")), b"two")
    expect_err("ENOENT", os.link, P("e_missing"), P("e_new"))
    expect_err("ENOENT", os.link, f, P("e_nodir", "x"))
    expect_err("ENOTDIR", os.link, f, P("e_g", "x"))
    expect_err("ENAMETOOLONG", os.link, f, P("n" * 256))
    os.link(f, P("n" * 255))  # the longest name works
    expect_err("EROFS", os.link, f, os.path.join(MNT, ".quorumfs", "x"))
    expect_one_of(["EXDEV", "EPERM"], os.link, os.path.join(MNT, ".quorumfs", "status"), P("e_status"))
    expect_err("EPERM", os.link, f, os.path.join(MNT, "e_at_root"))
    for n in ("e_dirlink", "e_cross2", "e_new", "e_status"):
        true("no %s after a failed link" % n, not exists(P(n)))
    true("nothing at the root", not exists(os.path.join(MNT, "e_at_root")))
    true("nothing in the other table", not exists(os.path.join(U, "e_cross")))
    eq("st_nlink after the failed links", os.stat(f).st_nlink, 2)
    eq("the directory's nlink", os.stat(P("e_dir")).st_nlink, 2)


@check
def unlink_and_rename_over():
    f = P("u_f")
    data = os.urandom(300000)
    wfile(f, data)
    for n in ("u_g", "u_h", "u_i"):
        os.link(f, P(n))
    eq("st_nlink with four names", os.stat(f).st_nlink, 4)
    c0 = os.stat(f).st_ctime_ns
    time.sleep(0.02)
    os.unlink(P("u_g"))
    s = os.stat(f)
    eq("st_nlink after unlinking one name", s.st_nlink, 3)
    true("unlink of one name changes the inode's ctime", later(c0, s.st_ctime_ns))
    eq("data after unlinking one name", rfile(P("u_h")), data)
    # rename of one name onto another name of the same file: nothing happens
    os.rename(P("u_h"), P("u_i"))
    true("rename onto another name of the same file keeps both", exists(P("u_h")) and exists(P("u_i")))
    eq("st_nlink after that rename", os.stat(f).st_nlink, 3)
    # rename of another file over one name drops just that name
    wfile(P("u_other"), b"other")
    os.rename(P("u_other"), P("u_h"))
    eq("st_nlink after a rename over one name", os.stat(f).st_nlink, 2)
    eq("the renamed file's data", rfile(P("u_h")), b"other")
    eq("data through the remaining names", (rfile(f), rfile(P("u_i"))), (data, data))
    # rename of one name elsewhere: same inode, same count
    os.mkdir(P("u_dir"))
    os.rename(P("u_i"), P("u_dir", "moved"))
    eq("st_ino after moving a name", os.stat(P("u_dir", "moved")).st_ino, os.stat(f).st_ino)
    eq("st_nlink after moving a name", os.stat(f).st_nlink, 2)
    os.unlink(f)
    eq("st_nlink of the last name", os.stat(P("u_dir", "moved")).st_nlink, 1)
    eq("data through the last name", rfile(P("u_dir", "moved")), data)


@check
def link_of_a_file_being_created():
    # a file created and still open (not yet stored: a pending create) can be linked
    f, g = P("pc_f"), P("pc_g")
    data = os.urandom(70000)
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, data)
        os.link(f, g)
        eq("st_nlink of a linked file still being written", os.stat(g).st_nlink, 2)
        eq("st_ino of the new name", os.stat(g).st_ino, os.fstat(fd).st_ino)
    finally:
        os.close(fd)
    eq("data through the new name after close", rfile(g), data)
    eq("data through the first name after close", rfile(f), data)
    eq("mode kept", os.stat(g).st_mode & 0o7777, 0o640)


libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2


def exchange(a, b):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_char_p, ctypes.c_uint]
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a, None, b)


@check
def exchange_with_a_file_being_created():
    # RENAME_EXCHANGE of a file still open from its create (a pending
    # create, not yet stored) with a stored file: both names swap
    d = P("px")
    os.mkdir(d)
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    old, new = os.urandom(5000), os.urandom(6000)
    wfile(b, old)
    fd = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, new)
        exchange(a, b)
        eq("the stored file under the pending name", rfile(a), old)
    finally:
        os.close(fd)
    eq("the new file under the other name after close", rfile(b), new)
    eq("the stored file after close", rfile(a), old)


@check
def rename_over_a_directory_holding_a_file_being_created():
    # the target directory looks empty in the store while a file created in
    # it is still open: rename over it must fail ENOTEMPTY, not delete it
    d = P("pr")
    os.mkdir(d)
    src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
    os.mkdir(src)
    os.mkdir(dst)
    data = os.urandom(3000)
    fd = os.open(os.path.join(dst, "f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        expect_err("ENOTEMPTY", os.rename, src, dst)
    finally:
        os.close(fd)
    eq("the file in the target directory after close", rfile(os.path.join(dst, "f")), data)


@check
def open_with_links():
    # in its own table: rmdir of the table says whether an orphan is left
    t = os.path.join(MNT, "lk_hold")
    os.mkdir(t)
    a, b = os.path.join(t, "a"), os.path.join(t, "b")
    data = os.urandom(250000)
    wfile(a, data)
    os.link(a, b)
    fd = os.open(a, os.O_RDWR)
    try:
        os.unlink(a)  # one name of an open file
        eq("fstat nlink after unlinking one name of an open file", os.fstat(fd).st_nlink, 1)
        eq("the other name's data", rfile(b), data)
        expect_err("ENOTEMPTY", os.rmdir, t)
        os.pwrite(fd, b"still open", 0)
        os.fsync(fd)
        eq("a write through the fd is seen through the other name", rfile(b)[:10], b"still open")
        os.unlink(b)  # the last name, still open
        eq("fstat nlink after the last name went", os.fstat(fd).st_nlink, 0)
        eq("listing of the table", os.listdir(t), [])
        expect_err("EBUSY", os.rmdir, t)
        eq("read through the fd after the last name went", os.pread(fd, 10, 0), b"still open")
        eq("whole data through the fd", os.pread(fd, 300000, 10), data[10:])
        # linkat of an open file without names: ENOENT (Linux)
        # (a dst_dir_fd makes Python call linkat(AT_SYMLINK_FOLLOW), not link)
        dfd = os.open(t, os.O_RDONLY | os.O_DIRECTORY)
        try:
            expect_err("ENOENT", os.link, "/proc/self/fd/%d" % fd, "back", dst_dir_fd=dfd, follow_symlinks=True)
        finally:
            os.close(dfd)
        true("no name came back", not exists(os.path.join(t, "back")))
    finally:
        os.close(fd)
    # closed: the file and its chunks are gone, so the table can be dropped
    # (rmdir of a table retries EBUSY while a RELEASE is on its way)
    os.rmdir(t)
    expect_err("ENOENT", os.stat, t)


@check
def many_names_concurrent_unlinks():
    f = P("m_f")
    wfile(f, os.urandom(140000))
    names = ["m_%02d" % i for i in range(24)]
    for n in names:
        os.link(f, P(n))
    eq("st_nlink with 25 names", os.stat(f).st_nlink, 25)
    eq("one st_ino for all names", len({os.stat(P(n)).st_ino for n in names}), 1)
    errs = []

    def worker(part):
        for n in part:
            try:
                os.unlink(P(n))
            except OSError as e:
                errs.append((n, e.errno))

    ts = [threading.Thread(target=worker, args=(names[i::4],)) for i in range(4)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    eq("errors of concurrent unlinks", errs, [])
    eq("st_nlink after 24 concurrent unlinks", os.stat(f).st_nlink, 1)
    # and concurrent links
    ts = [threading.Thread(target=lambda i=i: os.link(f, P("m_new%d" % i))) for i in range(8)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    eq("st_nlink after 8 concurrent links", os.stat(f).st_nlink, 9)
    for i in range(8):
        os.unlink(P("m_new%d" % i))
    os.unlink(f)
    eq("no m_ names left", [n for n in os.listdir(T) if n.startswith("m_")], [])


@check
def survive_remount_setup():
    # checked by --after: names, inode numbers and counts after a remount
    wfile(P("r_a"), b"remount me" * 10000)
    os.link(P("r_a"), P("r_b"))
    os.mkdir(P("r_d"))
    os.link(P("r_a"), P("r_d", "c"))
    os.unlink(P("r_b"))
    os.link(P("r_a"), P("r_b2"))
    with open(os.path.join(T, "r_ino"), "w") as f:
        f.write("%d\n" % os.stat(P("r_a")).st_ino)


def after():
    ino = int(rfile(P("r_ino")))
    eq("st_ino of every name after the remount",
       [os.stat(P(n)).st_ino for n in ("r_a", "r_b2", "r_d/c")], [ino] * 3)
    eq("st_nlink after the remount", os.stat(P("r_a")).st_nlink, 3)
    eq("data after the remount", rfile(P("r_d", "c")), b"remount me" * 10000)
    true("the unlinked name stays gone", not exists(P("r_b")))
    eq("b_f's names after the remount", os.stat(P("b_g")).st_nlink, 3)
    eq("u_dir/moved after the remount", os.stat(P("u_dir", "moved")).st_nlink, 1)
    # the names still work for link/unlink after the remount
    os.unlink(P("r_b2"))
    os.link(P("r_a"), P("r_b3"))
    eq("st_nlink after unlink+link after the remount", os.stat(P("r_d", "c")).st_nlink, 3)


def main():
    os.umask(0o022)
    if len(sys.argv) > 2 and sys.argv[2] == "--after":
        return run_checks([after], rel)
    for d in (T, U):
        os.mkdir(d)
    return run_checks(CHECKS, rel)


if __name__ == "__main__":
    sys.exit(main())
