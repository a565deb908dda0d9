#!/bin/bash
# tests/bench/archive_bench.sh - archive throughput benchmark (not a test).
#
# Against s3rver behind the SigV4-verifying proxy (tests/lib/s3env.sh):
#  1. baseline: `curl -T` of BENCH_MB MiB (one PUT, SigV4 signed) to the
#     same server, in MB/s;
#  2. archive throughput: with the proxy stopped, BENCH_MB MiB are written
#     to a mount (segments pile up locally), then the proxy is started and
#     the time from the first new upload until lag 0 gives MB/s uploaded;
#     reported as a ratio to the curl baseline;
#  3. foreground cost: dd of BENCH_MB MiB (conv=fsync) into a mount with
#     archive=off and into one archiving to S3, MB/s each and the ratio.
# Usage: QFS_BIN=build/fs/quorumfs tests/bench/archive_bench.sh   (root)
# Env: BENCH_MB (default 64), SEAL (default 8M).

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/s3env.sh"
s3env_require
qfs_require curl sha256sum fusermount3 mountpoint
[ "$(id -u)" -eq 0 ] || skip "needs root"
MB=${BENCH_MB:-64}
SEAL=${SEAL:-8M}

T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-bench.XXXXXX")
chmod 755 "$T"
DATA=$T/data
MNT=$T/mnt
mkdir -p "$DATA" "$MNT" "$T/s3"
trap 's3env_cleanup; qfs_cleanup' EXIT
s3env_start "$T/s3"
now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }

head -c $(( MB << 20 )) /dev/urandom > "$T/blob"
sha=$(sha256sum "$T/blob" | cut -d' ' -f1)
t0=$(now)
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
	-H "x-amz-content-sha256: $sha" -T "$T/blob" "$S3_ENDPOINT/$S3_BUCKET/bench/blob")
t1=$(now)
[ "$code" = 200 ] || fail "curl -T got HTTP $code"
curl_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
curl_rate=$(rate $(( MB << 20 )) "$curl_s")
echo "curl -T ${MB} MiB: ${curl_s}s = ${curl_rate} MB/s"

S3OPTS="archive=s3://$S3_BUCKET/qfs,s3_endpoint=$S3_ENDPOINT,s3_path_style=1,s3_retries=1"
A=$MNT/.quorumfs/archive
uploaded() { awk '/^archive store/ { for (i = 1; i < NF; i++) if ($i == "bytes_uploaded") print $(i + 1) }' "$A"; }
lag0() { awk '/^partition/ { if ($8 != 0) bad = 1 } END { exit bad }' "$A"; }

# 2. archive throughput
s3env_stop_proxy
qfs_mount -o "$S3OPTS,seal_size=$SEAL,seal_age=1s,archive_interval=100ms"
mkdir "$MNT/t"
dd if="$T/blob" of="$MNT/t/blob" bs=1M conv=fsync status=none || fail "write"
sleep 1.5 # the tail gets sealed by age
base=$(uploaded)
s3env_restart_proxy
while [ "$(uploaded)" = "$base" ]; do sleep 0.02; done
t0=$(now)
for _ in $(seq 3000); do lag0 && break; sleep 0.05; done
t1=$(now)
lag0 || fail "archive did not catch up"
bytes=$(( $(uploaded) - base ))
arch_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
arch_rate=$(rate "$bytes" "$arch_s")
echo "archive: $bytes bytes in ${arch_s}s = ${arch_rate} MB/s; ratio to curl -T: $(awk -v a="$arch_rate" -v c="$curl_rate" 'BEGIN { printf "%.2f", a / c }')"
qfs_umount

# 3. foreground write throughput, archive off vs on
fg() { # fg OPTS TABLE -> MB/s
	qfs_mount -o "$1"
	mkdir "$MNT/$2"
	local a b
	a=$(now)
	dd if="$T/blob" of="$MNT/$2/blob" bs=1M conv=fsync status=none || fail "write"
	b=$(now)
	qfs_umount
	rate $(( MB << 20 )) "$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')"
}
off=$(fg "archive=off" off1)
on=$(fg "$S3OPTS,seal_size=$SEAL,seal_age=1s" on1)
echo "foreground dd ${MB} MiB: archive off ${off} MB/s, archiving to S3 ${on} MB/s, ratio $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.2f", a / b }')"
