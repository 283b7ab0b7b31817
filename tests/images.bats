#!/usr/bin/env bats
# create-image, images, image, images-by-digest, image size.

load helpers

@test "images: empty store prints nothing" {
	run -0 storage --debug=false images
	[ "$output" = "" ]
}

@test "create-image: prints exactly the ID and is listed" {
	layer=$(new_layer)
	run -0 storage --debug=false create-image "$layer"
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	image=$output
	run -0 storage --debug=false images
	[ "$output" = "$image" ]
	run -0 storage --debug=false images -q
	[ "$output" = "$image" ]
	run -0 storage --debug=false image "$image"
	[ "${lines[0]}" = "ID: $image" ]
	[[ "$output" == *"Top Layer: $layer"* ]]
	run -0 storage exists -i "$image"
}

@test "create-image: names, digest, metadata and the image command" {
	digest=sha256:$(echo digest-source | sha256sum | cut -d' ' -f1)
	run -0 storage --debug=false create-image -n first --name second -d "$digest" -m some-metadata ""
	image=${lines[0]}
	[ "${lines[1]}" = $'\tfirst' ]
	[ "${lines[2]}" = $'\tsecond' ]
	run -0 storage --debug=false images
	[ "$output" = "$image"$'\n\tname: first\n\tname: second\n\tdigest: '"$digest" ]
	run -0 storage --debug=false image second
	[ "${lines[0]}" = "ID: $image" ]
	[[ "$output" == *$'\nName: first\nName: second\n'* ]]
	[[ "$output" == *$'\nTop Layer: \n'* ]]
	[[ "$output" == *"Digest: $digest"* ]]
	[[ "$output" == *"Size: 0"* ]]
	[[ "$output" != *"Read Only"* ]]
	run -0 storage --debug=false image --json first
	[ "$(jq -r '.[0].id' <<<"$output")" = "$image" ]
	[ "$(jq -r '.[0].digest' <<<"$output")" = "$digest" ]
	[ "$(jq -r '.[0].metadata' <<<"$output")" = some-metadata ]
	[ "$(jq -r '.[0].layer // ""' <<<"$output")" = "" ]
	run -0 storage --debug=false metadata -q "$image"
	[ "$output" = some-metadata ]
}

@test "create-image: metadata from a file" {
	printf 'from a file\n' >"$TESTDIR/meta"
	image=$(new_image -f "$TESTDIR/meta" "")
	run -0 storage --debug=false metadata -q "$image"
	[ "$output" = "from a file" ]
}

@test "create-image: errors for a taken name, a taken ID and an unknown layer" {
	image=$(new_image -n taken "")
	run -1 storage --debug=false create-image -n taken ""
	[[ "$output" == *"that name is already in use"* ]]
	run -1 storage --debug=false create-image --id "$image" ""
	[[ "$output" == *"already in use"* ]]
	run -1 storage --debug=false create-image nosuchlayer
	[[ "$output" == *"layer not known"* ]]
	run -0 storage --debug=false images -q
	[ "$output" = "$image" ]
}

@test "image: unknown argument exits 1" {
	image=$(new_image "")
	run -1 storage --debug=false image nosuch
	run -1 storage --debug=false image "$image" nosuch
	[ "${lines[0]}" = "ID: $image" ]
}

@test "image: Size of a layerless image with two 256-byte items is 512" {
	image=$(new_image "")
	createrandom "$TESTDIR/one" 256
	createrandom "$TESTDIR/two" 256
	storage --debug=false set-image-data -f "$TESTDIR/one" "$image" random1
	storage --debug=false set-image-data -f "$TESTDIR/two" "$image" random2
	run -0 storage --debug=false image "$image"
	[[ "$output" == *$'\nSize: 512'* ]]
	[[ "$output" == *$'\nData: random1\nData: random2\n'* ]]
	run -0 storage --debug=false images
	[ "$output" = "$image"$'\n\tdata: random1\n\tdata: random2' ]
}

@test "image: Size adds the diff sizes of all layers reachable from the top layer" {
	make_tar "$TESTDIR/layer.tar"
	lower=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	upper=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar" "$lower")
	image=$(new_image "$upper")
	size=$(stat -c %s "$TESTDIR/layer.tar")
	run -0 storage --debug=false image "$image"
	[[ "$output" == *"Size: $((2 * size))"* ]]
	createrandom "$TESTDIR/item" 100
	storage --debug=false set-image-data -f "$TESTDIR/item" "$image" item
	run -0 storage --debug=false image "$image"
	[[ "$output" == *"Size: $((2 * size + 100))"* ]]
}

@test "images-by-digest: creation digest and manifest items" {
	d1=sha256:$(echo one | sha256sum | cut -d' ' -f1)
	d2=sha256:$(echo two | sha256sum | cut -d' ' -f1)
	i1=$(new_image -d "$d1" "")
	i2=$(new_image -d "$d2" "")
	run -0 storage --debug=false images-by-digest --quiet "$d1"
	[ "$output" = "$i1" ]
	run -0 storage --debug=false images-by-digest -q "$d2"
	[ "$output" = "$i2" ]
	d3=sha256:$(echo three | sha256sum | cut -d' ' -f1)
	run -0 storage --debug=false images-by-digest -q "$d3"
	[ "$output" = "" ]
	# a manifest item adds its sha256 to the image's digests
	printf '{"schemaVersion":2}' >"$TESTDIR/manifest"
	md=sha256:$(sha256sum <"$TESTDIR/manifest" | cut -d' ' -f1)
	storage --debug=false set-image-data -f "$TESTDIR/manifest" "$i2" manifest
	run -0 storage --debug=false images-by-digest -q "$md"
	[ "$output" = "$i2" ]
	run -0 storage --debug=false image "$i2"
	[[ "$output" == *"Digest: $d2"* ]]
	[[ "$output" == *"Digest: $md"* ]]
	# the image is still found by its creation digest
	run -0 storage --debug=false images-by-digest -q "$d2"
	[ "$output" = "$i2" ]
	# plain output has the images format
	run -0 storage --debug=false images-by-digest "$d1"
	[ "$output" = "$i1"$'\n\tdigest: '"$d1" ]
	# an invalid digest is an error
	run -1 storage --debug=false images-by-digest not-a-digest
}

@test "images: JSON output" {
	image=$(new_image -n json-image "")
	run -0 storage --debug=false images --json
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r '.[0].id' <<<"$output")" = "$image" ]
	[ "$(jq -r '.[0].names[0]' <<<"$output")" = json-image ]
}
