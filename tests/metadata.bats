#!/usr/bin/env bats
# metadata, set-metadata.

load helpers

@test "metadata: set and read back on layers, images and containers" {
	layer=$(new_layer)
	image=$(new_image -m image-meta "$layer")
	container=$(new_container -m container-meta "$image")
	run -0 storage --debug=false set-metadata -m layer-meta "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false metadata "$layer" "$image" "$container"
	[ "${lines[0]}" = "$layer: layer-meta" ]
	[ "${lines[1]}" = "$image: image-meta" ]
	[ "${lines[2]}" = "$container: container-meta" ]
	run -0 storage --debug=false metadata -q "$container"
	[ "$output" = container-meta ]
	storage --debug=false set-metadata -m changed "$container"
	run -0 storage --debug=false metadata --quiet "$container"
	[ "$output" = changed ]
}

@test "metadata: one trailing newline from a file is trimmed on output" {
	image=$(new_image "")
	printf 'danger\n' >"$TESTDIR/meta"
	storage --debug=false set-metadata -f "$TESTDIR/meta" "$image"
	run -0 storage --debug=false metadata -q "$image"
	[ "$output" = danger ]
	storage --debug=false metadata -q "$image" | cmp - "$TESTDIR/meta"
}

@test "metadata: unknown objects print an empty value and exit 1" {
	image=$(new_image -m m "")
	run -1 storage --debug=false metadata nosuch "$image"
	[ "${lines[0]}" = "nosuch: " ]
	[ "${lines[1]}" = "$image: m" ]
	run -1 storage --debug=false metadata --json nosuch "$image"
	[ "$(jq -c . <<<"$output")" = "{\"$image\":\"m\"}" ]
}

@test "set-metadata: needs new metadata and a known object" {
	layer=$(new_layer)
	run -1 storage --debug=false set-metadata "$layer"
	[[ "$output" == *"no new metadata provided"* ]]
	run -1 storage --debug=false set-metadata -m x nosuch
}

@test "metadata: JSON-looking and multi-line metadata survive unchanged" {
	image=$(new_image "")
	meta=$'{"a":"<b>&"}\nsecond line'
	storage --debug=false set-metadata -m "$meta" "$image"
	run -0 storage --debug=false metadata -q "$image"
	[ "$output" = "$meta" ]
	run -0 storage --debug=false image --json "$image"
	[ "$(jq -r '.[0].metadata' <<<"$output")" = "$meta" ]
	[[ "$output" == *'\u003cb\u003e\u0026'* ]]
}
