#!/bin/bash
# tests/integration/objstore_s3.sh - the S3 backend of src/objstore against a
# real S3-compatible server: s3rver behind the SigV4-verifying proxy of
# tests/lib/s3proxy.js (see tests/lib/s3env.sh), driven by
# tests/unit/objstore_tool.
#
# Covers: the proxy itself (a correctly signed curl request passes, a wrong
# secret, a missing x-amz-content-sha256 and a body that does not match it
# get 403), put/get/head/list/delete, odd keys, ranged gets, list pagination
# (25 keys, 4 per page), virtual-host addressing, multipart (12 MiB, 5 MiB
# parts), wrong secret (-EACCES, "403 SignatureDoesNotMatch", the secret
# never printed), a credentials file readable by others (-EACCES), a missing
# bucket (-ENXIO), a corrupted object in the bucket (QFS_ECORRUPT, no file
# left by get_file), s3rver down behind the proxy (503: -EIO after the
# retries) and the endpoint down (-ECONNREFUSED after bounded retries).

. "${QFS_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$QFS_SRCDIR/tests/lib/s3env.sh"

s3env_require
qfs_require curl cmp head od
TOOL=$(dirname "$QFS_BIN")/../tests/unit/objstore_tool
[ -x "$TOOL" ] || fail "objstore_tool not built at $TOOL"

T=$(mktemp -d "${TMPDIR:-/tmp}/qfs-s3.XXXXXX")
trap 's3env_cleanup; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
s3env_start "$T"
note "s3rver port $S3RVER_PORT, proxy port $PROXY_PORT"

EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
URL="s3://$S3_BUCKET/archive/test"
os() { "$TOOL" --url "$URL" --endpoint "$S3_ENDPOINT" --retries 2 --backoff-ms 20 "$@"; }
# expect_fail CODE what cmd...: run cmd, want exit CODE; stderr kept in $T/err
expect_fail() {
	local want=$1 what=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	[ $rc -eq "$want" ] || { cat "$T/err" >&2; fail "$what: exit $rc, want $want"; }
}
rejects() { grep -c "s3proxy: reject $1" "$S3ENV_DIR/proxy.log"; }

# ---- 1. the proxy verifies signatures (else the tests below prove nothing)
code=$(curl -s -o "$T/body" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
	-H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/$S3_BUCKET?list-type=2")
[ "$code" = 200 ] || fail "correctly signed curl request got $code"
code=$(curl -s -o "$T/body" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:wrong-secret \
	-H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/$S3_BUCKET?list-type=2")
[ "$code" = 403 ] || fail "wrong secret got $code from the proxy"
grep -q '<Code>SignatureDoesNotMatch</Code>' "$T/body" || fail "wrong secret: no SignatureDoesNotMatch: $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
	"$S3_ENDPOINT/$S3_BUCKET?list-type=2")
[ "$code" = 403 ] || fail "request without x-amz-content-sha256 got $code"
grep -q 'x-amz-content-sha256' "$T/body" || fail "missing header: unclear error $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
	-X PUT --data-binary 'not empty' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/$S3_BUCKET/x")
[ "$code" = 403 ] || fail "body not matching x-amz-content-sha256 got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$S3_BUCKET?list-type=2")
[ "$code" = 403 ] || fail "anonymous request got $code"
# and s3rver alone accepts the wrong secret (why the proxy exists)
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:wrong-secret \
	-H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$S3RVER_PORT/$S3_BUCKET?list-type=2")
[ "$code" = 200 ] || fail "s3rver itself answered $code to a wrong secret (expected 200: it does not verify)"
# the canonical query: libcurl 7.88 signs the query as written, S3 (and the
# proxy) sign it sorted with "uploads" as "uploads="; objstore.c must send
# canonical queries, and the proxy must catch those that are not
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -u S3RVER:S3RVER \
	-H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/$S3_BUCKET?prefix=a&list-type=2")
[ "$code" = 403 ] || fail "unsorted query signed as is got $code from the proxy"
note "proxy: correct signature 200, wrong secret / missing or wrong payload hash / anonymous 403"

