#!/usr/bin/env bats
# check, check -r/-f/-m/-q and repair: every situation of the problem-text
# table in ../shared/spec/cli.md §4.8 (the cases upstream's check.bats
# damages on disk), each followed by a repair and a clean re-check; then
# what stowage adds (orphans, temp files, dangling parents, corrupt
# metadata and the re-creation of lost layer records).

load helpers

# The harness's setup, then skip on containers-storage v1.43 (no check).
eval "$(declare -f setup | sed '1s/^setup/harness_setup/')"
setup() {
	harness_setup
	skip_if_143 "no check command (main only)"
}

# ro ARGS...: the store that serves as the read-only image store.
ro() {
	timeout -k 10 300 "$STORAGE_BINARY" --debug=false --graph "$TESTDIR/ro-root" --run "$TESTDIR/ro-runroot" \
		--storage-driver "$STORAGE_DRIVER" "$@"
}

# with_ro ARGS...: this test's store with the read-only store attached.
with_ro() {
	storage --storage-opt "$STORAGE_DRIVER.imagestore=$TESTDIR/ro-root" "$@"
}

# first_line: the ID a create-* command printed.
first_line() { printf '%s\n' "$1" | head -n1; }

# layer_with_diff: a layer holding datafile1 and datafile2 applied from a diff.
layer_with_diff() {
	local l
	l=$(stowage_q create-layer)
	createrandom "$TESTDIR/datafile1" 4096
	createrandom "$TESTDIR/datafile2" 1000
	(cd "$TESTDIR" && tar cf - datafile1 datafile2) >"$TESTDIR/diff"
	stowage_q apply-diff -f "$TESTDIR/diff" "$l" >&2
	echo "$l"
}

# assert_clean ARGS...: check (with ARGS) exits 0 and prints nothing.
assert_clean() {
	run stowage_q check "$@"
	echo "check $*: $output"
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
}

@test "check: a consistent store is clean, plain and JSON" {
	l=$(layer_with_diff)
	img=$(stowage_q create-image "$l")
	stowage_q create-container "$img" >/dev/null
	assert_clean
	assert_clean -q
	run stowage_q check -j
	[ "$status" -eq 0 ]
	for k in Layers ROLayers Images ROImages Containers; do
		[ "$(jq -c ".$k" <<<"$output")" = "{}" ]
	done
}

@test "check: a driver layer the store does not know is reported and removed by -r" {
	run stowage_q storage-layers
	if [ "$status" -eq 1 ] && [ "$output" = "driver not supported" ]; then
		skip "driver $STORAGE_DRIVER cannot list its layers"
	fi
	layer=$(stowage_q create-storage-layer)
	storage create-storage-layer "$layer" >/dev/null
	storage create-storage-layer >/dev/null
	run stowage_q check
	[ "$status" -eq 1 ]
	[[ "$output" =~ "layer ${layer}: layer in lower level storage driver not accounted for" ]]
	[[ "$output" =~ "3 layer errors, 0 read-only layer errors, 0 image errors, 0 read-only image errors, 0 container errors" ]]
	run storage check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: layer in lower level storage driver not accounted for" ]]
	run stowage_q storage-layers
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	assert_clean
}

@test "check: unmanaged layers of a read-only store are not reported" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	l=$(ro create-storage-layer)
	ro create-storage-layer "$l" >/dev/null
	ro shutdown
	l=$(first_line "$(with_ro --debug=false create-layer)")
	with_ro --debug=false create-image "$l" >/dev/null
	run with_ro --debug=false check
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
}

@test "check: unmanaged layers in the read-write store are removed, read-only layers kept" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	rolayer=$(ro create-layer)
	ro create-image "$rolayer" >/dev/null
	ro shutdown
	layer=$(with_ro --debug=false create-storage-layer)
	other=$(with_ro --debug=false create-storage-layer "$layer")
	run with_ro check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: layer in lower level storage driver not accounted for" ]]
	[[ "$output" =~ "layer ${other}: layer in lower level storage driver not accounted for" ]]
	run stowage_q storage-layers
	[ "$output" = "" ]
	run with_ro --debug=false layers -q
	[ "$output" = "$rolayer" ]
}

