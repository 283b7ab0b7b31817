#!/usr/bin/env bats
# create-layer, layers, layer: creation, names, parents, listing formats,
# load-time repairs (incomplete layers, stale temporary directories).

load helpers

@test "layers: empty store prints nothing" {
	run -0 storage --debug=false layers
	[ "$output" = "" ]
}

@test "create-layer: prints exactly the new ID" {
	run -0 storage --debug=false create-layer
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	layer=$output
	run -0 storage --debug=false layers
	[ "$output" = "$layer" ]
	run -0 storage exists -l "$layer"
}

@test "create-layer: names are printed after the ID with a tab and listed by layers" {
	run -0 storage --debug=false create-layer -n first --name second
	[ "${#lines[@]}" -eq 3 ]
	layer=${lines[0]}
	[[ "$layer" =~ ^[0-9a-f]{64}$ ]]
	[ "${lines[1]}" = $'\tfirst' ]
	[ "${lines[2]}" = $'\tsecond' ]
	run -0 storage --debug=false layers
	[ "${lines[0]}" = "$layer" ]
	[ "${lines[1]}" = $'\tname: first' ]
	[ "${lines[2]}" = $'\tname: second' ]
	run -0 storage --debug=false get-names first
	[ "$output" = $'first\nsecond' ]
}

@test "create-layer: explicit ID, parent, and the layer command" {
	parent=$(new_layer)
	run -0 storage --debug=false create-layer --id 0123456789abcdef -n kid "$parent"
	[ "${lines[0]}" = 0123456789abcdef ]
	run -0 storage --debug=false layer 0123456789abcdef
	[ "${lines[0]}" = "ID: 0123456789abcdef" ]
	[[ "$output" == *"Parent: $parent"* ]]
	[[ "$output" == *"Name: kid"* ]]
	[[ "$output" != *"Read Only"* ]]
	# by name, too
	run -0 storage --debug=false layer kid
	[ "${lines[0]}" = "ID: 0123456789abcdef" ]
	run -0 storage --debug=false layer --json kid
	[ "$(jq -r '.[0].id' <<<"$output")" = 0123456789abcdef ]
	[ "$(jq -r '.[0].parent' <<<"$output")" = "$parent" ]
	[ "$(jq -c '.[0].names' <<<"$output")" = '["kid"]' ]
	# the parent has no Parent line
	run -0 storage --debug=false layer "$parent"
	[ "$output" = "ID: $parent" ]
}

@test "create-layer: duplicate name, duplicate ID and unknown parent fail" {
	layer=$(new_layer -n taken)
	run -1 storage --debug=false create-layer -n taken
	[[ "$output" == *"that name is already in use"* ]]
	run -1 storage --debug=false create-layer --id "$layer"
	[[ "$output" == *"that ID is already in use"* ]]
	run -1 storage --debug=false create-layer nosuchparent
	[[ "$output" == *"layer not known"* ]]
	# nothing was added by the failures
	run -0 storage --debug=false layers -j
	[ "$(jq length <<<"$output")" -eq 1 ]
}

@test "layer: exits 1 when any argument is unknown but prints the found ones" {
	layer=$(new_layer)
	run -1 storage --debug=false layer "$layer" nosuch
	[ "${lines[0]}" = "ID: $layer" ]
	run -1 storage --debug=false layer nosuch
}

@test "layers: JSON output is one compact array of layer records" {
	a=$(new_layer -n a)
	b=$(new_layer "$a")
	run -0 storage --debug=false layers --json
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq length <<<"$output")" -eq 2 ]
	[ "$(jq -r --arg b "$b" '.[] | select(.id == $b) | .parent' <<<"$output")" = "$a" ]
	[ "$(jq -r --arg a "$a" '.[] | select(.id == $a) | .names[0]' <<<"$output")" = a ]
	# no mount point or mount count is serialised
	[[ "$output" != *mountpoint* ]]
	[[ "$output" != *mountcount* ]]
	jq -e '.[0].created | test("^[0-9]{4}-")' <<<"$output"
}

@test "layers: tree output draws parents and children" {
	a=$(new_layer)
	b=$(new_layer -n kid "$a")
	run -0 storage --debug=false layers -t
	[ "${lines[0]}" = "(base)" ]
	[ "${lines[1]}" = "└─$a" ]
	[ "${lines[2]}" = "  └─$b" ]
	[ "${lines[3]}" = "    name: kid" ]
}

@test "layers: image and container owners are listed under their layers" {
	base=$(new_layer)
	image=$(new_image -n img "$base")
	container=$(new_container -n ctr "$image")
	clayer=$(storage --debug=false container -j "$container" | jq -r '.[0].layer')
	run -0 storage --debug=false layers
	[[ "$output" == *"$base"$'\n\t'"image: $image"$'\n\t\t'"name: img"* ]]
	[[ "$output" == *"$clayer"$'\n\t'"container: $container"$'\n\t\t'"name: ctr"* ]]
}

