#!/bin/bash
# tests/integration/enospc_recover_copy.sh - enospc_recover.sh with the local
# archive copying its segments (-o archive_link=off): the full disk is
# survivable on that path too (the copy holds its size beyond the reserve,
# and a copy that would eat the reserve is linked instead: doc/archive.md
# "Full disk"), and the archive holds copied segments.
QFS_ENOSPC_ARCHIVE_LINK=off
export QFS_ENOSPC_ARCHIVE_LINK
exec bash "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/enospc_recover.sh"
