# tests/lib/qfscheck.py - the check runner shared by the Python integration
# tests (tests/integration/{posix,times,xattr}.py).
#
# A test module registers functions as checks; run_checks() runs each one,
# prints "ok   NAME" or "FAIL NAME: why" (an unexpected OSError is shown with
# its errno name, the path relative to the mount and the failing line), then
# "# N checks, M failed", and returns the exit status (1 if any failed).

import errno
import traceback


class Fail(Exception):
    """A check's assertion did not hold; the message says what and why."""


def ename(e):
    """errno number -> its name, e.g. 2 -> 'ENOENT'."""
    return errno.errorcode.get(e, str(e))


def run_checks(checks, rel=repr):
    """Run every check; rel(path) shortens paths in messages."""
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
