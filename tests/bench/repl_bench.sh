#!/bin/bash
# tests/bench/repl_bench.sh - the cost of three replicas: the same workload
# on a mount with -o replicas=1 and on the default three-replica mount.
#
# Usage (as root, from a build directory or with QFS_BIN set):
#   tests/bench/repl_bench.sh [-n FILES] [-f FSYNCS] [-p WRITERS] [-w FWRITERS]
#     -n  number of 4 KiB files created, serially and again in parallel
#         (default 5000)
#     -f  number of 4 KiB write+fsync calls in the serial fsync loop, and
#         per writer in the parallel one (default 2000)
#     -p  parallel writer processes for the parallel create (default 4)
#     -w  parallel writer processes for the parallel fsync loop (default 8)
#     -m  the replica counts to run, comma-separated (default 1,3; the
#         ratio is printed when both ran)
#   QFS_BIN   the quorumfs binary (default ./fs/quorumfs)
#   TMPDIR    where the data dirs and the mountpoint are made (default /tmp)
#
# Not a test (not run by make check).  Each mode gets a fresh data dir.
# Metrics, each with throughput and per-call latency percentiles:
#   create_serial    open(O_CREAT|O_EXCL), write 4 KiB, close; one process
#   create_parallel  the same, FILES split over WRITERS processes (latency
#                    of each call in any process; throughput = FILES / wall)
#   fsync_serial     pwrite 4 KiB at the next offset of one open file, fsync
#   fsync_parallel   the same in FWRITERS processes, each on its own file
#                    (FSYNCS / 4 calls each; throughput = all calls / wall)
# After the table: per phase, the cell's proposals and WAL fdatasyncs (all
# replicas, from .quorumfs/stats) and proposals per fdatasync of one replica
# (proposals * replicas / fdatasyncs): 1 means no group commit.
# Output: a table of "metric mode ops/s p50_ms p99_ms", then the ratio of the
# three-replica figures to the one-replica ones (ops/s below 1 is slower,
# latency above 1 is slower).  Example:
#   metric           mode     ops/s    p50_ms   p99_ms
#   create_serial    r1       812.4     1.150    2.870

: "${QFS_BIN:=$(pwd)/fs/quorumfs}"
export QFS_BIN
[ -x "$QFS_BIN" ] || { echo "repl_bench.sh: $QFS_BIN is not executable (set QFS_BIN)" >&2; exit 2; }

NFILES=5000
NFSYNC=2000
NPAR=4
NFPAR=8
MODES="1 3"
while getopts n:f:p:w:m:h opt; do
	case $opt in
	n) NFILES=$OPTARG ;;
	f) NFSYNC=$OPTARG ;;
	p) NPAR=$OPTARG ;;
	w) NFPAR=$OPTARG ;;
	m) MODES=$(echo "$OPTARG" | tr , ' ') ;;
	*) sed -n '2,34s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done

. "${QFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
set -o pipefail
qfs_require python3 awk
for r in $MODES; do
	case $r in 1|3) ;; *) echo "repl_bench.sh: -m takes 1 and/or 3" >&2; exit 2 ;; esac
done
set -- $MODES
qfs_setup -o replicas="$1"
BENCH_PY=$T/repl_bench.py

cat >"$BENCH_PY" <<'EOF'
# repl_bench.py DIR PHASE N NPAR: prints "metric ops_per_s p50_ms p99_ms n"
import multiprocessing, os, sys, time

d, phase, n, npar = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = b"q" * 4096

def creates(prefix, count, out=None):
    lat = []
    for i in range(count):
        p = os.path.join(d, f"{prefix}{i:06d}")
        t = time.perf_counter()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        lat.append(time.perf_counter() - t)
    if out is not None:
        out.put(lat)
    return lat

def fsyncs(name, count, out=None):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    data = os.urandom(4096)
    lat = []
    for i in range(count):
        t1 = time.perf_counter()
        os.pwrite(fd, data, i * 4096)
        os.fsync(fd)
        lat.append(time.perf_counter() - t1)
    os.close(fd)
    if out is not None:
        out.put(lat)
    return lat

def report(metric, lat, wall):
    lat = sorted(lat)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"{metric} {len(lat) / wall:.1f} {pct(0.50):.3f} {pct(0.99):.3f} {len(lat)}")

if phase == "create_serial":
    t = time.perf_counter()
    lat = creates("s", n)
    report(phase, lat, time.perf_counter() - t)
