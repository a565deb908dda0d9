#!/usr/bin/env python3
"""tests/lib/chunkread.py FILE WANT - read FILE in 128 KiB chunks (pread)
and compare each with the same bytes of WANT.

tests/lib/chunkread.py --flip FILE - damage FILE (a blob file or a value
log segment): flip one byte every 64 KiB, from offset 4096 (past a blob
file's header).

Reading prints "good N eio M": a chunk that fails with EIO is counted;
any other error, or a chunk that reads but differs (wrong bytes
returned), exits 1 with a line naming its offset.  Used by chunkcrc.sh and vlog.sh (damaged blob files or value log
segments: EIO is allowed, wrong bytes never)."""
import errno
import os
import sys

CHUNK = 131072


def flip(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for pos in range(4096, size, 65536):
            f.seek(pos)
            c = f.read(1)
            f.seek(pos)
            f.write(bytes([c[0] ^ 0x5a]))
    return 0


def main():
    if sys.argv[1] == "--flip":
        return flip(sys.argv[2])
    want = open(sys.argv[2], "rb").read()
    fd = os.open(sys.argv[1], os.O_RDONLY)
    good = bad = 0
    for off in range(0, len(want), CHUNK):
        try:
            got = os.pread(fd, CHUNK, off)
        except OSError as e:
            if e.errno != errno.EIO:
                print("chunk at %d: %s" % (off, e))
                return 1
            bad += 1
            continue
        if got != want[off:off + CHUNK]:
            print("chunk at %d: wrong bytes returned" % off)
            return 1
        good += 1
    print("good %d eio %d" % (good, bad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
