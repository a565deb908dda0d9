#!/usr/bin/env python3
# tests/integration/patch.py - small writes written back as PATCH ops (only
# the dirty bytes of a chunk, doc/fs.md "Write-back of a chunk") checked
# against an in-memory model of each file: random small pwrites with fsync
# or close after most of them, all-zero writes over data (trailing zeros
# are trimmed at apply), truncates down and up (mid-chunk, into the inline
# range and out of it), punched holes, and 4 KiB fsync'd appends across
# chunk boundaries.  Bytes are compared through a fresh descriptor after
# each write-back, and `verify` (after a remount) compares bytes, sizes
# and st_blocks (what the store keeps: per chunk, the bytes up to its last
# non-zero byte) with the model.
#
#   patch.py MNT run SEED     do the work, save the model under MNT/.. (argv)
#   patch.py MNT verify       compare the mount with the saved model
import ctypes
import os
import random
import sys

CHUNK = 131072
INLINE_MAX = 3072  # QFS_INLINE_MAX (a file up to 64 KiB is one chunk: the same blocks)
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg, flush=True)


def punch(fd, off, n):
    if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def rbytes(rng, n):
    return bytes(rng.getrandbits(8) | 1 for _ in range(n)) if n < 64 else rng.randbytes(n)


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def expect_blocks(data):
    """st_blocks of a stored file with these bytes (qfs_inode_blocks)."""
    def trimmed(b):
        return len(b.rstrip(b"\0"))
    if len(data) <= INLINE_MAX:
        n = trimmed(data)
    else:
        n = sum(trimmed(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK))
    return (n + 511) // 512


def check(path, model, what):
    got = read_all(path)
    if got != bytes(model):
        at = next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), min(len(got), len(model)))
        fail(f"{what}: {path}: {len(got)} bytes read, model {len(model)}, first difference at {at}")
        return False
    return True


class File:
    def __init__(self, path):
        self.path = path
        self.model = bytearray()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def pwrite(self, off, data):
        assert os.pwrite(self.fd, data, off) == len(data)
        if off > len(self.model):
            self.model.extend(bytes(off - len(self.model)))
        self.model[off:off + len(data)] = data

    def truncate(self, size):
        os.ftruncate(self.fd, size)
        if size < len(self.model):
            del self.model[size:]
        else:
            self.model.extend(bytes(size - len(self.model)))

    def punch(self, off, n):
        punch(self.fd, off, n)
        end = min(off + n, len(self.model))
        if off < end:
            self.model[off:end] = bytes(end - off)

    def sync(self, rng):
        # fsync, or close and open again (the FUSE flush)
        if rng.random() < 0.7:
            os.fsync(self.fd)
        else:
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_RDWR)


