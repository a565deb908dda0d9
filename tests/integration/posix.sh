#!/bin/bash
# tests/integration/posix.sh - syscall behaviour through a real mount:
# errno on every documented error path, and the data paths (read/write,
# seek, truncate, sparse, O_APPEND, unlink-while-open, symlinks, fifos,
# device nodes, rename variants, nlink, statfs, readdir order).
# The checks live in posix.py; this script mounts and runs it.

. "$QFS_SRCDIR/tests/lib/common.sh"
qfs_require python3
qfs_setup

python3 "$QFS_SRCDIR/tests/integration/posix.py" "$MNT" "$DATA" ||
	fail "posix.py: some checks failed (see the FAIL lines above)"
mountpoint -q "$MNT" || fail "the mount disappeared during the test"
qfs_umount