@test "check: unreferenced layers are reported once older than -m" {
	l=$(stowage_q create-layer)
	layer=$(stowage_q create-layer "$l")
	assert_clean -r
	run storage check -r -m 0
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: layer not referenced by any images or containers" ]]
	[[ "$output" =~ "layer ${l}: layer not referenced by any images or containers" ]]
	run stowage_q layers
	[ "$output" = "" ]
}

@test "check: unreferenced layers of a read-only store are not reported" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	rolayer=$(ro create-layer)
	ro create-layer "$rolayer" >/dev/null
	ro shutdown
	layer=$(first_line "$(with_ro --debug=false create-layer)")
	with_ro --debug=false create-image "$layer" >/dev/null
	run with_ro --debug=false check -m 0
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
}

@test "check: unreferenced read-write layers are removed, the read-only one stays" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	rolayer=$(ro create-layer)
	ro create-image "$rolayer" >/dev/null
	ro shutdown
	layer=$(with_ro --debug=false create-layer)
	other=$(with_ro --debug=false create-layer "$layer")
	run with_ro --debug=false check -r
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	run with_ro check -r -m 0
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer $layer: layer not referenced by any images or containers" ]]
	[[ "$output" =~ "layer $other: layer not referenced by any images or containers" ]]
	run with_ro --debug=false layers -q
	[ "$output" = "$rolayer" ]
}

@test "check: a file of a layer changed after its diff was applied" {
	layer=$(layer_with_diff)
	stowage_q create-image "$layer" >/dev/null
	createrandom "$TESTDIR/datafile3" 4096
	stowage_q copy "$TESTDIR/datafile3" "$layer:/datafile1"
	# -q still re-reads the diff (upstream's quick check verifies digests)
	run stowage_q check -q
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "layer ${layer}: layer content incorrect digest" ]] || [[ "$output" =~ "layer ${layer}: file integrity checksum failed" ]]
	run storage check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: layer content incorrect digest" ]] || [[ "$output" =~ "layer ${layer}: file integrity checksum failed" ]]
	run stowage_q images
	[ "$output" = "" ]
	run stowage_q layers
	[ "$output" = "" ]
	assert_clean
}

@test "check: a changed file of a read-only layer is reported, not repaired" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	rolayer=$(ro create-layer)
	createrandom "$TESTDIR/datafile1" 4096
	createrandom "$TESTDIR/datafile2" 100
	(cd "$TESTDIR" && tar cf - datafile1 datafile2) >"$TESTDIR/diff"
	ro apply-diff -f "$TESTDIR/diff" "$rolayer"
	createrandom "$TESTDIR/datafile3" 4096
	ro copy "$TESTDIR/datafile3" "$rolayer:/datafile1"
	ro create-image "$rolayer" >/dev/null
	ro shutdown
	rw=$(with_ro --debug=false create-layer)
	with_ro --debug=false create-image "$rw" >/dev/null
	run with_ro check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "layer ${rolayer}: layer content incorrect digest" ]] || [[ "$output" =~ "layer ${rolayer}: file integrity checksum failed" ]]
	[[ "$output" =~ "read-only layer ${rolayer}:" ]]
	[[ "$output" =~ "1 read-only layer errors, 1 read-only image errors" ]]
	assert_clean
}

@test "check: a file added to a layer that came from a diff" {
	layer=$(layer_with_diff)
	createrandom "$TESTDIR/datafile3"
	stowage_q copy "$TESTDIR/datafile3" "$layer:/datafile3"
	stowage_q create-image "$layer" >/dev/null
	# -q does not compare the layer's files with its diff
	assert_clean -q
	run storage check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: +/datafile3, layer content modified" ]]
	assert_clean
}

@test "check: an image whose top layer was deleted" {
	layer=$(stowage_q create-layer)
	image=$(stowage_q create-image "$layer")
	stowage_q delete "$layer"
	run stowage_q check
	[ "$status" -eq 1 ]
	[[ "$output" =~ "image ${image}: layer ${layer}: image layer is missing" ]]
	[[ "$output" =~ "0 layer errors, 0 read-only layer errors, 1 image errors, 0 read-only image errors, 0 container errors" ]]
	run storage check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "image ${image}: layer ${layer}: image layer is missing" ]]
	assert_clean
}

