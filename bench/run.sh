#!/usr/bin/env bash
# Speed benchmark (issue 4 item 5): GNU tar, containers-storage 1.43 and
# stowage side by side in one run on a fresh loop-mounted scratch file
# system, interleaved repetitions, medians, and a PASS/FAIL table of the
# targets. Builds bin/stowage and bin/hashfloor (the Go-stdlib SHA-256
# floor, bench/hashfloor.go) first.
#
# usage: bench/run.sh [--quick] [--runs N] [--fs ext4|xfs] [--no-reference]
#                     [--no-overlay] [--only plain,zstd,big,par,hdr]
#                     [--cpuprofile DIR] [--strict] [--keep] ...
#   --quick       small layers, one run (CI exercises the script this way)
#   --cpuprofile  write a pprof CPU profile of every stowage import to DIR
#   --strict      exit 1 if a target fails
# See `bench/run.sh --help` for every option. Needs root, python3, tar,
# zstd, mkfs.ext4 (or mkfs.xfs) and Go; containers-storage if installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
case " $* " in
*" -h "* | *" --help "*) exec python3 bench/bench.py --help ;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/run.sh: needs root (loop mount of the scratch file system)" >&2
	exit 1
fi
mkdir -p bin
if [ -z "${STOWAGE_BENCH_NO_BUILD:-}" ]; then
	scripts/build.sh bin/stowage
fi
go build -o bin/hashfloor bench/hashfloor.go
exec python3 bench/bench.py "$@"
