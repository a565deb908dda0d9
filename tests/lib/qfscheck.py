# tests/lib/qfscheck.py - the check runner and preamble shared by the Python
# integration tests (tests/integration/{posix,times,xattr,links,fallocate}.py).
#
# A test module registers functions as checks; run_checks() runs each one,
# prints "ok   NAME" or "FAIL NAME: why" (an unexpected OSError is shown with
# its errno name, the path relative to the mount and the failing line), then
# "# N checks, M failed", and returns the exit status (1 if any failed).

import errno
import os
import traceback

_rel = repr  # shortens paths in messages; a test sets its own with set_rel()


def set_rel(fn):
    """Use fn(path) to show paths (e.g. relative to the mount) in messages."""
    global _rel
    _rel = fn


class Fail(Exception):
    """A check's assertion did not hold; the message says what and why."""


def ename(e):
    """errno number -> its name, e.g. 2 -> 'ENOENT'."""
    return errno.errorcode.get(e, str(e))


def _what(fn, args, kw):
    return "%s(%s%s)" % (getattr(fn, "__name__", "call"), ", ".join(_rel(a) for a in args),
                         "".join(", %s=%r" % kv for kv in kw.items()))


def expect_err(name, fn, *args, **kw):
    """Call fn(*args, **kw); it must raise OSError with errno.<name>."""
    expect_one_of([name], fn, *args, **kw)


def expect_one_of(names, fn, *args, **kw):
    """Call fn(*args, **kw); it must raise OSError with one of the errnos."""
    wants = [getattr(errno, n) for n in names]
    what = _what(fn, args, kw)
    try:
        r = fn(*args, **kw)
    except OSError as e:
        if e.errno not in wants:
            raise Fail("%s: expected %s, got %s (%s)" % (what, "/".join(names), ename(e.errno), e.strerror))
        return
    if fn is os.open and isinstance(r, int):
        os.close(r)
    raise Fail("%s: expected %s, got success" % (what, "/".join(names)))


def eq(what, got, want):
    """got must equal want; the message shows where lists or bytes differ."""
    if got == want:
        return
    if isinstance(got, list) and isinstance(want, list):
        i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                 min(len(got), len(want)))
        raise Fail("%s: lists differ at index %d (lengths %d, %d): got %r, expected %r"
                   % (what, i, len(got), len(want), got[i:i + 5], want[i:i + 5]))
    if isinstance(got, bytes) and isinstance(want, bytes):
        if len(got) != len(want):
            raise Fail("%s: length %d, expected %d" % (what, len(got), len(want)))
        i = next(i for i in range(len(got)) if got[i] != want[i])
        raise Fail("%s: first difference at byte %d: got %r, expected %r"
                   % (what, i, got[i:i + 8], want[i:i + 8]))
    g, w = repr(got), repr(want)
    raise Fail("%s: got %s, expected %s" % (what, g if len(g) < 300 else g[:300] + "...",
                                            w if len(w) < 300 else w[:300] + "..."))


def true(what, cond):
    """cond must hold; what says what it means."""
    if not cond:
        raise Fail(what)


def run_checks(checks, rel=None):
    """Run every check; rel(path) shortens paths in messages."""
    rel = rel or _rel
    failed = []
    for fn in checks:
        name = fn.__name__
        try:
            fn()
            print("ok   %s" % name)
        except Fail as e:
            print("FAIL %s: %s" % (name, e))
            failed.append(name)
        except Exception as e:  # an unexpected error is a failed check too
            frames = traceback.extract_tb(e.__traceback__)
            tb = next((f for f in reversed(frames) if f.name == name), frames[-1])
            if isinstance(e, OSError):
                msg = "unexpected %s (%s) on %s%s" % (
                    ename(e.errno), e.strerror, rel(e.filename) if e.filename else "?",
                    (" -> " + rel(e.filename2)) if e.filename2 else "")
            else:
                msg = "unexpected %s: %s" % (type(e).__name__, e)
            print("FAIL %s: %s at line %d: %s" % (name, msg, tb.lineno, tb.line))
            failed.append(name)
    print("# %d checks, %d failed%s" % (len(checks), len(failed),
                                       (": " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


def registry():
    """-> (list, decorator): the decorator appends a function to the list,
    e.g. CHECKS, check = registry(), then @check above each check."""
    fns = []

    def add(fn):
        fns.append(fn)
        return fn
    return fns, add


def under(root):
    """-> P(*parts): os.path.join(root, *parts)."""
    return lambda *parts: os.path.join(root, *parts)


def mount_rel(mnt, long_path=None, long_value=None):
    """-> rel(x) for set_rel(): a str path under mnt shows as MNT/...; with
    long_path, one of long_path chars or more as MNT/<N-byte path>; with
    long_value, other bytes/str longer than that as <N bytes>; else repr."""
    def rel(x):
        if isinstance(x, str) and x.startswith(mnt):
            if long_path is not None and len(x) >= long_path:
                return "MNT/<%d-byte path>" % len(x)
            return "MNT" + x[len(mnt):]
        if long_value is not None and isinstance(x, (bytes, str)) and len(x) > long_value:
            return "<%d bytes>" % len(x)
        return repr(x)
    return rel


def wfile(path, data=b""):
    """Create or truncate path and write data to it."""
    with open(path, "wb") as f:
        f.write(data)


def rfile(path):
    """-> the whole content of path."""
    with open(path, "rb") as f:
        return f.read()


def exists(path):
    """-> whether path exists (lstat: a dangling symlink exists)."""
    try:
        os.lstat(path)
        return True
    except FileNotFoundError:
        return False


def run_phase(phase, table, checks, verify, rel=None):
    """phase "verify": run_checks(verify); else mkdir table (its failure is a
    failed setup: exit 1), then run_checks(checks)."""
    if phase == "verify":
        return run_checks(verify, rel)
    try:
        os.mkdir(table)
    except OSError as e:
        print("FAIL setup: mkdir table %s: %s" % (table, e))
        return 1
    return run_checks(checks, rel)
