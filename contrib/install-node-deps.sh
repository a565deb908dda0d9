#!/bin/bash
# contrib/install-node-deps.sh - install what tests/integration/objstore_s3.sh
# (and the archive tests) need from outside Debian's C toolchain: Node.js and
# npm (from apt, only when `node` is missing) and the npm modules pinned by
# tests/node/package-lock.json (s3rver, @smithy/signature-v4,
# @aws-crypto/sha256-js) into tests/node/node_modules.
#
# Usage: contrib/install-node-deps.sh   (root or sudo only if node is missing)
# Idempotent: `npm ci` reinstalls exactly the locked versions.  Exits non-zero
# if apt-get or npm fails.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	SUDO=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "install-node-deps: run as root to install nodejs and npm" >&2; exit 1; }
		SUDO="sudo -n"
	fi
	echo "install-node-deps: installing nodejs npm"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		nodejs npm </dev/null >/dev/null
fi

echo "install-node-deps: npm ci in tests/node (node $(node --version))"
npm ci --prefix "$top/tests/node" --no-audit --no-fund --loglevel=error
echo "install-node-deps: done"
