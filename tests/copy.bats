#!/usr/bin/env bats
# copy: host paths and LAYER:/path sources into LAYER:/path.

load helpers

@test "copy: a host file and a host directory into a layer" {
	layer=$(new_layer)
	createrandom "$TESTDIR/file" 777
	mkdir -p "$TESTDIR/tree/sub"
	createrandom "$TESTDIR/tree/sub/inner" 55
	run -0 storage --debug=false copy "$TESTDIR/file" "$layer:/file"
	run -0 storage --debug=false copy "$TESTDIR/tree" "$layer:/tree"
	mnt=$(mount_layer "$layer")
	cmp "$TESTDIR/file" "$mnt/file"
	cmp "$TESTDIR/tree/sub/inner" "$mnt/tree/sub/inner"
	storage --debug=false unmount "$layer" >/dev/null
	# copy leaves the layer unmounted
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "" ]
}

@test "copy: from one layer to another, with --chown" {
	require_root
	a=$(new_layer)
	b=$(new_layer)
	createrandom "$TESTDIR/file" 100
	storage --debug=false copy "$TESTDIR/file" "$a:/file"
	run -0 storage --debug=false copy --chown 12:34 "$a:/file" "$b:/from-a"
	mnt=$(mount_layer "$b")
	cmp "$TESTDIR/file" "$mnt/from-a"
	[ "$(stat -c %u:%g "$mnt/from-a")" = 12:34 ]
	storage --debug=false unmount "$b" >/dev/null
	[ "$(storage --debug=false changes "$b")" = 'Add "/from-a"' ]
}

@test "copy: errors name what is wrong" {
	layer=$(new_layer)
	run -1 storage --debug=false copy nosuch:/x "$layer:/y"
	[[ "$output" == *'error finding layer "nosuch"'* ]]
	run -1 storage --debug=false copy "$TESTDIR/does-not-exist" "$layer:/y"
	[[ "$output" == *'error copying "'*'does-not-exist"'* ]]
	run -1 storage --debug=false copy a b c
	run ! storage --debug=false copy "$TESTDIR/x"
	[[ "$output" == *"more arguments required"* ]]
	if ! is_reference_143; then
		# v1.43 panicked while printing the flag defaults of copy (exit 2)
		[ "$status" -eq 1 ]
		[[ "$output" != *panic* ]]
	fi
}

@test "copy: -o is the short form of --chown" {
	skip_if_143 "no -o short flag"
	require_root
	layer=$(new_layer)
	echo x >"$TESTDIR/file"
	storage --debug=false copy -o 7:8 "$TESTDIR/file" "$layer:/file"
	mnt=$(mount_layer "$layer")
	[ "$(stat -c %u:%g "$mnt/file")" = 7:8 ]
	storage --debug=false unmount "$layer" >/dev/null
}