def random_file(d, name, rng, ops):
    f = File(os.path.join(d, name))
    f.pwrite(0, rng.randbytes(rng.choice([3 * CHUNK + 17, 200000, 70000])))
    f.sync(rng)
    for i in range(ops):
        r = rng.random()
        size = len(f.model)
        if r < 0.55:
            # a small write somewhere, often near a chunk edge or the end
            n = rng.choice([1, 7, 512, 4096, 4096, 8192, 20000])
            base = rng.choice([rng.randrange(0, size + 1), (rng.randrange(0, 5) * CHUNK) - n // 2,
                               size, size - n // 2])
            off = max(0, base)
            f.pwrite(off, rbytes(rng, n))
        elif r < 0.65:
            # zeros over data, at the end of a chunk or of the file: trimmed at apply
            n = rng.choice([100, 4096, 30000])
            off = rng.choice([max(0, size - n), max(0, (rng.randrange(1, 5) * CHUNK) - n), rng.randrange(0, size + 1)])
            f.pwrite(off, bytes(n))
        elif r < 0.75:
            # several small writes in one chunk before one write-back
            c = rng.randrange(0, 4) * CHUNK
            for _ in range(rng.randrange(2, 6)):
                f.pwrite(c + rng.randrange(0, CHUNK - 4096), rbytes(rng, rng.choice([10, 4096])))
        elif r < 0.85:
            new = rng.choice([rng.randrange(0, size + 1), size + rng.randrange(1, 300000), 1000, 60000,
                              CHUNK, CHUNK + 1, 2 * CHUNK - 5])
            f.truncate(new)
            if rng.random() < 0.5:
                f.pwrite(rng.randrange(0, len(f.model) + 1), rbytes(rng, rng.choice([1, 4096])))
        elif r < 0.92:
            if size:
                off = rng.randrange(0, size)
                f.punch(off, rng.choice([1, 4096, 100000, CHUNK]))
        else:
            # a write-back in the middle of dirty chunks (one file, two rounds)
            f.pwrite(rng.randrange(0, size + 1), rbytes(rng, 4096))
        if rng.random() < 0.3 and f.model:
            # read what is buffered, not stored yet (the kernel's cached
            # pages dropped so the read reaches the daemon)
            off = rng.randrange(0, len(f.model))
            n = rng.choice([1, 4096, CHUNK + 100])
            os.posix_fadvise(f.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            got = os.pread(f.fd, n, off)
            if got != bytes(f.model[off:off + n]):
                fail(f"{name} op {i}: pread({n}, {off}) of buffered data differs from the model")
        if rng.random() < 0.8:
            f.sync(rng)
            if i % 5 == 0:
                check(f.path, f.model, f"{name} op {i}")
    os.close(f.fd)
    check(f.path, f.model, f"{name} after close")
    return f


def appends(d, rng):
    # the fsync benchmark's pattern: 4 KiB pwrite at the next offset + fsync,
    # across three chunk boundaries; one file starting mid-block
    f = File(os.path.join(d, "appends"))
    f.pwrite(0, rng.randbytes(1000))
    os.fsync(f.fd)
    for i in range(100):
        f.pwrite(len(f.model), rng.randbytes(4096))
        os.fsync(f.fd)
        if i % 25 == 0:
            check(f.path, f.model, f"appends {i}")
    os.close(f.fd)
    check(f.path, f.model, "appends after close")
    return f


def run(mnt, seed):
    rng = random.Random(seed)
    d = os.path.join(mnt, "patch")
    os.mkdir(d)
    files = [appends(d, rng)]
    for k in range(4):
        files.append(random_file(d, f"r{k}", rng, 60))
    # the models, for verify after the remount
    md = os.path.join(os.path.dirname(os.path.abspath(mnt)), "patch-models")
    os.makedirs(md, exist_ok=True)
    for f in files:
        with open(os.path.join(md, os.path.basename(f.path)), "wb") as m:
            m.write(f.model)
        st = os.stat(f.path)
        if st.st_size != len(f.model):
            fail(f"{f.path}: size {st.st_size}, model {len(f.model)}")
    print(f"ok   patch run seed={seed}: {len(files)} files", flush=True)


def verify(mnt):
    d = os.path.join(mnt, "patch")
    md = os.path.join(os.path.dirname(os.path.abspath(mnt)), "patch-models")
    names = sorted(os.listdir(md))
    missing = set(names) - set(os.listdir(d))
    if missing:
        fail(f"files missing after the remount: {sorted(missing)}")
        names = [n for n in names if n not in missing]
    for n in names:
        model = read_all(os.path.join(md, n))
        p = os.path.join(d, n)
        if not check(p, model, "after remount"):
            continue
        st = os.stat(p)
        want = expect_blocks(model)
        if st.st_blocks != want:
            fail(f"{p}: st_blocks {st.st_blocks}, the stored bytes make {want} (size {len(model)})")
    print(f"ok   patch verify: {len(names)} files, bytes and st_blocks", flush=True)


def main():
    mnt, what = sys.argv[1], sys.argv[2]
    if what == "run":
        run(mnt, int(sys.argv[3]))
    else:
        verify(mnt)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
