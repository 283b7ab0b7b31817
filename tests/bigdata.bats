#!/usr/bin/env bats
# list/get/set of data items on images, containers and layers, their size
# and digest, and on-disk placement.

load helpers

# check_items KIND OBJ: the common data-item checks for one object.
check_items() {
	local kind=$1 obj=$2
	run -0 storage --debug=false list-$kind-data "$obj"
	[ "$output" = "" ]
	createrandom "$TESTDIR/big-item-1" 1234
	createrandom "$TESTDIR/big-item-2" 4321
	run -0 storage --debug=false set-$kind-data -f "$TESTDIR/big-item-1" "$obj" big-item-1
	[ "$output" = "" ]
	run -0 storage --debug=false set-$kind-data "$obj" big-item-2 <"$TESTDIR/big-item-2"
	[ "$output" = "" ]
	run -0 storage --debug=false list-$kind-data "$obj"
	[ "$output" = $'big-item-1\nbig-item-2' ]
	storage --debug=false get-$kind-data "$obj" big-item-1 >"$TESTDIR/got-1"
	cmp "$TESTDIR/big-item-1" "$TESTDIR/got-1"
	storage --debug=false get-$kind-data -f "$TESTDIR/got-2" "$obj" big-item-2
	cmp "$TESTDIR/big-item-2" "$TESTDIR/got-2"
	# replacing an item keeps the order and changes the content
	createrandom "$TESTDIR/big-item-1b" 99
	storage --debug=false set-$kind-data -f "$TESTDIR/big-item-1b" "$obj" big-item-1
	storage --debug=false get-$kind-data "$obj" big-item-1 | cmp - "$TESTDIR/big-item-1b"
	run -0 storage --debug=false list-$kind-data "$obj"
	[ "$output" = $'big-item-1\nbig-item-2' ]
	# unknown keys
	run -1 storage --debug=false get-$kind-data "$obj" nosuch
	# images and layers say "file does not exist"; v1.43 containers pass
	# the open error through
	[[ "$output" == *"does not exist"* || "$output" == *"no such file or directory"* ]]
	# the empty key is rejected
	run -1 storage --debug=false set-$kind-data -f "$TESTDIR/big-item-1" "$obj" ""
	[[ "$output" == *"not a valid name for a big data item"* ]]
	# JSON list
	run -0 storage --debug=false list-$kind-data --json "$obj"
	[ "$(jq -c . <<<"$output")" = '["big-item-1","big-item-2"]' ]
}

@test "bigdata: image items" {
	image=$(new_image "")
	check_items image "$image"
	run -0 storage --debug=false get-image-data-size "$image" big-item-2
	[ "$output" = 4321 ]
	run -0 storage --debug=false get-image-data-digest "$image" big-item-2
	[ "$output" = "sha256:$(sha256sum <"$TESTDIR/big-item-2" | cut -d' ' -f1)" ]
	run -1 storage --debug=false get-image-data-size "$image" nosuch
	[[ "$output" == *"size is not known"* ]]
	run -1 storage --debug=false get-image-data-digest "$image" nosuch
	[[ "$output" == *"could not compute digest of item"* ]]
	# stored as a file named after the key in the image's directory
	cmp "$TESTDIR/big-item-2" "$TESTDIR/root/${STORAGE_DRIVER}-images/$image/$(bigdata_filename big-item-2)"
	# JSON records
	run -0 storage --debug=false image --json "$image"
	[ "$(jq -c '.[0]["big-data-names"]' <<<"$output")" = '["big-item-1","big-item-2"]' ]
	[ "$(jq -r '.[0]["big-data-sizes"]["big-item-2"]' <<<"$output")" = 4321 ]
	[ "$(jq -r '.[0]["big-data-digests"]["big-item-2"]' <<<"$output")" = "sha256:$(sha256sum <"$TESTDIR/big-item-2" | cut -d' ' -f1)" ]
}

@test "bigdata: container items" {
	image=$(new_image "")
	container=$(new_container "$image")
	check_items container "$container"
	run -0 storage --debug=false get-container-data-size "$container" big-item-2
	[ "$output" = 4321 ]
	run -0 storage --debug=false get-container-data-digest "$container" big-item-2
	[ "$output" = "sha256:$(sha256sum <"$TESTDIR/big-item-2" | cut -d' ' -f1)" ]
	run -1 storage --debug=false get-container-data-size "$container" nosuch
	run -1 storage --debug=false get-container-data-digest "$container" nosuch
	cmp "$TESTDIR/big-item-2" "$TESTDIR/root/${STORAGE_DRIVER}-containers/$container/$(bigdata_filename big-item-2)"
	run -0 storage --debug=false container "$container"
	[[ "$output" == *$'\nData: big-item-1\nData: big-item-2'* ]]
	run -0 storage --debug=false containers
	[ "$output" = "$container"$'\n\tdata: big-item-1\n\tdata: big-item-2' ]
}

@test "bigdata: layer items" {
	layer=$(new_layer)
	check_items layer "$layer"
	cmp "$TESTDIR/big-item-2" "$TESTDIR/root/${STORAGE_DRIVER}-layers/$layer/$(bigdata_filename big-item-2)"
	run -0 storage --debug=false layer --json "$layer"
	[ "$(jq -c '.[0]["big-data-names"]' <<<"$output")" = '["big-item-1","big-item-2"]' ]
}

@test "bigdata: keys outside [a-z0-9.] are stored base64-encoded" {
	image=$(new_image "")
	createrandom "$TESTDIR/item" 10
	storage --debug=false set-image-data -f "$TESTDIR/item" "$image" "Some/Key"
	enc="=$(printf '%s' "Some/Key" | base64)"
	cmp "$TESTDIR/item" "$TESTDIR/root/${STORAGE_DRIVER}-images/$image/$enc"
	storage --debug=false get-image-data "$image" "Some/Key" | cmp - "$TESTDIR/item"
	run -0 storage --debug=false list-image-data "$image"
	[ "$output" = "Some/Key" ]
}

@test "bigdata: unknown objects" {
	run -1 storage --debug=false get-image-data nosuch key
	[[ "$output" == *"image not known"* ]]
	run -1 storage --debug=false list-image-data nosuch
	[[ "$output" == *"image not known"* ]]
	createrandom "$TESTDIR/item" 10
	run -1 storage --debug=false set-image-data -f "$TESTDIR/item" nosuch key
	[[ "$output" == *"image not known"* ]]
	run -1 storage --debug=false get-container-data nosuch key
	[[ "$output" == *"container not known"* ]]
	run -1 storage --debug=false list-layer-data nosuch
	[[ "$output" == *"layer not known"* ]]
}

@test "bigdata: images keep their items by name" {
	image=$(new_image -n named "")
	createrandom "$TESTDIR/item" 300
	storage --debug=false set-image-data -f "$TESTDIR/item" named item
	storage --debug=false get-image-data named item | cmp - "$TESTDIR/item"
	run -0 storage --debug=false get-image-data-size named item
	[ "$output" = 300 ]
}
