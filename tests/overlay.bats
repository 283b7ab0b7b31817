#!/usr/bin/env bats
# The overlay driver's on-disk layout and mount behaviour
# (layers-and-drivers.md §1, store-format.md §1.3 and §1.7). These tests always
# use the overlay driver, whatever STORAGE_DRIVER the suite runs with, and
# skip when overlay cannot run here (not root, no kernel support, or a binary
# without the overlay driver). They describe the reference too:
#   STORAGE_BINARY=/usr/bin/containers-storage bats tests/overlay.bats
# (v1.43 writes no `lower-layers` and mounts at most 128 lowers; those parts
# skip or relax there).

load helpers

setup() {
	STORAGE_DRIVER=overlay
	export STORAGE_DRIVER
	require_overlay
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-ovl.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR
	export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
	H="$TESTDIR/root/overlay"
}

# check_layer_dir ID: the per-layer entries every overlay layer has.
check_layer_dir() {
	local id=$1 link target
	[ -d "$H/$id/diff" ] || { echo "$id: no diff/"; return 1; }
	[ -d "$H/$id/work" ] || { echo "$id: no work/"; return 1; }
	[ "$(stat -c %a "$H/$id/work")" = 700 ] || { echo "$id: work/ mode $(stat -c %a "$H/$id/work")"; return 1; }
	[ -f "$H/$id/link" ] || { echo "$id: no link file"; return 1; }
	[ "$(stat -c %s "$H/$id/link")" -eq 26 ] || { echo "$id: link file is $(stat -c %s "$H/$id/link") bytes, want 26 (no newline)"; return 1; }
	link=$(cat "$H/$id/link")
	[[ "$link" =~ ^[A-Z2-7]{26}$ ]] || { echo "$id: link '$link' is not 26 chars of [A-Z2-7]"; return 1; }
	[ -L "$H/l/$link" ] || { echo "$id: l/$link is not a symlink"; return 1; }
	target=$(readlink "$H/l/$link")
	[ "$target" = "../$id/diff" ] || { echo "$id: l/$link -> $target, want ../$id/diff"; return 1; }
}