@test "check: a read-only image whose layer was deleted cannot be repaired" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	layer=$(ro create-layer)
	image=$(ro create-image "$layer")
	ro delete "$layer"
	ro shutdown
	rw=$(with_ro --debug=false create-layer)
	with_ro --debug=false create-image "$rw" >/dev/null
	run with_ro check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "image ${image}: layer ${layer}: image layer is missing" ]]
	[[ "$output" =~ "read-only image ${image}:" ]]
	assert_clean
}

@test "check: a container whose image was deleted is removed only with -f" {
	layer=$(stowage_q create-layer)
	image=$(stowage_q create-image "$layer")
	container=$(stowage_q create-container "$image")
	stowage_q delete "$image"
	run storage check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "container ${container}:" ]]
	[[ "$output" =~ "image ${image}: image missing" ]]
	[[ "$output" =~ "0 read-only layer errors, 0 read-only image errors, 1 container errors" ]]
	run storage check
	[ "$status" -ne 0 ]
	[[ "$output" =~ "image ${image}: image missing" ]]
	run stowage_q containers
	[ "$output" = "$container" ]
	run storage check -r -f
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "container ${container}:" ]]
	[[ "$output" =~ "image ${image}: image missing" ]]
	run stowage_q containers
	[ "$output" = "" ]
	# the image's layer is intact: kept
	run stowage_q layers
	[ "$output" = "$layer" ]
	assert_clean
}

@test "check: a container on a read-only image that was deleted" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	layer=$(ro create-layer)
	image=$(ro create-image "$layer")
	ro shutdown
	container=$(with_ro --debug=false create-container "$image")
	clayer=$(with_ro --debug=false container "$container" | awk '/^Layer:/ {print $2}')
	[ -n "$clayer" ]
	ro delete "$layer"
	ro delete "$image"
	ro shutdown
	run with_ro check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "container ${container}:" ]]
	[[ "$output" =~ "image ${image}: image missing" ]]
	[[ "$output" =~ "layer ${clayer} used by container ${container}: layer is in use by a container" ]]
	run with_ro check
	[ "$status" -ne 0 ]
	[[ "$output" =~ "image ${image}: image missing" ]]
	run with_ro check -r -f
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "container ${container}:" ]]
	run with_ro --debug=false check
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
}

@test "check: a layer's data item deleted" {
	layer=$(stowage_q create-layer)
	stowage_q create-image "$layer" >/dev/null
	createrandom "$TESTDIR/datafile"
	stowage_q set-layer-data -f "$TESTDIR/datafile" "$layer" datafile
	assert_clean
	rm -f "$TESTDIR/root/${STORAGE_DRIVER}-layers/$layer/datafile"
	run storage check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "layer ${layer}: data item \"datafile\": layer data item is missing" ]]
	assert_clean
	run stowage_q layers
	[ "$output" = "" ]
}

@test "check: a read-only layer's data item deleted" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	layer=$(ro create-layer)
	ro create-image "$layer" >/dev/null
	createrandom "$TESTDIR/datafile"
	ro set-layer-data -f "$TESTDIR/datafile" "$layer" datafile
	ro shutdown
	rw=$(with_ro --debug=false create-layer)
	with_ro --debug=false create-image "$rw" >/dev/null
	run with_ro --debug=false check
	[ "$status" -eq 0 ]
	rm -f "$TESTDIR/ro-root/${STORAGE_DRIVER}-layers/$layer/datafile"
	run with_ro check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "layer ${layer}: data item \"datafile\": layer data item is missing" ]]
	run with_ro check
	[ "$status" -ne 0 ]
	[[ "$output" =~ "layer ${layer}: data item \"datafile\": layer data item is missing" ]]
	assert_clean
}

