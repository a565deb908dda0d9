#!/usr/bin/env python3
# tests/integration/xattr.py - extended attributes on a mounted quorumfs.
#
# Usage: xattr.py MOUNTPOINT main     all checks; leaves files for "verify"
#        xattr.py MOUNTPOINT verify   after a remount: the xattrs set by
#                                     "main" are all there, byte for byte
#
# One line per check ("ok NAME" / "FAIL NAME: expected ..., got ..."); exits
# 1 if any check failed.  Works in table MOUNTPOINT/xattr.  Some answers come
# from the kernel before quorumfs sees the call (E2BIG for values > 64 KiB,
# EPERM for user.* on symlinks and fifos); they are checked anyway since
# users see them.

import ctypes
import os
import stat
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from qfscheck import (ename, expect_err, eq, true, run_phase, set_rel,  # noqa: E402
                      registry, under, mount_rel, wfile)

MNT = sys.argv[1]
PHASE = sys.argv[2] if len(sys.argv) > 2 else "main"
T = os.path.join(MNT, "xattr")
LIMIT = 65536          # names + values per file, spec: more -> ENOSPC

CHECKS, check = registry()
VERIFY, verify = registry()
P = under(T)
rel = mount_rel(MNT, long_value=60)
set_rel(rel)


def xlist(path, follow=True):
    return sorted(os.listxattr(path, follow_symlinks=follow))


def value(n, seed):
    return bytes((i * 7 + seed) & 0xff for i in range(n))


libc = ctypes.CDLL(None, use_errno=True)
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t