# ---- 2. round trips
printf 'hello objstore\n' >"$T/small"
os put groups/1/wal/0001.seg "$T/small" || fail "put"
[ "$(os get groups/1/wal/0001.seg)" = "hello objstore" ] || fail "get: wrong bytes"
os head groups/1/wal/0001.seg >"$T/out" || fail "head"
grep -q '^size=15 crc32c=[0-9a-f]\{8\} has_crc=1 ' "$T/out" || fail "head: $(cat "$T/out")"
# the checksum travels as S3 user metadata (what s3rver stored)
meta=$(cat "$S3_DATA/$S3_BUCKET/archive/test/groups/1/wal/0001.seg._S3rver_metadata.json")
crc=$(sed -n 's/.*crc32c=\([0-9a-f]*\).*/\1/p' "$T/out")
echo "$meta" | grep -q "\"x-amz-meta-qfs-crc32c\": \"$crc\"" || fail "metadata has no qfs-crc32c $crc: $meta"
[ "$(os get groups/1/wal/0001.seg 6 8)" = "objstore" ] || fail "ranged get"
[ "$(os get groups/1/wal/0001.seg 6)" = "objstore" ] || fail "ranged get to the end"
expect_fail 7 "range past the end" os get groups/1/wal/0001.seg 100 2
ODD='odd keys/ü ñ/+%&=?#~*;[x]'
os put "$ODD" "$T/small" || fail "put odd key"
[ "$(os get "$ODD")" = "hello objstore" ] || fail "get odd key"
os list "odd keys/" >"$T/out" || fail "list odd"
[ "$(cat "$T/out")" = "$ODD 15" ] || fail "list odd: $(cat "$T/out")"
os delete "$ODD" || fail "delete"
os delete "$ODD" || fail "delete is not idempotent"
expect_fail 2 "get after delete" os get "$ODD"
expect_fail 2 "head of a missing key" os head nothing/here
expect_fail 7 "bad key" os put ../x "$T/small"
note "round trips, ranges, odd keys, delete: ok"

# ---- 3. list with pagination: 25 keys, 4 per page
for i in $(seq -w 1 25); do echo "$i" | os put "pages/k$i" - || fail "put pages/k$i"; done
os put pagesX "$T/small" || fail "put pagesX"
os --max-keys 4 list pages/ >"$T/out" || { cat "$T/out"; fail "paginated list"; }
[ "$(wc -l <"$T/out")" -eq 25 ] || fail "list: $(wc -l <"$T/out") keys, want 25"
[ "$(head -1 "$T/out")" = "pages/k01 3" ] && [ "$(tail -1 "$T/out")" = "pages/k25 3" ] || fail "list order"
LC_ALL=C sort -c "$T/out" || fail "list is not in key order"
os --max-keys 4 list pages >"$T/out" || fail "list pages"
[ "$(wc -l <"$T/out")" -eq 26 ] || fail "prefix without '/': $(wc -l <"$T/out") keys, want 26"
note "list: 25 keys over 7 pages in order"

# ---- 4. virtual-host addressing (BUCKET.s3.localhost resolves to loopback in curl)
"$TOOL" --url "$URL" --endpoint "http://s3.localhost:$PROXY_PORT" --vhost put vhost/k "$T/small" ||
	fail "virtual-host put"