@test "check: an image's data item deleted, then one grown" {
	for damage in delete grow; do
		layer=$(stowage_q create-layer)
		image=$(stowage_q create-image "$layer")
		createrandom "$TESTDIR/datafile"
		stowage_q set-image-data -f "$TESTDIR/datafile" "$image" datafile
		assert_clean
		f="$TESTDIR/root/${STORAGE_DRIVER}-images/$image/datafile"
		if [ $damage = delete ]; then rm -f "$f"; want="image data item is missing"; else echo "" >>"$f"; want="image data item has incorrect size"; fi
		run storage check -r
		echo "$output"
		[ "$status" -eq 0 ]
		[[ "$output" =~ "image ${image}: data item \"datafile\": $want" ]]
		assert_clean
		# only the image record went; its layer is intact
		run stowage_q layers
		[ "$output" = "$layer" ]
		stowage_q delete-layer "$layer"
	done
}

@test "check: a read-only image's data item deleted or grown" {
	mkdir -p "$TESTDIR/ro-root" "$TESTDIR/ro-runroot"
	layer=$(ro create-layer)
	image=$(ro create-image "$layer")
	createrandom "$TESTDIR/datafile"
	ro set-image-data -f "$TESTDIR/datafile" "$image" datafile
	ro set-image-data -f "$TESTDIR/datafile" "$image" datafile2
	run ro check
	[ "$status" -eq 0 ]
	ro shutdown
	rw=$(with_ro --debug=false create-layer)
	with_ro --debug=false create-image "$rw" >/dev/null
	rm -f "$TESTDIR/ro-root/${STORAGE_DRIVER}-images/$image/datafile"
	echo "" >>"$TESTDIR/ro-root/${STORAGE_DRIVER}-images/$image/datafile2"
	run with_ro check -r
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" =~ "image ${image}: data item \"datafile\": image data item is missing" ]]
	[[ "$output" =~ "image ${image}: data item \"datafile2\": image data item has incorrect size" ]]
	run with_ro check
	[ "$status" -ne 0 ]
	assert_clean
}

@test "check: a container's data item deleted, then one grown" {
	for damage in delete grow; do
		container=$(stowage_q create-container "")
		createrandom "$TESTDIR/datafile"
		stowage_q set-container-data -f "$TESTDIR/datafile" "$container" datafile
		assert_clean
		f="$TESTDIR/root/${STORAGE_DRIVER}-containers/$container/datafile"
		if [ $damage = delete ]; then rm -f "$f"; want="container data item is missing"; else echo "" >>"$f"; want="container data item has incorrect size"; fi
		run storage check -r
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" =~ "container ${container}: data item \"datafile\": $want" ]]
		run storage check
		[ "$status" -ne 0 ]
		[[ "$output" =~ "container ${container}: data item \"datafile\": $want" ]]
		run storage check -r -f
		echo "$output"
		[ "$status" -eq 0 ]
		[[ "$output" =~ "container ${container}: data item \"datafile\": $want" ]]
		assert_clean
	done
}

@test "check: -j report keys and exit status" {
	layer=$(stowage_q create-layer)
	image=$(stowage_q create-image "$layer")
	stowage_q delete "$layer"
	run stowage_q check -j
	[ "$status" -eq 1 ]
	json=$(printf '%s\n' "$output" | head -n1)
	[ "$(jq -r '.Images | keys[0]' <<<"$json")" = "$image" ]
	[ "$(jq -c ".Images[\"$image\"]" <<<"$json")" = "[{}]" ]
	[ "$(jq -c '.Layers' <<<"$json")" = "{}" ]
	run stowage_q repair -j
	[ "$status" -eq 0 ]
	assert_clean
}

@test "check: a layer whose parent record is gone, and its descendants" {
	base=$(stowage_q create-layer)
	mid=$(stowage_q create-layer "$base")
	top=$(stowage_q create-layer "$mid")
	stowage_q create-image "$top" >/dev/null
	# drop the base layer's record only (its driver dir stays)
	jq -c --arg id "$base" 'map(select(.id != $id))' "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json" >"$TESTDIR/l.json"
	cp "$TESTDIR/l.json" "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	run stowage_q check
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "layer ${mid}:"$'\n'" layer ${base}: layer is missing" ]]
	[[ "$output" =~ "layer ${top}:"$'\n'" layer ${mid}: parent layer is damaged" ]]
	[[ "$output" =~ "layer ${base}: layer in lower level storage driver not accounted for" ]]
	run stowage_q check -r
	echo "$output"
	[ "$status" -eq 0 ]
	assert_clean
	run stowage_q layers
	[ "$output" = "" ]
	run stowage_q storage-layers
	[ "$output" = "" ]
}

