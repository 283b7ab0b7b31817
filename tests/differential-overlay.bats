#!/usr/bin/env bats
# Differential overlay tests against the reference containers-storage
# (Debian's 1.43, REFERENCE_BINARY): overlay layers written by one tool are
# listed, mounted and diffed (bit-identically) by the other, deep chains
# written by stowage are read through `lower` by 1.43, and both tools
# creating layers in one store at the same time lose nothing.
#
# What 1.43 itself does with deep chains (checked here): it reads only
# `lower`, refuses to mount more than 128 lowers ("max depth exceeded"), and
# diffs any layer without mounting it (tar-split + the layer's diff/).

load helpers

setup() {
	require_reference
	STORAGE_DRIVER=overlay
	export STORAGE_DRIVER
	if [ "$(readlink -f "$STORAGE_BINARY")" = "$(readlink -f "$REFERENCE_BINARY")" ]; then
		skip "STORAGE_BINARY is the reference itself"
	fi
	require_overlay
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-dovl.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR
	export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
	H="$TESTDIR/root/overlay"
}

teardown() {
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		STORAGE_TIMEOUT=60 storage wipe >/dev/null 2>&1 || true
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		STORAGE_TIMEOUT=60 reference shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# tool_q TOOL ARGS...: TOOL (storage or reference) with clean output.
tool_q() {
	local tool=$1
	shift
	if [ "$tool" = storage ]; then
		storage --debug=false "$@"
	else
		reference "$@"
	fi
}

# layer_ids TOOL: every layer ID TOOL lists, sorted, once each.
layer_ids() {
	tool_q "$1" layers --json | jq -r '.[].id' | sort -u
}

first_line() {
	printf '%s\n' "${1%%$'\n'*}"
}

# whiteout_tar OUT: deletes etc/app/hello.txt, makes usr/bin opaque, adds
# usr/bin/new (applies on top of make_tar's layer).
whiteout_tar() {
	local src="$TESTDIR/wh"
	rm -rf "$src" && mkdir -p "$src/etc/app" "$src/usr/bin"
	: >"$src/etc/app/.wh.hello.txt"
	: >"$src/usr/bin/.wh..wh..opq"
	echo new >"$src/usr/bin/new"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01' -C "$src" -cf "$1" etc usr
	rm -rf "$src"
}

tiny_tar() {
	local src="$TESTDIR/tiny-$2"
	rm -rf "$src" && mkdir -p "$src"
	printf '%s\n' "$2" >"$src/$2"
	tar --owner=0 --group=0 --numeric-owner --mtime='2020-01-01' -C "$src" -cf "$1" "$2"
	rm -rf "$src"
}

# write_overlay TOOL: base (imported), child (created, written through a
# mount), wh (imported with whiteouts), image and container.
write_overlay() {
	local tool=$1 mnt
	make_tar "$TESTDIR/layer.tar"
	whiteout_tar "$TESTDIR/wh.tar"
	base=$(first_line "$(tool_q "$tool" import-layer -f "$TESTDIR/layer.tar")")
	child=$(first_line "$(tool_q "$tool" create-layer "$base")")
	mnt=$(tool_q "$tool" mount "$child")
	echo "added by $tool" >"$mnt/etc/app/added"
	rm "$mnt/etc/app/empty"
	tool_q "$tool" unmount "$child" >/dev/null
	wh=$(first_line "$(tool_q "$tool" import-layer -f "$TESTDIR/wh.tar" "$base")")
	image=$(first_line "$(tool_q "$tool" create-image "$wh")")
	container=$(first_line "$(tool_q "$tool" create-container "$image")")
	clayer=$(tool_q "$tool" container --json "$container" | jq -r '.[0].layer')
	mnt=$(tool_q "$tool" mount "$container")
	echo container >"$mnt/cfile"
	tool_q "$tool" unmount "$container" >/dev/null
	tool_q "$tool" shutdown >/dev/null
}

# check_overlay_reader TOOL WRITER: TOOL reads what WRITER wrote.
check_overlay_reader() {
	local tool=$1 writer=$2 mnt
	layer_ids "$tool" >"$TESTDIR/ids"
	printf '%s\n' "$base" "$child" "$wh" "$clayer" | sort | diff - "$TESTDIR/ids"
	# imported layers diff back to their tars, byte for byte
	tool_q "$tool" diff -u "$base" | cmp - "$TESTDIR/layer.tar"
	tool_q "$tool" diff -u "$wh" | cmp - "$TESTDIR/wh.tar"
	# mounts
	mnt=$(tool_q "$tool" mount "$base")
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	cmp "$mnt/usr/bin/tool" "$H/$base/diff/usr/bin/tool"
	tool_q "$tool" unmount "$base" >/dev/null
	mnt=$(tool_q "$tool" mount "$child")
	[ "$(cat "$mnt/etc/app/added")" = "added by $writer" ]
	[ ! -e "$mnt/etc/app/empty" ]
	[ -e "$mnt/etc/app/hello.txt" ]
	tool_q "$tool" unmount "$child" >/dev/null
	mnt=$(tool_q "$tool" mount "$wh")
	[ ! -e "$mnt/etc/app/hello.txt" ]
	[ "$(ls "$mnt/usr/bin")" = new ]
	tool_q "$tool" unmount "$wh" >/dev/null
	mnt=$(tool_q "$tool" mount "$container")
	[ "$(cat "$mnt/cfile")" = container ]
	[ "$(cat "$mnt/usr/bin/new")" = new ]
	[ ! -e "$mnt/etc/app/hello.txt" ]
	tool_q "$tool" unmount "$container" >/dev/null
	# the written child's changes and diff
	run -0 tool_q "$tool" changes "$child"
	[[ "$output" == *'Add "/etc/app/added"'* ]]
	[[ "$output" == *'Delete "/etc/app/empty"'* ]]
	tool_q "$tool" diff -u "$child" | tar -t | sed 's,^\./,,' >"$TESTDIR/child.list"
	grep -qx 'etc/app/.wh.empty' "$TESTDIR/child.list"
	grep -qx 'etc/app/added' "$TESTDIR/child.list"
	tool_q "$tool" shutdown >/dev/null
	! is_mountpoint "$H"
}

@test "overlay differential: containers-storage reads overlay layers stowage wrote" {
	write_overlay storage
	# the 1.43 reader needs lower and l/ links; check they are there
	[ -f "$H/$wh/lower" ] && [ -f "$H/$clayer/lower" ]
	check_overlay_reader reference storage
	# and stowage still reads its own store after 1.43 used it
	check_overlay_reader storage storage
}

@test "overlay differential: stowage reads overlay layers containers-storage wrote" {
	write_overlay reference
	[ ! -e "$H/$clayer/lower-layers" ] # 1.43 writes only lower
	check_overlay_reader storage reference
	check_overlay_reader reference reference
}

@test "overlay differential: a 130-layer chain stowage wrote, read by both" {
	local i parent= id mnt
	chain=()
	for ((i = 0; i < 130; i++)); do
		tiny_tar "$TESTDIR/t$i.tar" "level-$i"
		id=$(first_line "$(storage --debug=false import-layer -f "$TESTDIR/t$i.tar" $parent)")
		chain+=("$id")
		parent=$id
	done
	top=${chain[129]}
	run -0 storage --debug=false shutdown
	# containers-storage 1.43 lists all of them and diffs any layer
	# bit-identically, deep or not
	[ "$(layer_ids reference | wc -l)" -eq 130 ]
	for i in 0 64 127 128 129; do
		reference diff -u "${chain[$i]}" | cmp - "$TESTDIR/t$i.tar"
	done
	# 1.43 mounts a layer with 128 lowers (through `lower`)...
	mnt=$(reference mount "${chain[128]}")
	[ "$(cat "$mnt/level-0")" = level-0 ]
	[ "$(cat "$mnt/level-128")" = level-128 ]
	[ "$(ls "$mnt" | wc -l)" -eq 129 ]
	reference unmount "${chain[128]}" >/dev/null
	# ...and refuses 129 lowers by its own 128 limit; if a newer reference
	# mounts it, the content must be right
	if mnt=$(reference mount "$top" 2>"$TESTDIR/ref.err"); then
		[ "$(cat "$mnt/level-0")" = level-0 ]
		[ "$(ls "$mnt" | wc -l)" -eq 130 ]
		reference unmount "$top" >/dev/null
	else
		grep -qi 'max depth' "$TESTDIR/ref.err"
	fi
	run -0 reference shutdown
	# stowage mounts and diffs the whole chain
	mnt=$(mount_layer "$top")
	[ "$(cat "$mnt/level-0")" = level-0 ]
	[ "$(cat "$mnt/level-129")" = level-129 ]
	[ "$(ls "$mnt" | wc -l)" -eq 130 ]
	run -0 storage --debug=false unmount "$top"
	for i in 0 64 128 129; do
		storage --debug=false diff -u "${chain[$i]}" | cmp - "$TESTDIR/t$i.tar"
	done
}

@test "overlay differential: concurrent layer creation by both tools loses nothing" {
	local i pids=() base n=20
	base=$(new_layer)
	run -0 storage --debug=false shutdown
	for ((i = 0; i < n; i++)); do
		tiny_tar "$TESTDIR/s$i.tar" "stowage-$i"
		tiny_tar "$TESTDIR/r$i.tar" "reference-$i"
	done
	for ((i = 0; i < n; i++)); do
		storage --debug=false import-layer -n "s$i" -f "$TESTDIR/s$i.tar" "$base" >"$TESTDIR/s$i.out" 2>&1 &
		pids+=($!)
		reference import-layer -n "r$i" -f "$TESTDIR/r$i.tar" "$base" >"$TESTDIR/r$i.out" 2>&1 &
		pids+=($!)
	done
	failed=0
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=$((failed + 1))
	done
	if [ "$failed" -ne 0 ]; then
		cat "$TESTDIR"/*.out
	fi
	[ "$failed" -eq 0 ]
	[ "$(layer_ids storage | wc -l)" -eq $((2 * n + 1)) ]
	[ "$(layer_ids reference | wc -l)" -eq $((2 * n + 1)) ]
	[ "$(ls "$H/l" | wc -l)" -eq $((2 * n + 1)) ]
	for ((i = 0; i < n; i++)); do
		for name in "s$i" "r$i"; do
			storage --debug=false diff -u "$name" | cmp - "$TESTDIR/$name.tar"
			reference diff -u "$name" | cmp - "$TESTDIR/$name.tar"
			[ -f "$H/$(storage --debug=false layer --json "$name" | jq -r '.[0].id')/lower" ]
		done
	done
	# one mount of each tool sees its own file over the base (by ID: 1.43
	# does not resolve names in mount)
	s3=$(storage --debug=false layer --json s3 | jq -r '.[0].id')
	r3=$(storage --debug=false layer --json r3 | jq -r '.[0].id')
	mnt=$(mount_layer "$r3")
	[ -e "$mnt/reference-3" ] && [ ! -e "$mnt/stowage-3" ]
	run -0 storage --debug=false unmount "$r3"
	mnt=$(reference mount "$s3")
	[ -e "$mnt/stowage-3" ] && [ ! -e "$mnt/reference-3" ]
	reference unmount "$s3" >/dev/null
}
