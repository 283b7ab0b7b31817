#!/usr/bin/env bats
# Exercises the speed benchmark (bench/run.sh) in its --quick mode: small
# layers, one run. Timings on a shared CI machine mean nothing, so this only
# checks that every scenario ran and the target table was printed.

setup() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "bench/run.sh needs root (loop mount)"
	fi
	if [ -n "${STORAGE_BINARY:-}" ] && [[ "$STORAGE_BINARY" != *stowage* ]]; then
		skip "the benchmark measures stowage itself"
	fi
	for c in zstd python3 mkfs.ext4; do
		command -v "$c" >/dev/null || skip "$c not installed"
	done
	cd "$BATS_TEST_DIRNAME/.."
}

@test "bench/run.sh --quick runs every scenario and prints the targets" {
	run env STOWAGE_BENCH_NO_BUILD=${STOWAGE_BENCH_NO_BUILD:-} bench/run.sh --quick --cache "$BATS_TMPDIR/stowage-bench-cache"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"== targets (issue 4 item 5)"* ]]
	for t in "import 250MB/17k plain / floor" "import 250MB/17k zstd / floor" "import 1GiB few-file / floor" \
		"diff re-export / tar -c" "layers.lock hold per commit, vfs" "8 parallel imports / tar+hash" \
		"8 parallel: summed lock wait" "peak RSS, every stowage import" "64 MiB PAX header"; do
		[[ "$output" == *"$t"* ]] || { echo "missing target: $t"; return 1; }
	done
	# the stowage imports themselves must have worked
	[[ "$output" != *"WARNING"* ]]
	[[ "$output" == *"64 MiB PAX header"*"refused"*"PASS"* ]]
}
