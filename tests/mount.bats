#!/usr/bin/env bats
# mount, unmount, mounted: mount counting exactly as upstream's
# mount-layer.bats expects.

load helpers

@test "mount-layer: counting" {
	layer=$(new_layer)
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false mount "$layer"
	[ "$output" != "" ]
	mnt=$output
	[ -d "$mnt" ]
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "$layer mounted" ]
	# a second mount returns the same path
	run -0 storage --debug=false mount "$layer"
	[ "$output" = "$mnt" ]
	# the first unmount only decrements: nothing printed, still mounted
	run -0 storage --debug=false unmount "$layer"
	[ "$output" = "" ]
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "$layer mounted" ]
	# the last one unmounts and says so
	run -0 storage --debug=false unmount "$layer"
	[ "$output" != "" ]
	[ "$output" = "$layer mountpoint unmounted" ]
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "" ]
	# unmounting a layer that is not mounted still succeeds and says so
	run -0 storage --debug=false unmount "$layer"
	[ "$output" = "$layer mountpoint unmounted" ]
}

@test "mount-layer: unmount --force drops every mount at once" {
	layer=$(new_layer)
	for i in 1 2 3; do
		storage --debug=false mount "$layer" >/dev/null
	done
	run -0 storage --debug=false unmount --force "$layer"
	[ "$output" = "$layer mountpoint unmounted" ]
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "" ]
}

@test "mount-layer: the umount alias and the mount count in mountpoints.json" {
	layer=$(new_layer)
	storage --debug=false mount "$layer" >/dev/null
	storage --debug=false mount "$layer" >/dev/null
	mp="$TESTDIR/runroot/${STORAGE_DRIVER}-layers/mountpoints.json"
	[ -f "$mp" ]
	[ "$(jq -r --arg l "$layer" '.[] | select(.id == $l) | .count' "$mp")" -eq 2 ]
	run -0 storage --debug=false umount "$layer"
	[ "$(jq -r --arg l "$layer" '.[] | select(.id == $l) | .count' "$mp")" -eq 1 ]
	run -0 storage --debug=false umount "$layer"
	[ "$output" = "$layer mountpoint unmounted" ]
}

@test "mount-layer: bad options, unknown layers" {
	layer=$(new_layer)
	run -125 storage --debug=false mount --option nosuid "$layer"
	run -1 storage --debug=false mount nosuch
	[[ "$output" == *"while mounting nosuch"* ]]
	run -1 storage --debug=false mounted nosuch
	[[ "$output" == *"checking if nosuch is mounted"* ]]
	# a failed argument does not stop the others
	run -1 storage --debug=false mount nosuch "$layer"
	[[ "$output" == *"$TESTDIR/root/"* ]]
	run -0 storage --debug=false mounted "$layer"
	[ "$output" = "$layer mounted" ]
	storage --debug=false unmount "$layer" >/dev/null
}

@test "mount-layer: JSON output" {
	layer=$(new_layer)
	run -0 --separate-stderr storage --debug=false mount --json "$layer"
	[ "$(jq -r '.[0].id' <<<"$output")" = "$layer" ]
	mnt=$(jq -r '.[0].mountpoint' <<<"$output")
	[ -d "$mnt" ]
	[ "$(jq -r '.[0].error' <<<"$output")" = "" ]
	run -0 --separate-stderr storage --debug=false mounted --json "$layer"
	[ "${lines[0]}" = "$layer mounted" ]
	run -0 --separate-stderr storage --debug=false unmount --json "$layer"
	[ "${lines[0]}" = "$layer mountpoint unmounted" ]
	[ "$(jq -r '.[0].id' <<<"${lines[1]}")" = "$layer" ]
}

@test "mount-layer: shutdown refuses while a layer is mounted" {
	layer=$(new_layer)
	storage --debug=false mount "$layer" >/dev/null
	run -1 storage --debug=false shutdown
	[[ "$output" == *"shutdown: "*"layer is in use by a container"* ]]
	storage --debug=false unmount "$layer" >/dev/null
	run -0 storage --debug=false shutdown
	[ "$output" = "" ]
}

@test "mount-layer: a vfs mount point is the layer directory and keeps content" {
	[ "$STORAGE_DRIVER" = vfs ] || skip "vfs only"
	layer=$(new_layer)
	mnt=$(mount_layer "$layer")
	[ "$mnt" = "$TESTDIR/root/vfs/dir/$layer" ]
	echo kept >"$mnt/file"
	storage --debug=false unmount "$layer" >/dev/null
	mnt=$(mount_layer "$layer")
	[ "$(cat "$mnt/file")" = kept ]
	storage --debug=false unmount "$layer" >/dev/null
}

@test "mount: a container mounts its layer" {
	image=$(new_image "")
	container=$(new_container -n ctr "$image")
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	run -0 storage --debug=false mount ctr
	mnt=$output
	[ -d "$mnt" ]
	run -0 storage --debug=false mounted "$clayer"
	[ "$output" = "$clayer mounted" ]
	run -0 storage --debug=false unmount ctr
	[ "$output" = "ctr mountpoint unmounted" ]
}

@test "mount: --read-only mounts an image" {
	skip_if_143 "mount -r adds noexec,nosuid, which vfs rejects"
	make_tar "$TESTDIR/layer.tar"
	layer=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	image=$(new_image -n img "$layer")
	run -0 storage --debug=false mount -r img
	mnt=$output
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	run -0 storage --debug=false unmount img
}