def c_getxattr(path, name, size):
    """getxattr(2) with an explicit buffer size: returns (ret, errno, data)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    r = libc.getxattr(os.fsencode(path), name.encode(), buf if size else None, size)
    return r, (ctypes.get_errno() if r < 0 else 0), buf.raw[:max(r, 0)] if size else b""


def c_listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    r = libc.listxattr(os.fsencode(path), buf if size else None, size)
    return r, (ctypes.get_errno() if r < 0 else 0), buf.raw[:max(r, 0)] if size else b""


def posix_acl(entries):
    # linux/posix_acl_xattr.h: le32 version 2, then {le16 tag, le16 perm, le32 id}
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


ACL_MINIMAL = posix_acl([(0x01, 6, 0xffffffff),    # ACL_USER_OBJ rw-
                         (0x04, 4, 0xffffffff),    # ACL_GROUP_OBJ r--
                         (0x20, 4, 0xffffffff)])   # ACL_OTHER r--
ACL_EXTENDED = posix_acl([(0x01, 6, 0xffffffff), (0x02, 6, 1000),
                          (0x04, 4, 0xffffffff), (0x10, 6, 0xffffffff),
                          (0x20, 0, 0xffffffff)])


# ------------------------------------------------------------------ checks

@check
def namespaces_set_get_list_remove():
    f = P("ns")
    wfile(f, b"data")
    eq("listxattr of a new file", xlist(f), [])
    names = ["user.k", "trusted.k", "security.k"]
    for i, n in enumerate(names):
        os.setxattr(f, n, b"v-%d" % i)
    for i, n in enumerate(names):
        eq("getxattr %s" % n, os.getxattr(f, n), b"v-%d" % i)
    eq("listxattr", xlist(f), sorted(names))
    bin_v = bytes(range(256)) * 3 + b"\0\0"
    os.setxattr(f, "user.bin", bin_v)
    eq("binary value with NULs", os.getxattr(f, "user.bin"), bin_v)
    os.setxattr(f, "user.empty", b"")
    eq("empty value", os.getxattr(f, "user.empty"), b"")
    true("empty-valued name listed", "user.empty" in xlist(f))
    os.setxattr(f, "user.k", b"a much longer value than before")
    eq("replace with longer value", os.getxattr(f, "user.k"), b"a much longer value than before")
    os.setxattr(f, "user.k", b"s")
    eq("replace with shorter value", os.getxattr(f, "user.k"), b"s")
    long_name = "user." + "n" * 250
    os.setxattr(f, long_name, b"long name")
    eq("255-byte name", os.getxattr(f, long_name), b"long name")
    for n in names + ["user.bin", "user.empty", long_name]:
        os.removexattr(f, n)
    eq("listxattr after removing all", xlist(f), [])
    eq("file data untouched by xattr ops", open(f, "rb").read(), b"data")
    many = ["user.m%03d" % i for i in range(100)]
    for n in many:
        os.setxattr(f, n, n.encode())
    got = os.listxattr(f)
    eq("100 names listed once each", sorted(got), sorted(many))
    for n in many[::9]:
        eq("getxattr %s among 100" % n, os.getxattr(f, n), n.encode())


@check
def system_namespace_acls():
    # POSIX ACLs are stored (tests/integration/acl.sh covers them through
    # setfacl); other system.* names stay EOPNOTSUPP.
    f = P("acl")
    wfile(f)
    os.chmod(f, 0o640)
    os.setxattr(f, "system.posix_acl_access", ACL_MINIMAL)
    eq("a base-entries ACL is not stored", xlist(f), [])
    os.setxattr(f, "system.posix_acl_access", ACL_EXTENDED)
    eq("extended ACL stored", os.getxattr(f, "system.posix_acl_access"), ACL_EXTENDED)
    d = P("acldir")
    os.mkdir(d)
    expect_err("ENODATA", os.getxattr, d, "system.posix_acl_default")
    expect_err("EINVAL", os.setxattr, d, "system.posix_acl_default", b"\x02\x00\x00\x00\x01\x00")
    expect_err("EOPNOTSUPP", os.setxattr, f, "system.quorumfs_test", b"x")


@check
def value_size_limits():
    f = P("big")
    wfile(f)
    expect_err("E2BIG", os.setxattr, f, "user.v", value(65537, 1))
    eq("nothing stored after E2BIG", xlist(f), [])
    v = value(60000, 2)
    os.setxattr(f, "user.v", v)
    eq("60000-byte value", os.getxattr(f, "user.v"), v)
    r, e, _ = c_getxattr(f, "user.v", 0)
    eq("getxattr size query of 60000-byte value", (r, ename(e) if e else 0), (60000, 0))
    expect_err("ENOSPC", os.setxattr, f, "user.w", value(6000, 3))
    eq("names after ENOSPC", xlist(f), ["user.v"])
    eq("value after ENOSPC", os.getxattr(f, "user.v"), v)
    expect_err("ENOSPC", os.setxattr, f, "user.v", value(65531, 4))   # 6 + 65531 > 65536
    eq("value kept when its replacement is refused", os.getxattr(f, "user.v"), v)
    os.setxattr(f, "user.v", value(1000, 5))
    os.setxattr(f, "user.w", value(6000, 3))
    eq("room is reusable after shrinking", os.getxattr(f, "user.w"), value(6000, 3))


@check
def value_total_boundary():
    # spec: "total of names+values per file > 65536 -> ENOSPC", so
    # exactly 65536 fits and one byte more does not
    f = P("edge")
    wfile(f)
    name = "user.edge"                      # 9 bytes
    v = value(LIMIT - len(name), 6)
    os.setxattr(f, name, v)
    eq("name+value of exactly 65536 bytes", os.getxattr(f, name), v)
    expect_err("ENOSPC", os.setxattr, f, "user.x", b"")
    os.removexattr(f, name)
    expect_err("ENOSPC", os.setxattr, f, name, value(LIMIT - len(name) + 1, 6))
    expect_err("ENOSPC", os.setxattr, f, "user.v", value(65536, 7))
    eq("nothing left after refusals", xlist(f), [])
    sizes = [6000] * 10
    for i, s in enumerate(sizes):
        os.setxattr(f, "user.m%02d" % i, value(s, i))       # 10 * (8 + 6000)
    expect_err("ENOSPC", os.setxattr, f, "user.m10", value(6000, 10))
    eq("names after multi-attr ENOSPC", len(xlist(f)), 10)


@check
def erange_small_buffer():
    f = P("erange")
    wfile(f)
    os.setxattr(f, "user.hello", b"hello")
    os.setxattr(f, "user.two", b"2")
    r, e, _ = c_getxattr(f, "user.hello", 1)
    eq("getxattr with a 1-byte buffer", (r, ename(e) if e else "ok"), (-1, "ERANGE"))
    r, e, _ = c_getxattr(f, "user.hello", 4)
    eq("getxattr with a 4-byte buffer", (r, ename(e) if e else "ok"), (-1, "ERANGE"))
    r, e, _ = c_getxattr(f, "user.hello", 0)
    eq("getxattr size query", (r, e), (5, 0))
    r, e, d = c_getxattr(f, "user.hello", 5)
    eq("getxattr with an exact buffer", (r, e, d), (5, 0, b"hello"))
    want = len("user.hello") + 1 + len("user.two") + 1
    r, e, _ = c_listxattr(f, 1)
    eq("listxattr with a 1-byte buffer", (r, ename(e) if e else "ok"), (-1, "ERANGE"))
    r, e, _ = c_listxattr(f, want - 1)
    eq("listxattr with a buffer 1 byte short", (r, ename(e) if e else "ok"), (-1, "ERANGE"))
    r, e, _ = c_listxattr(f, 0)
    eq("listxattr size query", (r, e), (want, 0))
    r, e, d = c_listxattr(f, want)
    eq("listxattr exact buffer", sorted(d.split(b"\0")[:-1]), [b"user.hello", b"user.two"])
    true("listxattr ends with NUL", d.endswith(b"\0"))


@check
def enodata():
    f = P("nodata")
    wfile(f)
    expect_err("ENODATA", os.getxattr, f, "user.none")
    expect_err("ENODATA", os.removexattr, f, "user.none")
    expect_err("ENODATA", os.getxattr, f, "trusted.none")
    os.setxattr(f, "user.once", b"1")
    os.removexattr(f, "user.once")
    expect_err("ENODATA", os.getxattr, f, "user.once")
    expect_err("ENODATA", os.removexattr, f, "user.once")
    r, e, _ = c_getxattr(f, "user.none", 0)
    eq("size query of a missing name", (r, ename(e) if e else "ok"), (-1, "ENODATA"))


@check
def create_replace_flags():
    f = P("flags")
    wfile(f)
    os.setxattr(f, "user.a", b"first", os.XATTR_CREATE)
    eq("XATTR_CREATE on a missing name", os.getxattr(f, "user.a"), b"first")
    expect_err("EEXIST", os.setxattr, f, "user.a", b"second", os.XATTR_CREATE)
    eq("value after refused XATTR_CREATE", os.getxattr(f, "user.a"), b"first")
    expect_err("ENODATA", os.setxattr, f, "user.b", b"x", os.XATTR_REPLACE)
    expect_err("ENODATA", os.getxattr, f, "user.b")
    eq("names after refused XATTR_REPLACE", xlist(f), ["user.a"])
    os.setxattr(f, "user.a", b"third", os.XATTR_REPLACE)
    eq("XATTR_REPLACE on an existing name", os.getxattr(f, "user.a"), b"third")
    os.setxattr(f, "user.a", b"fourth", 0)
    eq("flags 0 replaces", os.getxattr(f, "user.a"), b"fourth")
    os.setxattr(f, "trusted.c", b"t", os.XATTR_CREATE)
    expect_err("EEXIST", os.setxattr, f, "trusted.c", b"t2", os.XATTR_CREATE)


@check
def directories():
    d = P("dir")
    os.mkdir(d)
    os.setxattr(d, "user.d", b"on a dir")
    os.setxattr(d, "trusted.d", b"trusted dir")
    eq("dir getxattr", os.getxattr(d, "user.d"), b"on a dir")
    eq("dir listxattr", xlist(d), ["trusted.d", "user.d"])
    wfile(os.path.join(d, "child"))
    eq("child doesn't inherit xattrs", xlist(os.path.join(d, "child")), [])
    os.removexattr(d, "user.d")
    eq("dir listxattr after remove", xlist(d), ["trusted.d"])
    os.setxattr(T, "user.table_note", b"table level")
    eq("xattr on the table dir", os.getxattr(T, "user.table_note"), b"table level")
    os.removexattr(T, "user.table_note")
    expect_err("ENODATA", os.getxattr, T, "user.table_note")


@check
def symlinks_and_fifos():
    tgt = P("sym_target")
    wfile(tgt)
    ln = P("sym")
    os.symlink("sym_target", ln)
    # kernel rule (fs/xattr.c xattr_permission): user.* only on files and dirs
    expect_err("EPERM", os.setxattr, ln, "user.a", b"1", follow_symlinks=False)
    expect_err("ENODATA", os.getxattr, ln, "user.a", follow_symlinks=False)
    eq("target untouched by refused lsetxattr", xlist(tgt), [])
    os.setxattr(ln, "trusted.l", b"on the link", follow_symlinks=False)
    eq("lgetxattr trusted.* on a symlink", os.getxattr(ln, "trusted.l", follow_symlinks=False), b"on the link")
    eq("llistxattr of the symlink", xlist(ln, follow=False), ["trusted.l"])
    eq("the target does not get the link's xattr", xlist(tgt), [])
    os.setxattr(ln, "user.via", b"followed")
    eq("setxattr through a symlink lands on the target", os.getxattr(tgt, "user.via"), b"followed")
    eq("link's own xattrs unchanged", xlist(ln, follow=False), ["trusted.l"])
    os.removexattr(ln, "trusted.l", follow_symlinks=False)
    eq("llistxattr after lremovexattr", xlist(ln, follow=False), [])
    fifo = P("fifo")
    os.mkfifo(fifo)
    expect_err("EPERM", os.setxattr, fifo, "user.f", b"1")
    os.setxattr(fifo, "trusted.f", b"fifo attr")
    eq("trusted.* on a fifo", os.getxattr(fifo, "trusted.f"), b"fifo attr")


@check
def follow_rename_and_unlink():
    a = P("ren_a")
    wfile(a, b"A")
    os.setxattr(a, "user.keep", b"kept")
    os.rename(a, P("ren_b"))
    eq("xattr follows a rename", os.getxattr(P("ren_b"), "user.keep"), b"kept")
    os.mkdir(P("ren_dir"))
    os.rename(P("ren_b"), P("ren_dir", "c"))
    eq("xattr follows a cross-dir rename", os.getxattr(P("ren_dir", "c"), "user.keep"), b"kept")
    os.unlink(P("ren_dir", "c"))
    wfile(P("ren_dir", "c"), b"new")
    eq("a new file with the old name has no xattrs", xlist(P("ren_dir", "c")), [])
    wfile(P("ren_over"), b"O")
    os.setxattr(P("ren_over"), "user.old", b"old")
    wfile(P("ren_src"), b"S")
    os.setxattr(P("ren_src"), "user.src", b"src")
    os.rename(P("ren_src"), P("ren_over"))
    eq("overwriting rename brings the source's xattrs only", xlist(P("ren_over")), ["user.src"])


@check
def control_tree_refuses():
    st = os.path.join(MNT, ".quorumfs", "status")
    expect_err("EROFS", os.setxattr, st, "user.x", b"1")
    expect_err("EROFS", os.setxattr, os.path.join(MNT, ".quorumfs"), "user.x", b"1")


# -------------------------------------------------- persistence across mounts

PERSIST = {
    "user.alpha": b"alpha",
    "trusted.bin": bytes(range(256)),
    "security.sec": b"security value",
    "user.big": value(40000, 9),
    "user.replaced": b"final",
    "user.empty": b"",
}


@check
def persist_setup():
    f = P("persist")
    wfile(f, b"persist data")
    os.setxattr(f, "user.replaced", b"initial value, longer")
    for n, v in PERSIST.items():
        os.setxattr(f, n, v)
    os.setxattr(f, "user.removed", b"gone")
    os.removexattr(f, "user.removed")
    os.mkdir(P("persist_dir"))
    os.setxattr(P("persist_dir"), "user.dirattr", b"dir value")
    os.symlink("persist", P("persist_link"))
    os.setxattr(P("persist_link"), "trusted.linkattr", b"link value", follow_symlinks=False)
    os.sync()
    eq("persist file names before remount", xlist(f), sorted(PERSIST))


@verify
def persisted():
    f = P("persist")
    eq("names after remount", xlist(f), sorted(PERSIST))
    for n, v in PERSIST.items():
        eq("%s after remount" % n, os.getxattr(f, n), v)
    expect_err("ENODATA", os.getxattr, f, "user.removed")
    eq("dir xattr after remount", os.getxattr(P("persist_dir"), "user.dirattr"), b"dir value")
    eq("symlink xattr after remount",
       os.getxattr(P("persist_link"), "trusted.linkattr", follow_symlinks=False), b"link value")
    eq("file data after remount", open(f, "rb").read(), b"persist data")
    os.setxattr(f, "user.after", b"after remount")
    eq("setxattr works after remount", os.getxattr(f, "user.after"), b"after remount")


def main():
    return run_phase(PHASE, T, CHECKS, VERIFY, rel)


if __name__ == "__main__":
    sys.exit(main())