[ "$(os get vhost/k)" = "hello objstore" ] || fail "virtual-host object not where path-style finds it"
[ "$("$TOOL" --url "$URL" --endpoint "http://s3.localhost:$PROXY_PORT" --vhost list vhost/)" = "vhost/k 15" ] ||
	fail "virtual-host list"
note "virtual-host addressing: ok"

# ---- 5. multipart: 12 MiB with 5 MiB parts
head -c $((12 << 20)) /dev/urandom >"$T/big"
s=$(date +%s%N)
os --debug --threshold $((5 << 20)) --part-size $((5 << 20)) put_file big/seg "$T/big" 2>"$T/err" ||
	{ cat "$T/err"; fail "multipart put_file"; }
grep -q "multipart done key=big/seg bytes=$((12 << 20)) parts=3" "$T/err" || fail "not a 3-part upload: $(cat "$T/err")"
e=$(date +%s%N)
os head big/seg >"$T/out" || fail "head big"
grep -q "^size=$((12 << 20)) .*has_crc=1" "$T/out" || fail "head big: $(cat "$T/out")"
rm -f "$T/big.out"
os get_file big/seg "$T/big.out" || fail "get_file big"
cmp -s "$T/big" "$T/big.out" || fail "multipart object differs"
[ ! -e "$T/big.out.tmp" ] || fail "get_file left its temp file"
note "multipart 12 MiB upload in $(((e - s) / 1000000)) ms"

# ---- 6. wrong secret: EACCES, a clear error, the proxy's 403, no secret printed
before=$(rejects SignatureDoesNotMatch)
AWS_SECRET_ACCESS_KEY=Sup3rSecretValue expect_fail 4 "wrong secret" os --debug put auth/k "$T/small"
grep -q "403 SignatureDoesNotMatch" "$T/err" || fail "wrong secret: unclear error: $(cat "$T/err")"
grep -q "Sup3rSecretValue" "$T/err" "$T/out" && fail "the secret appears in the output"
[ "$(rejects SignatureDoesNotMatch)" -eq $((before + 1)) ] || fail "wrong secret: retried or not refused by the proxy"
expect_fail 2 "object written with a wrong secret" os head auth/k
# credentials file: refused when others can read it, used when private
printf 'aws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$T/cred"
chmod 644 "$T/cred"
expect_fail 4 "world-readable credentials file" os --credentials "$T/cred" head groups/1/wal/0001.seg
grep -q "credentials file refused" "$T/err" || fail "no log line for the readable credentials file"
chmod 600 "$T/cred"
AWS_SECRET_ACCESS_KEY=wrong os --credentials "$T/cred" head groups/1/wal/0001.seg >/dev/null ||
	fail "private credentials file not used"
note "wrong secret: EACCES + 403 SignatureDoesNotMatch; readable credentials file refused"

# ---- 7. missing bucket
expect_fail 3 "missing bucket" "$TOOL" --url s3://no-such-bucket/x --endpoint "$S3_ENDPOINT" put k "$T/small"
grep -q NoSuchBucket "$T/err" || fail "missing bucket: $(cat "$T/err")"

# ---- 8. an object corrupted in the bucket
os put corrupt/obj "$T/big" || fail "put corrupt/obj"
f=$S3_DATA/$S3_BUCKET/archive/test/corrupt/obj._S3rver_object
[ -f "$f" ] || fail "s3rver's object file not found at $f"
b=$(od -An -tu1 -j 1000 -N 1 "$f" | tr -d ' ')
printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$f" bs=1 seek=1000 conv=notrunc status=none
expect_fail 5 "corrupted object" os get corrupt/obj
grep -q "corrupt" "$T/err" || fail "corruption: unclear error: $(cat "$T/err")"
rm -f "$T/c.out"
expect_fail 5 "get_file of a corrupted object" os get_file corrupt/obj "$T/c.out"
[ ! -e "$T/c.out" ] && [ ! -e "$T/c.out.tmp" ] || fail "get_file left a corrupted file behind"
os get corrupt/obj 0 100 >/dev/null || fail "ranged read of intact bytes"
note "corrupted object: QFS_ECORRUPT"

# ---- 9. server down: s3rver behind the proxy (503), then the endpoint itself
s3env_stop_s3rver
expect_fail 1 "s3rver down (503)" os put down/k "$T/small"
grep -q "503.*after 3 tries" "$T/err" || fail "503: $(cat "$T/err")"
s3env_restart_s3rver
os put down/k "$T/small" || fail "put after s3rver came back"
s3env_stop_proxy
s=$(date +%s%N)
expect_fail 6 "endpoint down" os --retries 3 --backoff-ms 50 put down/k2 "$T/small"
e=$(date +%s%N)
grep -q "ECONNREFUSED.*after 4 tries" "$T/err" || fail "connection refused: $(cat "$T/err")"
[ $(((e - s) / 1000000)) -lt 3000 ] || fail "retries took $(((e - s) / 1000000)) ms"
note "endpoint down: ECONNREFUSED after 4 tries in $(((e - s) / 1000000)) ms"
s3env_restart_proxy
[ "$(os get down/k)" = "hello objstore" ] || fail "get after the proxy came back"
note "ok"
