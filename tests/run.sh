#!/usr/bin/env bash
# The project's test command: build, vet, format check, Go unit tests and the
# end-to-end bats suites. Run from anywhere, as root (the suites mount layers
# and create files owned by other users):
#
#   tests/run.sh            everything
#   tests/run.sh --no-go    only build + bats (quick CLI iteration)
#   tests/run.sh --race     go test with -race (slower)
#
# Extra arguments after -- are passed to bats (e.g. tests/run.sh -- -f names).
# Environment: STORAGE_DRIVER (default vfs), GO (default: go on PATH or
# /usr/local/go/bin/go), BATS_JOBS (parallel bats jobs, needs GNU parallel),
# STOWAGE_FUZZTIME (e.g. 30s: also fuzz each Fuzz target that long; without
# it `go test` runs only their seed corpora), STOWAGE_FAULT_ROUNDS (scale
# the fault suites tests/fault-*.bats for longer runs; default 1).

set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

# fuzz_all: each Fuzz target for $STOWAGE_FUZZTIME (minimization off: the
# unpacker's goroutines make coverage vary between runs).
fuzz_all() {
	local t
	local targets=(archive:FuzzUnpack tarsplit:FuzzReassemble internal/table:FuzzLoad)
	if [ -n "$tags" ]; then
		targets+=(archive:FuzzISALInflate)
	fi
	for t in "${targets[@]}"; do
		"$GO" test ${tags:+-tags "$tags"} "./${t%%:*}" -run '^$' -fuzz "^${t#*:}\$" -fuzztime "$STOWAGE_FUZZTIME" -fuzzminimizetime 0s || return 1
	done
}

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
GO=${GO:-go}

run_go=yes
race=
bats_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--no-go) run_go=no ;;
	--race) race=-race ;;
	--) shift; bats_args=("$@"); break ;;
	-h | --help)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

failed=()
step() {
	local name=$1
	shift
	echo
	echo "=== $name"
	local start end
	start=$(date +%s)
	if "$@"; then
		end=$(date +%s)
		echo "--- ok: $name ($((end - start))s)"
	else
		end=$(date +%s)
		echo "--- FAILED: $name ($((end - start))s)"
		failed+=("$name")
	fi
}

gofmt_check() {
	local out
	out=$(gofmt -l $(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './vendor/*'))
	if [ -n "$out" ]; then
		echo "gofmt: these files need formatting (run gofmt -w):"
		echo "$out"
		return 1
	fi
}

go_test() {
	# -p 1 would be gentler on a 2-core machine but slower overall; the
	# default parallelism is fine. -count=1 disables the result cache.
	"$GO" test -count=1 $race ${tags:+-tags "$tags"} ./...
}

# With ISA-L the build without it is still vetted and its inflate tested.
go_noisal() {
	"$GO" vet ./archive/ && "$GO" test -count=1 $race ./archive/
}

if [ "$(id -u)" -ne 0 ]; then
	echo "warning: not running as root; root-only tests will skip or fail" >&2
fi

# On a fresh machine, install the Debian packages the suites use.
tests/deps.sh || failed+=("test dependencies (tests/deps.sh)")

# Build tags: isal when ISA-L's headers are installed (scripts/build.sh).
tags=$(scripts/build.sh --tags)
step "build bin/stowage${tags:+ (tags: $tags)}" scripts/build.sh bin/stowage
if [ "$run_go" = yes ]; then
	step "go vet" "$GO" vet ${tags:+-tags "$tags"} ./...
	step "gofmt" gofmt_check
	step "go test${race:+ -race}${tags:+ (tags: $tags)}" go_test
	if [ -n "$tags" ]; then
		step "go vet + go test ./archive/ without tags (Go inflate)" go_noisal
	fi
	if [ -n "${STOWAGE_FUZZTIME:-}" ]; then
		step "fuzz ($STOWAGE_FUZZTIME per target)" fuzz_all
	fi
fi

if command -v bats >/dev/null 2>&1; then
	if [ -x bin/stowage ]; then
		export STORAGE_BINARY=${STORAGE_BINARY:-$ROOT/bin/stowage}
		jobs=()
		if [ -n "${BATS_JOBS:-}" ] && command -v parallel >/dev/null 2>&1; then
			jobs=(--jobs "$BATS_JOBS")
		fi
		step "bats tests/ (STORAGE_BINARY=$STORAGE_BINARY, driver ${STORAGE_DRIVER:-vfs})" \
			bats "${jobs[@]}" "${bats_args[@]}" tests/
	else
		echo "=== bats skipped: bin/stowage was not built"
		failed+=("bats (no binary)")
	fi
else
	echo "=== bats not installed (apt-get install bats)"
	failed+=("bats (not installed)")
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED steps:"
	printf '  - %s\n' "${failed[@]}"
	exit 1
fi
echo "all steps passed"
