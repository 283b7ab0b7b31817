#!/usr/bin/env bats
# Store topologies: read-only additional image stores
# (--storage-opt DRIVER.imagestore=DIR) and the split --image-store root.

load helpers

# ro_storage ARGS...: the store that will serve as the read-only image store.
ro_storage() {
	timeout -k 10 300 "$STORAGE_BINARY" --debug=false --graph "$TESTDIR/ro/root" --run "$TESTDIR/ro/runroot" \
		--storage-driver "$STORAGE_DRIVER" "$@"
}

# with_ro ARGS...: this test's store with the read-only store attached.
with_ro() {
	storage --debug=false --storage-opt "$STORAGE_DRIVER.imagestore=$TESTDIR/ro/root" "$@"
}

# make_ro_image: an image "roimg" on a layer holding /rofile in the ro store.
make_ro_image() {
	mkdir -p "$TESTDIR/ro"
	rolayer=$(ro_storage create-layer)
	rolayer=${rolayer%%$'\n'*}
	mnt=$(ro_storage mount "$rolayer")
	echo read-only >"$mnt/rofile"
	ro_storage unmount "$rolayer" >/dev/null
	roimage=$(ro_storage create-image -n roimg "$rolayer")
	roimage=${roimage%%$'\n'*}
	ro_storage shutdown
}

@test "ro image store: layers and images are visible and read-only" {
	make_ro_image
	run -0 with_ro images
	[ "${lines[0]}" = "$roimage" ]
	[ "${lines[1]}" = $'\tname: roimg' ]
	run -0 with_ro layers
	[ "${lines[0]}" = "$rolayer" ]
	run -0 with_ro image roimg
	[[ "$output" == *"Top Layer: $rolayer"* ]]
	[[ "$output" == *"Read Only: true"* ]]
	run -0 with_ro layer "$rolayer"
	[[ "$output" == *"Read Only: true"* ]]
	run -0 with_ro exists -i roimg
	run -0 with_ro exists -l "$rolayer"
	# without the option, the store does not see them
	run -0 storage --debug=false images
	[ "$output" = "" ]
	# layers of the rw store are not read-only
	rw=$(with_ro create-layer)
	run -0 with_ro layer "$rw"
	[[ "$output" != *"Read Only"* ]]
}

@test "ro image store: containers from read-only images" {
	make_ro_image
	container=$(with_ro create-container roimg)
	container=${container%%$'\n'*}
	run -0 with_ro mount "$container"
	mnt=$output
	[ "$(cat "$mnt/rofile")" = read-only ]
	echo rw >"$mnt/written"
	with_ro unmount "$container"
	# the ro store did not change
	run -0 ro_storage containers
	[ "$output" = "" ]
	[ ! -e "$TESTDIR/ro/root/${STORAGE_DRIVER}/dir/$rolayer/written" ]
	run -0 with_ro container "$container"
	[[ "$output" == *"Image: $roimage"* ]]
	run -0 with_ro delete-container "$container"
}

@test "ro image store: read-only records cannot be deleted or modified in place" {
	make_ro_image
	run -1 with_ro delete-image roimg
	run -1 with_ro delete-layer "$rolayer"
	run -0 with_ro exists -i roimg
	run -0 ro_storage images
	[ "${lines[0]}" = "$roimage" ]
}

@test "add-names: ro-images" {
	skip_if_143 "add-names on a read-only image replaced its names"
	make_ro_image
	run -0 with_ro add-names -n extra roimg
	# main's add operation puts the new name first
	run -0 with_ro get-names "$roimage"
	[ "$output" = $'extra\nroimg' ]
	run -0 with_ro images
	[ "$output" = "$roimage"$'\n\tname: extra\n\tname: roimg' ]
	run -0 with_ro image extra
	[ "${lines[0]}" = "ID: $roimage" ]
	[[ "$output" == *"Top Layer: $rolayer"* ]]
	# the record was pulled up into the writable store; the ro store is unchanged
	jq -e --arg i "$roimage" '.[] | select(.id == $i)' "$TESTDIR/root/${STORAGE_DRIVER}-images/images.json"
	run -0 ro_storage images
	[ "$output" = "$roimage"$'\n\tname: roimg' ]
}

@test "remove-names: ro-images" {
	skip_if_143 "no remove-names"
	make_ro_image
	run -0 with_ro add-names -n extra -n more roimg
	run -0 with_ro remove-names -n roimg -n more "$roimage"
	run -0 with_ro get-names "$roimage"
	[ "$output" = extra ]
	run -0 ro_storage get-names "$roimage"
	[ "$output" = roimg ]
}

@test "ro image store: data items of a read-only image stay readable after a pull-up" {
	skip_if_143 "pull-up differs"
	mkdir -p "$TESTDIR/ro"
	createrandom "$TESTDIR/item" 333
	roimage=$(ro_storage create-image -n roimg "")
	roimage=${roimage%%$'\n'*}
	ro_storage set-image-data -f "$TESTDIR/item" roimg item
	ro_storage shutdown
	with_ro get-image-data roimg item | cmp - "$TESTDIR/item"
	with_ro add-names -n pulled roimg
	with_ro get-image-data pulled item | cmp - "$TESTDIR/item"
	run -0 with_ro get-image-data-size pulled item
	[ "$output" = 333 ]
}

@test "split image store: images and read-only layers live in --image-store" {
	skip_if_143 "no --image-store"
	istore="$TESTDIR/imagestore"
	run -0 storage --debug=false --image-store "$istore" create-layer --readonly
	layer=${lines[0]}
	run -0 storage --debug=false --image-store "$istore" create-image -n splitimg "$layer"
	image=${lines[0]}
	[ -f "$istore/${STORAGE_DRIVER}-images/images.json" ]
	jq -e --arg i "$image" '.[] | select(.id == $i)' "$istore/${STORAGE_DRIVER}-images/images.json"
	jq -e --arg l "$layer" '.[] | select(.id == $l)' "$istore/${STORAGE_DRIVER}-layers/layers.json"
	# the read-only layer's driver directory is in the image store too
	[ -d "$istore/${STORAGE_DRIVER}" ]
	if [ "$STORAGE_DRIVER" = vfs ]; then [ -d "$istore/vfs/dir/$layer" ]; fi
	run -0 storage --debug=false --image-store "$istore" images
	[ "${lines[0]}" = "$image" ]
	run -0 storage --debug=false --image-store "$istore" exists -i splitimg
	run -0 storage --debug=false --image-store "$istore" exists -l "$layer"
	# container layers stay in the graph root
	run -0 storage --debug=false --image-store "$istore" create-container splitimg
	container=${lines[0]}
	clayer=$(storage --debug=false --image-store "$istore" container --json "$container" | jq -r '.[0].layer')
	jq -e --arg l "$clayer" '.[] | select(.id == $l)' "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	run -0 storage --debug=false --image-store "$istore" mount "$container"
	run -0 storage --debug=false --image-store "$istore" unmount "$container"
	run -0 storage --debug=false --image-store "$istore" delete-container "$container"
	run -0 storage --debug=false --image-store "$istore" delete-image splitimg
	run -0 storage --debug=false --image-store "$istore" layers
	[ "$output" = "" ]
	storage --debug=false --image-store "$istore" shutdown
}
