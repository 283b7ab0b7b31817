#!/usr/bin/env bats
# get-names, add-names, set-names, remove-names, and moving names between
# objects of the same kind.

load helpers

# added OLD... -- NEW...: the names after add-names: main's store operation
# puts the new names first; v1.43's CLI appended them.
added() {
	local old=() new=() seen=" " n out=()
	while [ "$1" != -- ]; do old+=("$1"); shift; done
	shift
	new=("$@")
	if is_reference_143; then
		set -- "${old[@]}" "${new[@]}"
	else
		set -- "${new[@]}" "${old[@]}"
	fi
	for n in "$@"; do
		case $seen in *" $n "*) continue ;; esac
		seen="$seen$n "
		out+=("$n")
	done
	printf '%s\n' "${out[@]}"
}

@test "names: add and set on a layer" {
	layer=$(new_layer -n x1)
	run -0 storage --debug=false add-names -n x2 --name x3 "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false get-names "$layer"
	[ "$output" = "$(added x1 -- x2 x3)" ]
	run -0 storage --debug=false set-names -n only "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false get-names only
	[ "$output" = only ]
	# names that are not hex: `exists` also takes an ID prefix ("a1"
	# would match one layer ID in 256), as containers-storage does
	run -1 storage exists x1
	run -0 storage --debug=false get-names --json "$layer"
	[ "$(jq -c . <<<"$output")" = '["only"]' ]
	run -0 storage --debug=false add-names --json -n more "$layer"
	[ "$(jq -r '.[]' <<<"$output")" = "$(added only -- more)" ]
}

@test "names: adding a name that is already there does not duplicate it" {
	layer=$(new_layer -n a1)
	storage --debug=false add-names -n a1 -n a2 "$layer"
	run -0 storage --debug=false get-names "$layer"
	[ "$(sort <<<"$output")" = $'a1\na2' ]
}

@test "names: move-names between layers" {
	a=$(new_layer -n a1 -n a2)
	b=$(new_layer -n b1)
	storage --debug=false set-names -n b1 -n a2 "$b"
	run -0 storage --debug=false get-names "$a"
	[ "$output" = a1 ]
	run -0 storage --debug=false get-names "$b"
	[ "$output" = $'b1\na2' ]
	storage --debug=false add-names -n a1 "$b"
	run -0 storage --debug=false get-names "$a"
	[ "$output" = "" ]
	run -0 storage --debug=false get-names a1
	[ "$output" = "$(added b1 a2 -- a1)" ]
}

@test "names: move-names between images, names history" {
	i1=$(new_image -n i1 "")
	i2=$(new_image -n i2 "")
	storage --debug=false add-names -n i1 "$i2"
	run -0 storage --debug=false images
	[ "$output" = "$i1"$'\n'"$i2"$'\n'"$(added i2 -- i1 | sed 's/^/\tname: /')" ]
	run -0 storage --debug=false image --json "$i2"
	[ "$(jq -r '.[0]["names-history"][]' <<<"$output" | sort)" = $'i1\ni2' ]
	run -0 storage --debug=false get-names i1
	[ "$output" = "$(added i2 -- i1)" ]
	# the image that lost the name has none left
	run -0 storage --debug=false image --json "$i1"
	[ "$(jq -c '.[0].names // []' <<<"$output")" = '[]' ]
}

@test "names: move-names between containers" {
	image=$(new_image "")
	c1=$(new_container -n c1 "$image")
	c2=$(new_container -n c2 "$image")
	storage --debug=false set-names -n c1 "$c2"
	run -0 storage --debug=false get-names "$c1"
	[ "$output" = "" ]
	run -0 storage --debug=false containers
	[ "$output" = "$c1"$'\n'"$c2"$'\n\tname: c1' ]
}

@test "names: name spaces of layers, images and containers are separate" {
	layer=$(new_layer -n same)
	image=$(new_image -n same "$layer")
	container=$(new_container -n same "$image")
	run -0 storage --debug=false get-names "$layer"
	[ "$output" = same ]
	run -0 storage --debug=false get-names "$image"
	[ "$output" = same ]
	run -0 storage --debug=false get-names "$container"
	[ "$output" = same ]
}

@test "names: unknown object" {
	run -1 storage --debug=false get-names nosuch
	[[ "$output" == *"not known"* ]]
	run -1 storage --debug=false add-names -n x nosuch
	run -1 storage --debug=false set-names -n x nosuch
}

@test "remove-names: layers, images and containers" {
	skip_if_143 "no remove-names"
	layer=$(new_layer -n l1 -n l2 -n l3)
	run -0 storage --debug=false remove-names -n l2 "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false get-names "$layer"
	[ "$output" = $'l1\nl3' ]
	image=$(new_image -n i1 -n i2 "$layer")
	run -0 storage --debug=false remove-names --json -n i1 -n nothere "$image"
	[ "$(jq -c . <<<"$output")" = '["i2"]' ]
	container=$(new_container -n c1 -n c2 "$image")
	storage --debug=false removenames -n c1 "$container"
	run -0 storage --debug=false get-names "$container"
	[ "$output" = c2 ]
}
