#!/usr/bin/env bats
# delete, delete-layer, delete-image, delete-container, wipe, exists.

load helpers

@test "exists: any kind without a filter, the kind filter sets the status" {
	layer=$(new_layer -n lname)
	image=$(new_image -n iname "$layer")
	container=$(new_container -n cname "$image")
	run -0 storage --debug=false exists "$layer" "$image" "$container"
	[[ "$output" == *"$layer: true"* ]]
	[[ "$output" == *"$image: true"* ]]
	[[ "$output" == *"$container: true"* ]]
	run -0 storage --debug=false exists lname iname cname
	run -0 storage --debug=false exists -l "$layer"
	run -0 storage --debug=false exists -i iname
	run -0 storage --debug=false exists -c cname
	# wrong kind: still printed as existing, but exit 1
	run -1 storage --debug=false exists -i "$container"
	[[ "$output" == *"$container: true"* ]]
	run -1 storage --debug=false exists -c "$layer"
	run -1 storage --debug=false exists -l "$image"
	# missing
	run -1 storage --debug=false exists nosuch
	[[ "$output" == *"nosuch: false"* ]]
	run -1 storage --debug=false exists "$layer" nosuch
	# quiet
	run -0 storage --debug=false exists -q "$layer"
	[ "$output" = "" ]
	run -1 storage --debug=false exists -q nosuch
	[ "$output" = "" ]
	# JSON
	run -1 storage --debug=false exists --json "$image" nosuch
	[ "$(jq -c --arg i "$image" '.[$i]' <<<"$output")" = true ]
	[ "$(jq -c '.nosuch' <<<"$output")" = false ]
}

@test "delete-layer: refuses layers with children and layers in use" {
	base=$(new_layer)
	child=$(new_layer "$base")
	run -1 storage --debug=false delete-layer "$base"
	[[ "$output" == *"$base: "*"layer has children"* ]]
	top=$(new_layer)
	image=$(new_image "$top")
	run -1 storage --debug=false delete-layer "$top"
	[[ "$output" == *"layer is in use by an image"* ]]
	container=$(new_container "$image")
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	run -1 storage --debug=false delete-layer "$clayer"
	[[ "$output" == *"layer is in use by a container"* ]]
	run -1 storage --debug=false delete-layer nosuch
	[[ "$output" == *"nosuch: identifier is not a layer"* ]]
	# all of them are still there
	run -0 storage exists -l "$base" "$child" "$top" "$clayer"
	# a leaf nobody uses can go
	run -0 storage --debug=false delete-layer "$child"
	[ "$output" = "" ]
	run -1 storage exists -l "$child"
	run -0 storage --debug=false delete-layer "$base"
	[ ! -e "$TESTDIR/root/vfs/dir/$base" ]
}

@test "delete-layer: resolves names before the safety checks" {
	skip_if_143 "v1.43 compared the raw name and bypassed the checks"
	base=$(new_layer -n basename)
	new_layer "$base" >/dev/null
	run -1 storage --debug=false delete-layer basename
	[[ "$output" == *"layer has children"* ]]
	run -0 storage exists -l basename
}

@test "delete-image: refuses images in use, removes the unused layer chain" {
	base=$(new_layer)
	top=$(new_layer "$base")
	image=$(new_image -n img "$top")
	container=$(new_container "$image")
	run -1 storage --debug=false delete-image img
	[[ "$output" == *"img: "*"image is in use by a container"* ]]
	run -0 storage exists -i img
	storage --debug=false delete-container "$container"
	# --test only checks
	run -0 storage --debug=false delete-image --test img
	run -0 storage exists -i img
	run -0 storage --debug=false delete-image img
	[[ "$output" == *"img: $top"* ]]
	[[ "$output" == *"img: $base"* ]]
	run -1 storage exists -i "$image"
	run -1 storage exists -l "$top"
	run -1 storage exists -l "$base"
	run -0 storage --debug=false layers
	[ "$output" = "" ]
}

@test "delete-image: keeps layers another image still uses" {
	base=$(new_layer)
	top=$(new_layer "$base")
	i1=$(new_image "$top")
	i2=$(new_image "$base")
	run -0 storage --debug=false delete-image "$i1"
	[[ "$output" == *"$i1: $top"* ]]
	[[ "$output" != *"$base"* ]]
	run -0 storage exists -l "$base"
	run -1 storage --debug=false delete-image nosuch
}

@test "delete-image: JSON reports the deleted layers" {
	top=$(new_layer)
	image=$(new_image "$top")
	run -0 storage --debug=false delete-image --json "$image"
	[ "$(jq -r --arg i "$image" '.[$i]["deleted-layers"][0]' <<<"$output")" = "$top" ]
}

@test "delete-container: removes the container and its layer" {
	image=$(new_image "")
	container=$(new_container -n ctr "$image")
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	run -1 storage --debug=false delete-container nosuch
	[[ "$output" == *"nosuch: identifier is not a container"* ]]
	run -0 storage --debug=false delete-container ctr
	[ "$output" = "" ]
	run -1 storage exists -c "$container"
	run -1 storage exists -l "$clayer"
	run -0 storage exists -i "$image"
}

@test "delete: removes anything, without safety checks" {
	base=$(new_layer)
	child=$(new_layer "$base")
	image=$(new_image "$child")
	container=$(new_container "$image")
	run -0 storage --debug=false delete "$container"
	run -1 storage exists "$container"
	run -0 storage --debug=false delete "$image"
	run -1 storage exists "$image"
	run -0 storage --debug=false delete "$child"
	run -1 storage exists "$child"
	run -1 storage --debug=false delete nosuch
	[[ "$output" == *"nosuch: "*"not known"* ]]
	run -0 storage --debug=false delete --json "$base"
	[ "$(jq -c --arg b "$base" '.[$b]' <<<"$output")" = '""' ]
}

@test "wipe: removes everything and prints nothing" {
	layer=$(new_layer)
	image=$(new_image "$layer")
	new_container "$image" >/dev/null
	storage --debug=false mount "$layer" >/dev/null
	storage --debug=false unmount "$layer" >/dev/null
	run -0 storage --debug=false wipe
	[ "$output" = "" ]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	run -0 storage --debug=false images
	[ "$output" = "" ]
	run -0 storage --debug=false containers
	[ "$output" = "" ]
	run -0 storage --debug=false wipe --json
	[ "$output" = '""' ]
}