@test "layers: -q prints IDs only" {
	skip_if_143 "no layers -q"
	a=$(new_layer -n named)
	run -0 storage --debug=false layers -q
	[ "$output" = "$a" ]
}

@test "layers: extra positional arguments are rejected" {
	skip_if_143 "max-args 0 meant unlimited"
	run -1 storage --debug=false layers extra
	[[ "$output" == *"too many arguments"* ]]
}

@test "cleanup-layer: a layer flagged incomplete is deleted by the next load" {
	layer=$(new_layer -n doomed)
	json="$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	[ -f "$json" ]
	sed -i -e 's/"id":/"flags":{"incomplete":true},"id":/g' "$json"
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	run -1 storage exists -l "$layer"
	run -1 storage exists doomed
	# the record is gone from disk, too
	run -0 jq length "$json"
	[ "$output" -eq 0 ]
}

@test "stale-tmpdir: leftover temporary directories and locks are removed on load" {
	skip_if_143 "does not clean stale temporary directories"
	new_layer >/dev/null
	tmp="$TESTDIR/root/${STORAGE_DRIVER}-layers/tmp"
	mkdir -p "$tmp/temp-dir-999999999/sub"
	echo junk >"$tmp/temp-dir-999999999/sub/file"
	touch "$tmp/lock-999999999"
	run -0 storage --debug=false layers
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "$tmp/temp-dir-999999999" ]
	[ ! -e "$tmp/lock-999999999" ]
}

@test "lock files: the last-writer token changes on every write, not on reads" {
	layers_lock="$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.lock"
	images_lock="$TESTDIR/root/${STORAGE_DRIVER}-images/images.lock"
	containers_lock="$TESTDIR/root/${STORAGE_DRIVER}-containers/containers.lock"
	mounts_lock="$TESTDIR/runroot/${STORAGE_DRIVER}-layers/mountpoints.lock"

	layer=$(new_layer)
	t1=$(lock_token "$layers_lock")
	[ -n "$t1" ]
	layer2=$(new_layer)
	t2=$(lock_token "$layers_lock")
	[ "$t1" != "$t2" ]
	# reads leave the token alone
	storage --debug=false layers >/dev/null
	storage --debug=false layer "$layer" >/dev/null
	[ "$(lock_token "$layers_lock")" = "$t2" ]

	storage --debug=false create-image "$layer" >/dev/null
	i1=$(lock_token "$images_lock")
	image=$(new_image -n second "$layer2")
	i2=$(lock_token "$images_lock")
	[ "$i1" != "$i2" ]
	storage --debug=false images >/dev/null
	[ "$(lock_token "$images_lock")" = "$i2" ]

	storage --debug=false create-container second >/dev/null
	c1=$(lock_token "$containers_lock")
	storage --debug=false create-container second >/dev/null
	c2=$(lock_token "$containers_lock")
	[ "$c1" != "$c2" ]

	storage --debug=false mount "$layer" >/dev/null
	m1=$(lock_token "$mounts_lock")
	storage --debug=false mount "$layer" >/dev/null
	m2=$(lock_token "$mounts_lock")
	[ "$m1" != "$m2" ]
	storage --debug=false unmount "$layer" >/dev/null
	m3=$(lock_token "$mounts_lock")
	[ "$m2" != "$m3" ]
	storage --debug=false unmount "$layer" >/dev/null

	# set-names on a layer is a layer-store write
	t3=$(lock_token "$layers_lock")
	storage --debug=false set-names -n renamed "$layer" >/dev/null
	[ "$(lock_token "$layers_lock")" != "$t3" ]
}

@test "lock files: tokens are 64 bytes" {
	new_layer >/dev/null
	[ "$(stat -c %s "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.lock")" -eq 64 ]
}

@test "relative graph and run roots are made absolute" {
	cd "$TESTDIR"
	run -0 "$STORAGE_BINARY" --debug=false --graph rel/deep/root --run ./rel2/deep/run --storage-driver "$STORAGE_DRIVER" create-layer
	layer=${lines[0]}
	[ -d "$TESTDIR/rel/deep/root/${STORAGE_DRIVER}-layers" ]
	[ -d "$TESTDIR/rel2/deep/run" ]
	run -0 "$STORAGE_BINARY" --debug=false --graph "$TESTDIR/rel/deep/root" --run "$TESTDIR/rel2/deep/run" --storage-driver "$STORAGE_DRIVER" layers
	[ "$output" = "$layer" ]
	"$STORAGE_BINARY" --debug=false --graph rel/deep/root --run ./rel2/deep/run --storage-driver "$STORAGE_DRIVER" wipe
	"$STORAGE_BINARY" --debug=false --graph rel/deep/root --run ./rel2/deep/run --storage-driver "$STORAGE_DRIVER" shutdown
}
