#!/usr/bin/env bash
# Builds bin/stowage (or OUT) the way the project ships it: with ISA-L's
# gzip inflate (build tag isal, cgo, links libisal.so.2) when its headers
# are installed, otherwise with Go's inflate. As root on a Debian machine
# without the headers it first installs libisal-dev through apt-get; when
# that fails it builds without ISA-L and says so.
#
#   scripts/build.sh [OUT]     build cmd/stowage into OUT (default bin/stowage)
#   scripts/build.sh --tags    print the build tags (isal or nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

isal_header=/usr/include/isa-l/igzip_lib.h

tags() {
	if [ -e "$isal_header" ] && [ "$(go env CGO_ENABLED)" = 1 ]; then
		echo isal
	fi
}

if [ "${1:-}" = --tags ]; then
	tags
	exit 0
fi

if [ ! -e "$isal_header" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "scripts/build.sh: installing libisal-dev (ISA-L, fast gzip inflate)" >&2
	apt-get install -y -q libisal-dev >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libisal-dev >/dev/null 2>&1; } || true
fi
t=$(tags)
if [ -z "$t" ]; then
	echo "scripts/build.sh: note: building without ISA-L ($isal_header missing or cgo off): gzip layers are inflated by Go, with about 2.5 times the CPU time (pulls 15-20 % slower)" >&2
fi
out=${1:-bin/stowage}
mkdir -p "$(dirname "$out")"
exec go build ${t:+-tags "$t"} -o "$out" ./cmd/stowage