@test "check: orphan big-data directories and leftover temp files" {
	layer=$(stowage_q create-layer)
	image=$(stowage_q create-image "$layer")
	stowage_q create-container "$image" >/dev/null
	for kind in layers images containers; do
		mkdir -p "$TESTDIR/root/${STORAGE_DRIVER}-$kind/0123456789abcdef/sub"
		echo x >"$TESTDIR/root/${STORAGE_DRIVER}-$kind/0123456789abcdef/sub/f"
	done
	echo '[]' >"$TESTDIR/root/${STORAGE_DRIVER}-images/.tmp-images.json123"
	run stowage_q check
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "layer 0123456789abcdef: big-data directory $TESTDIR/root/${STORAGE_DRIVER}-layers/0123456789abcdef not accounted for by any record" ]]
	[[ "$output" =~ "image 0123456789abcdef: big-data directory" ]]
	[[ "$output" =~ "container 0123456789abcdef: big-data directory" ]]
	[[ "$output" =~ ".tmp-images.json123: leftover temporary file" ]]
	[[ "$output" =~ ", 1 store file errors" ]]
	run stowage_q check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}-images/0123456789abcdef" ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}-images/.tmp-images.json123" ]
	assert_clean
	run stowage_q containers
	[ "$(wc -l <<<"$output")" -eq 1 ]
}

@test "check: truncated layers.json is explained, salvaged, and lost layers get their record back" {
	l1=$(layer_with_diff)
	l2=$(stowage_q import-layer -f "$TESTDIR/diff" "$l1")
	img=$(stowage_q create-image "$l2")
	lj="$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	before=$(sha256sum <"$lj")
	size=$(stat -c %s "$lj")
	truncate -s $((size - 40)) "$lj"
	cp "$lj" "$TESTDIR/damaged.json"
	run stowage_q layers
	[ "$status" -ne 0 ]
	[[ "$output" =~ "layers.json" ]]
	[[ "$output" =~ "corrupt metadata" ]]
	run stowage_q check
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "file $lj:" ]]
	[[ "$output" =~ "$lj: " ]]
	[[ "$output" =~ "corrupt metadata" ]]
	[[ "$output" =~ "0 container errors, 1 store file errors" ]]
	# check never writes the damaged file
	cmp "$lj" "$TESTDIR/damaged.json"
	run stowage_q check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "kept the original as $lj.corrupt-" ]]
	[[ "$output" =~ "layer ${l2}: layer in lower level storage driver not accounted for: its record was re-created" ]]
	cmp "$TESTDIR/damaged.json" "$lj".corrupt-*
	assert_clean
	run stowage_q layers
	[[ "$output" =~ "$l1" ]]
	[[ "$output" =~ "$l2" ]]
	run stowage_q images
	[ "$output" = "$img" ]
	# the re-created layer still gives its original diff
	stowage_q diff -u "$l2" | cmp - "$TESTDIR/diff"
}

@test "check: garbage images.json is explained and salvaged, the original kept" {
	l=$(stowage_q create-layer)
	i1=$(stowage_q create-image "$l")
	i2=$(stowage_q create-image "$l")
	ij="$TESTDIR/root/${STORAGE_DRIVER}-images/images.json"
	# damage the second record only
	sed -i "s/\"id\":\"$i2\"/\"id\":$i2/" "$ij"
	cp "$ij" "$TESTDIR/damaged.json"
	run stowage_q check
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" =~ "$ij: at byte offset" ]]
	cmp "$ij" "$TESTDIR/damaged.json"
	run stowage_q check -r
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ "saved the 1 records that still decode" ]]
	cmp "$TESTDIR/damaged.json" "$ij".corrupt-*
	run stowage_q images
	[ "$output" = "$i1" ]
}
