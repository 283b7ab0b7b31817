#!/usr/bin/env bats
# gc: removes what nothing references (driver layer dirs without a record,
# orphan big-data dirs and tar-splits, stale temp dirs and temp files) and
# never a record or what a record points to.

load helpers

# The harness's setup, then skip on containers-storage v1.43 (no gc).
eval "$(declare -f setup | sed '1s/^setup/harness_setup/')"
setup() {
	harness_setup
	skip_if_143 "no gc command (main only)"
}

# a small store: layer from a diff, image, container; prints nothing.
populate() {
	createrandom "$TESTDIR/f1" 3000
	(cd "$TESTDIR" && tar cf - f1) >"$TESTDIR/diff"
	layer=$(stowage_q import-layer -f "$TESTDIR/diff")
	image=$(stowage_q create-image "$layer")
	container=$(stowage_q create-container "$image")
}

# snapshot: the records, for comparison before and after gc.
snapshot() {
	stowage_q layers -q | sort
	stowage_q images -q | sort
	stowage_q containers -q | sort
}

@test "gc: a consistent store is left as it is" {
	populate
	before=$(snapshot)
	run stowage_q gc
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	run stowage_q gc -j
	[ "$status" -eq 0 ]
	[ "$output" = '""' ]
	[ "$(snapshot)" = "$before" ]
	run stowage_q check
	[ "$status" -eq 0 ]
}

@test "gc: removes unrecorded driver layers, orphan data, stale temp dirs and files" {
	populate
	before=$(snapshot)
	run stowage_q storage-layers
	if [ "$status" -eq 1 ] && [ "$output" = "driver not supported" ]; then
		skip "driver $STORAGE_DRIVER cannot list its layers"
	fi
	sl=$(stowage_q create-storage-layer)
	d=$TESTDIR/root/${STORAGE_DRIVER}
	for kind in layers images containers; do
		mkdir -p "$d-$kind/0123456789abcdef"
		echo x >"$d-$kind/0123456789abcdef/item"
	done
	echo x >"$d-layers/fedcba9876543210.tar-split.gz"
	echo '[]' >"$d-containers/.tmp-containers.json777"
	mkdir -p "$d-layers/tmp/temp-dir-999999999"
	touch "$d-layers/tmp/lock-999999999"
	run storage gc
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "gc removed $sl" ]]
	[ ! -e "$d-layers/0123456789abcdef" ]
	[ ! -e "$d-images/0123456789abcdef" ]
	[ ! -e "$d-containers/0123456789abcdef" ]
	[ ! -e "$d-layers/fedcba9876543210.tar-split.gz" ]
	[ ! -e "$d-containers/.tmp-containers.json777" ]
	[ ! -e "$d-layers/tmp/temp-dir-999999999" ]
	run stowage_q storage-layers
	[[ ! "$output" =~ "$sl" ]]
	[ "$(snapshot)" = "$before" ]
	run stowage_q check
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	# the layer still exports its diff
	stowage_q diff -u "$layer" | cmp - "$TESTDIR/diff"
}

@test "gc: keeps a driver layer whose record was lost; check -r gives it back" {
	populate
	lj=$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json
	jq -c --arg id "$layer" 'map(select(.id != $id))' "$lj" >"$TESTDIR/l.json"
	cp "$TESTDIR/l.json" "$lj"
	run stowage_q gc
	[ "$status" -eq 0 ]
	run stowage_q storage-layers
	[[ "$output" =~ "$layer" ]]
	run stowage_q check
	[ "$status" -eq 1 ]
	[[ "$output" =~ "layer ${layer}: layer in lower level storage driver not accounted for (repair re-creates its record)" ]]
	run stowage_q check -r
	echo "$output"
	[ "$status" -eq 0 ]
	run stowage_q check
	[ "$status" -eq 0 ]
	stowage_q diff -u "$layer" | cmp - "$TESTDIR/diff"
	run stowage_q images -q
	[ "$output" = "$image" ]
}

@test "gc: refuses a store whose metadata does not decode, and leaves it untouched" {
	populate
	ij=$TESTDIR/root/${STORAGE_DRIVER}-images/images.json
	truncate -s 20 "$ij"
	cp "$ij" "$TESTDIR/damaged"
	run stowage_q gc
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "images.json" ]]
	[[ "$output" =~ "corrupt metadata" ]]
	cmp "$ij" "$TESTDIR/damaged"
}

@test "gc: removes the orphan directories check -r keeps after salvaging a table" {
	populate
	createrandom "$TESTDIR/data"
	stowage_q set-image-data -f "$TESTDIR/data" "$image" item
	ij=$TESTDIR/root/${STORAGE_DRIVER}-images/images.json
	echo garbage >"$ij"
	run stowage_q check -r -f
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "kept the original as $ij.corrupt-" ]]
	# the lost image's data directory is kept (and reported) next to the kept original
	[ -f "$TESTDIR/root/${STORAGE_DRIVER}-images/$image/item" ]
	run stowage_q check
	[ "$status" -eq 1 ]
	[[ "$output" =~ "image ${image}: big-data directory" ]]
	run stowage_q gc
	[ "$status" -eq 0 ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}-images/$image" ]
	run stowage_q check
	echo "$output"
	[ "$status" -eq 0 ]
}
