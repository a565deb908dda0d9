#!/bin/bash
# contrib/install-deps.sh - install what quorumfs needs to build and test on
# Debian 12 (bookworm) or a close derivative.
#
# Usage: contrib/install-deps.sh       (as root, or with sudo available)
# Idempotent: when every package is already installed it changes nothing and
# does not touch the network; otherwise it runs apt-get update and installs
# the missing ones, non-interactively and quietly.  Exits non-zero if apt-get
# fails.

set -euo pipefail

PKGS=(
	# build
	autoconf automake libtool pkg-config gcc make
	libfuse3-dev librocksdb-dev libcurl4-openssl-dev libxml2-dev
	check libxxhash-dev
	libssl-dev
	# run and test
	fuse3 rsync attr python3 tar diffutils coreutils findutils procps
	util-linux spin curl acl logrotate
	prometheus  # promtool and a server for tests/integration/prometheus.sh (~19 s, 324 MB)
)

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done
here=$(cd "$(dirname "$0")" && pwd)
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages already installed"
	exec "$here/install-node-deps.sh"
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
	SUDO="sudo -n"
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}" </dev/null >/dev/null
echo "install-deps: done"
# s3rver and the SigV4 signer for the object-store tests (npm registry)
exec "$here/install-node-deps.sh"