elif phase == "create_parallel":
    q = multiprocessing.Queue()
    per = [n // npar + (1 if k < n % npar else 0) for k in range(npar)]
    ps = [multiprocessing.Process(target=creates, args=(f"p{k}-", per[k], q)) for k in range(npar)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    lat = []
    for _ in ps:
        lat += q.get()
    wall = time.perf_counter() - t
    for p in ps:
        p.join()
        if p.exitcode != 0:
            sys.exit(f"a writer exited with {p.exitcode}")
    report(phase, lat, wall)
elif phase == "fsync_serial":
    t = time.perf_counter()
    lat = fsyncs("fsyncs", n)
    report(phase, lat, time.perf_counter() - t)
elif phase == "fsync_parallel":
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=fsyncs, args=(f"fsyncs{k}", n, q)) for k in range(npar)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    lat = []
    for _ in ps:
        lat += q.get()
    wall = time.perf_counter() - t
    for p in ps:
        p.join()
        if p.exitcode != 0:
            sys.exit(f"a writer exited with {p.exitcode}")
    report(phase, lat, wall)
EOF
echo "# repl_bench: $NFILES creates serial and over $NPAR writers, $NFSYNC fsync'd 4 KiB writes," \
	"then $((NFSYNC / 4)) in each of $NFPAR writers; $(nproc) cpus"
echo "# data dirs under $T on $(df -P "$T" | awk 'NR == 2 { print $1 }')"

cell_counts() { # "proposals fsyncs" of the cell so far
	awk '$1 == "cell" { print $3, $5 }' "$MNT/.quorumfs/stats"
}
phase() { # phase MODE REPLICAS PHASE N NPAR: one phase, counters into $T/MODE.cnt
	local before after
	before=$(cell_counts)
	python3 "$BENCH_PY" "$MNT/bench" "$3" "$4" "$5" >>"$T/$1.res" || return 1
	after=$(cell_counts)
	echo "$3 $2 $before $after" >>"$T/$1.cnt"
}
run_mode() { # run_mode MODE REPLICAS: all phases on $MNT into $T/MODE.res
	mkdir "$MNT/bench" || fail "mkdir table"
	: >"$T/$1.res"
	: >"$T/$1.cnt"
	phase "$1" "$2" create_serial "$NFILES" 1 &&
		phase "$1" "$2" create_parallel "$NFILES" "$NPAR" &&
		phase "$1" "$2" fsync_serial "$NFSYNC" 1 &&
		phase "$1" "$2" fsync_parallel $((NFSYNC / 4)) "$NFPAR" ||
		fail "bench phase on the $1 mount failed"
}
first=1
for r in $MODES; do
	if [ -z "$first" ]; then  # each mode on a fresh data dir
		DATA=$T/data-r$r
		mkdir "$DATA" || fail "mkdir $DATA"
		mount_again -o replicas="$r"
	fi
	first=
	grep -q "^replicas $r\$" "$MNT/.quorumfs/status" || fail "-o replicas=$r mount does not say 'replicas $r'"
	t0=$SECONDS
	run_mode "r$r" "$r"
	note "replicas=$r done in $((SECONDS - t0)) s"
	qfs_umount
done

printf '%-16s %-5s %10s %9s %9s\n' metric mode ops/s p50_ms p99_ms
for m in create_serial create_parallel fsync_serial fsync_parallel; do
	for mode in $MODES; do
		mode=r$mode
		awk -v m="$m" -v mode="$mode" '$1 == m { printf "%-16s %-5s %10s %9s %9s\n", m, mode, $2, $3, $4 }' "$T/$mode.res"
	done
done
echo "# cell counters per phase (fdatasyncs of all replicas' WALs)"
printf '%-16s %-5s %10s %10s %14s\n' metric mode proposals fdatasyncs props/fdatasync
for mode in $MODES; do
	awk -v mode="r$mode" '{ p = $5 - $3; f = $6 - $4
		printf "%-16s %-5s %10d %10d %14.2f\n", $1, mode, p, f, (f > 0 ? p * $2 / f : 0) }' "$T/r$mode.cnt"
done
[ -f "$T/r1.res" ] && [ -f "$T/r3.res" ] || exit 0
echo "# ratio r3/r1 (ops/s below 1 = slower with 3 replicas; latency above 1 = slower)"
printf '%-16s %10s %9s %9s\n' metric ops/s p50 p99
awk '
	FNR == NR { ops[$1] = $2; p50[$1] = $3; p99[$1] = $4; next }
	{ printf "%-16s %10.2f %9.2f %9.2f\n", $1, (ops[$1] > 0 ? $2 / ops[$1] : 0),
		(p50[$1] > 0 ? $3 / p50[$1] : 0), (p99[$1] > 0 ? $4 / p99[$1] : 0) }
' "$T/r1.res" "$T/r3.res"
exit 0