# lower_ids ID: the layer IDs named by ID's `lower` file, resolved through
# the l/ symlinks, joined by ':'.
lower_ids() {
	local entry target ids=()
	IFS=: read -ra entries <"$H/$1/lower"
	for entry in "${entries[@]}"; do
		[[ "$entry" =~ ^l/[A-Z2-7]{26}$ ]] || { echo "bad lower entry '$entry'" >&2; return 1; }
		target=$(readlink "$H/$entry") || { echo "dangling lower entry $entry" >&2; return 1; }
		target=${target#../}
		ids+=("${target%/diff}")
	done
	(IFS=:; printf '%s\n' "${ids[*]}")
}

# check_lowers ID WANT: ID's lower chain is WANT (IDs, nearest first, ':'
# joined) both through `lower` and, when present (required unless v1.43),
# through `lower-layers`.
check_lowers() {
	local id=$1 want=$2 got
	[ -f "$H/$id/lower" ] || { echo "$id: no lower file"; return 1; }
	[ ! -e "$H/$id/empty" ] || { echo "$id: has a parent but also empty/"; return 1; }
	got=$(lower_ids "$id") || return 1
	[ "$got" = "$want" ] || { echo "$id: lower resolves to $got, want $want"; return 1; }
	if [ -f "$H/$id/lower-layers" ]; then
		got=$(cat "$H/$id/lower-layers")
		[ "$got" = "$want" ] || { echo "$id: lower-layers is $got, want $want"; return 1; }
		[ "$(tail -c1 "$H/$id/lower-layers" | od -An -c | tr -d ' ')" != '\n' ] || { echo "$id: lower-layers ends in a newline"; return 1; }
	elif ! is_reference_143; then
		echo "$id: no lower-layers file"
		return 1
	fi
}

# tiny_tar OUT NAME: a tar holding one file NAME with content NAME.
tiny_tar() {
	local src="$TESTDIR/tiny"
	rm -rf "$src" && mkdir -p "$src"
	printf '%s\n' "$2" >"$src/$2"
	tar --owner=0 --group=0 --numeric-owner --mtime='2020-01-01' -C "$src" -cf "$1" "$2"
}

# whiteout_tar OUT: a layer on top of make_tar's that deletes
# etc/app/hello.txt, makes usr/bin opaque and adds usr/bin/new.
whiteout_tar() {
	local src="$TESTDIR/wh"
	rm -rf "$src" && mkdir -p "$src/etc/app" "$src/usr/bin"
	: >"$src/etc/app/.wh.hello.txt"
	: >"$src/usr/bin/.wh..wh..opq"
	echo new >"$src/usr/bin/new"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01' -C "$src" -cf "$1" etc usr
	rm -rf "$src"
}

@test "overlay: layout of imported, created and container layers" {
	make_tar "$TESTDIR/layer.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	base=${base%%$'\n'*}
	child=$(new_layer "$base")
	image=$(new_image "$child")
	container=$(new_container "$image")
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	[ -n "$clayer" ] && [ "$clayer" != null ]

	[ -d "$H/l" ]
	[ "$(stat -c %a "$H/l")" = 755 ]
	for id in "$base" "$child" "$clayer"; do
		check_layer_dir "$id"
	done
	# links are distinct
	[ "$(cat "$H/$base/link" "$H/$child/link" "$H/$clayer/link" | fold -w26 | sort -u | wc -l)" -eq 3 ]
	[ "$(find "$H/l" -mindepth 1 | wc -l)" -eq 3 ]

	# base layer: empty/, no lower files, diff holds the tar's files, 0555
	[ -d "$H/$base/empty" ]
	[ ! -e "$H/$base/lower" ]
	[ ! -e "$H/$base/lower-layers" ]
	[ "$(stat -c %a "$H/$base/diff")" = 555 ]
	[ "$(cat "$H/$base/diff/etc/app/hello.txt")" = "hello world" ]
	cmp "$H/$base/diff/usr/bin/tool" "$H/$base/diff/usr/bin/tool-hardlink"
	[ "$(stat -c %i "$H/$base/diff/usr/bin/tool")" = "$(stat -c %i "$H/$base/diff/usr/bin/tool-hardlink")" ]

	# child and container layers: lower and lower-layers agree
	check_lowers "$child" "$base"
	check_lowers "$clayer" "$child:$base"
	[ "$(cat "$H/$child/lower")" = "l/$(cat "$H/$base/link")" ]
	[ "$(cat "$H/$clayer/lower")" = "l/$(cat "$H/$child/link"):l/$(cat "$H/$base/link")" ]
	# a created child starts empty and inherits the parent's diff mode
	[ -z "$(ls -A "$H/$child/diff")" ]
	[ "$(stat -c %a "$H/$child/diff")" = 555 ]
}

@test "overlay: mounts show lower files, whiteouts hide, writes land in diff" {
	make_tar "$TESTDIR/layer.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	base=${base%%$'\n'*}

	# a writable child: lower content visible, deletes become whiteouts
	child=$(new_layer "$base")
	mnt=$(mount_layer "$child")
	is_mountpoint "$mnt"
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	[ -x "$mnt/usr/bin/tool" ]
	[ "$(readlink "$mnt/etc/app/link")" = ../app/hello.txt ]
	rm "$mnt/etc/app/empty"
	echo written >"$mnt/etc/app/written"
	echo more >>"$mnt/etc/app/hello.txt"
	run -0 storage --debug=false unmount "$child"
	! is_mountpoint "$mnt"
	[ "$(cat "$H/$child/diff/etc/app/written")" = written ]
	[ "$(tail -n1 "$H/$child/diff/etc/app/hello.txt")" = more ]
	[ -c "$H/$child/diff/etc/app/empty" ]
	[ "$(stat -c '%t:%T' "$H/$child/diff/etc/app/empty")" = 0:0 ]
	# the lower layer is untouched
	[ -e "$H/$base/diff/etc/app/empty" ]
	[ "$(cat "$H/$base/diff/etc/app/hello.txt")" = "hello world" ]
	# and the change is a whiteout in the child's diff
	storage --debug=false diff -u "$child" | tar -t | sed 's,^\./,,' >"$TESTDIR/child.list"
	grep -qx 'etc/app/.wh.empty' "$TESTDIR/child.list"
	grep -qx 'etc/app/written' "$TESTDIR/child.list"

	# an imported layer with a whiteout and an opaque directory
	whiteout_tar "$TESTDIR/wh.tar"
	wh=$(storage --debug=false import-layer -f "$TESTDIR/wh.tar" "$base")
	wh=${wh%%$'\n'*}
	[ -c "$H/$wh/diff/etc/app/hello.txt" ]
	[ "$(stat -c '%t:%T' "$H/$wh/diff/etc/app/hello.txt")" = 0:0 ]
	[ "$(getfattr --only-values -n trusted.overlay.opaque "$H/$wh/diff/usr/bin" 2>/dev/null)" = y ]
	[ ! -e "$H/$wh/diff/etc/app/.wh.hello.txt" ]
	[ ! -e "$H/$wh/diff/usr/bin/.wh..wh..opq" ]
	mnt=$(mount_layer "$wh")
	[ ! -e "$mnt/etc/app/hello.txt" ]
	[ -e "$mnt/etc/app/empty" ]
	[ "$(ls "$mnt/usr/bin")" = new ]
	run -0 storage --debug=false unmount "$wh"

	# a container's writes land in its own layer's diff
	image=$(new_image "$base")
	container=$(new_container "$image")
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	mnt=$(storage --debug=false mount "$container")
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	echo from-container >"$mnt/container-file"
	run -0 storage --debug=false unmount "$container"
	[ "$(cat "$H/$clayer/diff/container-file")" = from-container ]
	[ ! -e "$H/$base/diff/container-file" ]
}

@test "overlay: diff of imported layers is bit-identical to the tar" {
	make_tar "$TESTDIR/layer.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	base=${base%%$'\n'*}
	whiteout_tar "$TESTDIR/wh.tar"
	wh=$(storage --debug=false import-layer -f "$TESTDIR/wh.tar" "$base")
	wh=${wh%%$'\n'*}
	for pair in "$base:layer.tar" "$wh:wh.tar"; do
		id=${pair%%:*} tarf=$TESTDIR/${pair#*:}
		storage --debug=false diff -u "$id" >"$TESTDIR/out.tar"
		cmp "$tarf" "$TESTDIR/out.tar"
		want="sha256:$(sha256sum <"$tarf" | cut -d' ' -f1)"
		[ "$(storage --debug=false layer --json "$id" | jq -r '.[0]["diff-digest"]')" = "$want" ]
		[ "sha256:$(sha256sum <"$TESTDIR/out.tar" | cut -d' ' -f1)" = "$want" ]
	done
}

@test "overlay: the driver home is a private bind mount that umount can remove" {
	base=$(new_layer)
	new_layer "$base" >/dev/null
	is_mountpoint "$H"
	# no shared:N peer group in the optional fields: the mount is private
	opt=$(awk -v d="$H" '$5 == d { for (i = 7; $i != "-"; i++) printf "%s ", $i }' /proc/self/mountinfo)
	[[ "$opt" != *shared:* ]]
	run -0 umount "$H"
	! is_mountpoint "$H"
	# the store still works afterwards (the home is bind-mounted again)
	mnt=$(mount_layer "$base")
	is_mountpoint "$mnt"
	run -0 storage --debug=false unmount "$base"
}

@test "overlay: shutdown unmounts the driver home" {
	make_tar "$TESTDIR/layer.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	base=${base%%$'\n'*}
	mnt=$(mount_layer "$base")
	run -0 storage --debug=false unmount "$base"
	is_mountpoint "$H"
	run -0 storage --debug=false shutdown
	! is_mountpoint "$H"
	[ -z "$(awk -v d="$TESTDIR/" 'index($5, d) == 1' /proc/self/mountinfo)" ]
}

# build_chain N: a chain of N tiny imported layers; sets chain=(ids...),
# bottom first. Layer i holds the file level-i.
build_chain() {
	local n=$1 i parent= id
	chain=()
	for ((i = 0; i < n; i++)); do
		tiny_tar "$TESTDIR/t.tar" "level-$i"
		id=$(storage --debug=false import-layer -f "$TESTDIR/t.tar" $parent) || return 1
		id=${id%%$'\n'*}
		chain+=("$id")
		parent=$id
	done
}

# check_chain_mount N: the layer chain[N-1] (N-1 lowers) has lower and
# lower-layers naming the N-1 layers below it; mounted, it shows files from
# the bottom, the middle and the top; its diff is still its own tar.
check_chain_mount() {
	local n=$1 top mnt ids
	top=${chain[$((n - 1))]}
	[ "$(awk -F: '{ print NF }' "$H/$top/lower")" -eq $((n - 1)) ]
	ids=$(lower_ids "$top")
	[ "${ids##*:}" = "${chain[0]}" ]
	[ "${ids%%:*}" = "${chain[$((n - 2))]}" ]
	if [ -f "$H/$top/lower-layers" ]; then
		[ "$(cat "$H/$top/lower-layers")" = "$ids" ]
		[ "$(awk -F: '{ print NF }' "$H/$top/lower-layers")" -eq $((n - 1)) ]
		[ "$(cut -d: -f1 <"$H/$top/lower-layers")" = "${chain[$((n - 2))]}" ]
		[ "$(awk -F: '{ print $NF }' "$H/$top/lower-layers")" = "${chain[0]}" ]
	fi
	mnt=$(mount_layer "$top")
	[ "$(cat "$mnt/level-0")" = level-0 ]
	[ "$(cat "$mnt/level-$((n / 2))")" = "level-$((n / 2))" ]
	[ "$(cat "$mnt/level-$((n - 1))")" = "level-$((n - 1))" ]
	[ "$(ls "$mnt" | wc -l)" -eq "$n" ]
	run -0 storage --debug=false unmount "$top"
	! is_mountpoint "$mnt"
	tiny_tar "$TESTDIR/t.tar" "level-$((n - 1))"
	storage --debug=false diff -u "$top" | cmp - "$TESTDIR/t.tar"
}

@test "overlay: 130- and 500-layer chains mount (more than 128 lowers)" {
	skip_if_143 "mounts at most 128 lowers"
	build_chain 500
	check_chain_mount 130
	check_chain_mount 500
}

@test "overlay: mount counts are shared between processes" {
	base=$(new_layer)
	mnt=$(mount_layer "$base")
	mnt2=$(mount_layer "$base")
	[ "$mnt" = "$mnt2" ]
	run -0 storage --debug=false unmount "$base"
	is_mountpoint "$mnt"
	run -0 storage --debug=false unmount "$base"
	! is_mountpoint "$mnt"
}
