#!/usr/bin/env bats
# Kill storm (issue 4, fault tests): four concurrent stowage processes
# import (import-layer, gzip'd or plain, some on a parent), create layers,
# images and containers, delete them and mount/unmount on one store while
# a share of the commands gets SIGKILL at a uniformly random moment of its
# expected run time, until at least 200 kills landed (times
# STOWAGE_FAULT_ROUNDS). Then faultkit verifies the store after the next
# open: every acknowledged object (exit 0 and its ID printed) is there, an
# imported layer's diff-digest is its tarball's, every layer's `diff -u`
# hashes to its recorded diff-digest and it mounts, no parent/image/
# container reference dangles, no orphan driver dir, tar-split or l/ link,
# no staging dir or .tmp-* file is left, and `check` (when stowage has it)
# agrees. The store lives on a private tmpfs: kills, not power cuts, are
# tested here (see fault-powercut.bats).

load helpers
load fault/lib

storm() {
	FDRIVER=$1
	require_fault_root
	faultkit_build
	faultkit_tars
	fault_tmpfs "$TESTDIR/fs" 2G
	local kills=$((200 * FAULT_ROUNDS)) max=$((480 * FAULT_ROUNDS))
	run "$FAULTKIT" storm --bin "$STORAGE_BINARY" --graph "$TESTDIR/fs/g" --run "$TESTDIR/fs/r" \
		--driver "$1" --tars "$FAULT_TARS" --kills "$kills" --p 0.6 --max "${max}s" --acks-out "$TESTDIR/acks"
	echo "$output"
	grep -E '^(storm: [0-9]+ SIGKILL|storm: verify|note:|verify:|INCONSISTENT)' <<<"$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

@test "kill storm: vfs, >=200 SIGKILLs, nothing acknowledged lost, store consistent" {
	storm vfs
}

@test "kill storm: overlay, >=200 SIGKILLs, nothing acknowledged lost, store consistent" {
	storm overlay
}
