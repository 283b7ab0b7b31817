#!/usr/bin/env bash
# Shared harness for the stowage end-to-end suites.
#
# The contract follows the upstream containers/storage bats harness so that the
# same suites can be pointed at either binary:
#
#   STORAGE_BINARY   binary under test (default: bin/stowage of this checkout)
#   STORAGE_DRIVER   graph driver (default: vfs)
#   STORAGE_OPTION   one extra --storage-opt=VALUE passed on every call
#   REFERENCE_BINARY containers-storage used by the differential suite
#                    (default: /usr/bin/containers-storage)
#
# Every test gets a fresh $TESTDIR holding root/ and runroot/; teardown wipes
# and shuts the store down and removes the directory.

bats_require_minimum_version 1.5.0

TESTSDIR=${TESTSDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
STORAGE_BINARY=${STORAGE_BINARY:-$(cd "$TESTSDIR/.." && pwd)/bin/stowage}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
STORAGE_OPTION=${STORAGE_OPTION:-}
REFERENCE_BINARY=${REFERENCE_BINARY:-/usr/bin/containers-storage}

export STORAGE_BINARY STORAGE_DRIVER

setup() {
	if [ ! -x "$STORAGE_BINARY" ]; then
		echo "STORAGE_BINARY $STORAGE_BINARY is not an executable (build it with: scripts/build.sh)" >&3
		return 1
	fi
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-test.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR
	# Main honours this for overlay; harmless for vfs.
	export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
}

teardown() {
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		# bounded: a hung binary must not hang the whole suite
		STORAGE_TIMEOUT=60 storage wipe >/dev/null 2>&1 || true
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# unmount_below DIR: lazily unmount anything still mounted under DIR (deepest
# first) so that rm -rf cannot walk into a live mount.
unmount_below() {
	local dir=$1 mp
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r mp; do
			umount -l "$mp" 2>/dev/null || true
		done
}

# storage ARGS...: run the binary under test against this test's store.
storage() {
	local opt=()
	if [ -n "$STORAGE_OPTION" ]; then
		opt=("--storage-opt=$STORAGE_OPTION")
	fi
	# Every call is bounded by STORAGE_TIMEOUT seconds (default 300) so
	# that a deadlocked binary fails its test instead of the whole run.
	timeout -k 10 "${STORAGE_TIMEOUT:-300}" "$STORAGE_BINARY" --debug --graph "$TESTDIR/root" --run "$TESTDIR/runroot" \
		--storage-driver "$STORAGE_DRIVER" "${opt[@]}" "$@"
}

# reference ARGS...: run containers-storage (the reference) against the same store.
reference() {
	timeout -k 10 "${STORAGE_TIMEOUT:-300}" "$REFERENCE_BINARY" --debug=false --graph "$TESTDIR/root" --run "$TESTDIR/runroot" \
		--storage-driver "$STORAGE_DRIVER" "$@"
}

# stowage_q ARGS...: the binary under test with --debug=false (clean output).
stowage_q() {
	storage --debug=false "$@"
}

# is_reference_143: true when STORAGE_BINARY is containers-storage v1.43, whose
# `version` command prints no version pairs at all.
is_reference_143() {
	if [ -z "${_IS_143:-}" ]; then
		local out tmp cache=
		if [ -n "${BATS_RUN_TMPDIR:-}" ]; then
			cache="$BATS_RUN_TMPDIR/is143-$(printf '%s' "$STORAGE_BINARY" | md5sum | cut -c1-8)"
		fi
		if [ -n "$cache" ] && [ -f "$cache" ]; then
			_IS_143=$(cat "$cache")
		else
			tmp=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-ver.XXXXXX")
			out=$(timeout 60 "$STORAGE_BINARY" --graph "$tmp/root" --run "$tmp/run" --storage-driver vfs version 2>&1) || true
			rm -rf "$tmp"
			if [ -z "$out" ]; then _IS_143=yes; else _IS_143=no; fi
			if [ -n "$cache" ]; then echo "$_IS_143" >"$cache"; fi
		fi
		export _IS_143
	fi
	[ "$_IS_143" = yes ]
}

# skip_if_143 REASON: skip a test that exercises something v1.43 lacks or does
# differently (cli.md §5).
skip_if_143() {
	if is_reference_143; then
		skip "containers-storage v1.43: ${1:-behaviour differs}"
	fi
}

require_reference() {
	if [ ! -x "$REFERENCE_BINARY" ]; then
		skip "reference binary $REFERENCE_BINARY not installed (apt-get install containers-storage)"
	fi
}

require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "needs root"
	fi
}

# lock_token FILE: printable form of a lock file's last-writer token.
lock_token() {
	od -An -tx1 -v "$1" | tr -d ' \n'
}

# createrandom FILE [BYTES]: FILE with BYTES (default 256) random bytes.
createrandom() {
	dd if=/dev/urandom of="$1" bs="${2:-256}" count=1 status=none
}

# new_layer [ARGS...]: create a layer and print its ID only.
new_layer() {
	local out
	out=$(storage --debug=false create-layer "$@") || return 1
	printf '%s\n' "${out%%$'\n'*}"
}

# mount_layer ID: mount a layer, print its mount point.
mount_layer() {
	local out
	out=$(storage --debug=false mount "$1") || return 1
	[ -n "$out" ] || return 1
	printf '%s\n' "$out"
}

# populate_layer ID: mount ID, add a few files, directories and a symlink,
# unmount again. Files are named after the layer so that diffs differ.
populate_layer() {
	local id=$1 mnt
	mnt=$(mount_layer "$id") || return 1
	mkdir -p "$mnt/dir-$id"
	createrandom "$mnt/file-$id" 1234
	createrandom "$mnt/dir-$id/inner" 100
	ln -s "file-$id" "$mnt/link-$id"
	storage --debug=false unmount "$id" >/dev/null || return 1
}

# make_tar OUT: a small deterministic layer tar with a file, a directory, a
# symlink, a hardlink and an empty file.
make_tar() {
	local out=$1 src
	src=$(mktemp -d "$TESTDIR/src.XXXXXX")
	mkdir -p "$src/etc/app" "$src/usr/bin"
	printf 'hello world\n' >"$src/etc/app/hello.txt"
	: >"$src/etc/app/empty"
	createrandom "$src/usr/bin/tool" 5000
	chmod 0755 "$src/usr/bin/tool"
	ln -s ../app/hello.txt "$src/etc/app/link"
	ln "$src/usr/bin/tool" "$src/usr/bin/tool-hardlink"
	touch -d '2020-01-02 03:04:05' "$src/etc/app/hello.txt"
	tar --sort=name --owner=0 --group=0 --numeric-owner -C "$src" -cf "$out" etc usr
	rm -rf "$src"
}

# sorted_tar_list TAR: member names, normalised (no leading ./), sorted.
sorted_tar_list() {
	tar -tf "$1" | sed -e 's,^\./,,' | grep -v '^$' | sort
}

# json_field JSON KEY: extract a top-level key from the first object of a
# JSON array (or an object) with jq.
json_field() {
	jq -r "if type == \"array\" then .[0] else . end | .$2" <<<"$1"
}

# new_image [ARGS...] / new_container [ARGS...]: create one and print its ID
# only (names printed by the create command are dropped).
new_image() {
	local out
	out=$(storage --debug=false create-image "$@") || return 1
	printf '%s\n' "${out%%$'\n'*}"
}

new_container() {
	local out
	out=$(storage --debug=false create-container "$@") || return 1
	printf '%s\n' "${out%%$'\n'*}"
}

# bigdata_filename KEY: the file name a data item KEY is stored under.
bigdata_filename() {
	if [[ "$1" =~ ^[a-z0-9.]+$ ]]; then
		printf '%s\n' "$1"
	else
		printf '=%s\n' "$(printf '%s' "$1" | base64 -w0)"
	fi
}

# require_overlay: skip unless overlay tests can run here: root, kernel
# overlay support, and a STORAGE_BINARY that knows the overlay driver. The
# probe result is cached per bats run and binary.
require_overlay() {
	require_root
	if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
		skip "kernel has no overlay filesystem support"
	fi
	local cache= out rc tmp
	if [ -n "${BATS_RUN_TMPDIR:-}" ]; then
		cache="$BATS_RUN_TMPDIR/overlay-$(printf '%s' "$STORAGE_BINARY" | md5sum | cut -c1-8)"
	fi
	if [ -n "$cache" ] && [ -f "$cache" ]; then
		out=$(cat "$cache")
	else
		tmp=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-ovl.XXXXXX")
		out=$(timeout 60 "$STORAGE_BINARY" --graph "$tmp/root" --run "$tmp/run" --storage-driver overlay layers 2>&1) && rc=0 || rc=$?
		timeout 60 "$STORAGE_BINARY" --graph "$tmp/root" --run "$tmp/run" --storage-driver overlay shutdown >/dev/null 2>&1 || true
		unmount_below "$tmp"
		rm -rf "$tmp"
		if [ "$rc" -eq 0 ]; then
			out=ok
		elif [[ "$out" == *"unknown storage driver"* || "$out" == *"unknown driver"* ]]; then
			out="$(basename "$STORAGE_BINARY") has no overlay driver yet"
		else
			out="overlay driver does not initialise here: ${out//$'\n'/ }"
		fi
		if [ -n "$cache" ]; then printf '%s' "$out" >"$cache"; fi
	fi
	if [ "$out" != ok ]; then
		skip "$out"
	fi
}

# is_mountpoint DIR: DIR is a mount point (per /proc/self/mountinfo).
is_mountpoint() {
	awk -v d="$1" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo
}
