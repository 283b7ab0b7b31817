#!/usr/bin/env bats
# ID-mapped layers and containers: --uidmap/--gidmap, ownership
# shifting, layer-parent-owners, container-parent-owners, map errors.
# Runs on vfs by default and on overlay with STORAGE_DRIVER=overlay
# (idmaps-overlay.bats has the overlay-only cases, and runs this file on
# overlay as part of the normal run).

load helpers

# The harness sets _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes, which v1.43 does
# not know; both tools read the cached idmapped-lower probe, so writing
# its "false" result makes the reference skip idmapped lowers too.
eval "harness_$(declare -f setup)"
setup() {
	harness_setup
	if [ "$STORAGE_DRIVER" = overlay ]; then
		mkdir -p "$TESTDIR/runroot/overlay"
		: >"$TESTDIR/runroot/overlay/idmapped-lower-dir-false"
	fi
}

# owned_tar OUT: tar with files owned by container IDs 0, 5:6 and 7:8.
owned_tar() {
	local src="$TESTDIR/owned-src"
	mkdir -p "$src/d"
	echo hi >"$src/f"
	echo x >"$src/d/g"
	chown 5:6 "$src/d"
	chown 7:8 "$src/d/g"
	tar --numeric-owner --owner=0 --group=0 -C "$src" -cf "$1" f
	tar --numeric-owner -C "$src" -rf "$1" d
	rm -rf "$src"
}

@test "idmaps: import-layer with a map stores host IDs, diff gives container IDs" {
	require_root
	owned_tar "$TESTDIR/owned.tar"
	layer=$(storage --debug=false import-layer --uidmap 0:1000:100 --gidmap 0:2000:100 -f "$TESTDIR/owned.tar")
	mnt=$(mount_layer "$layer")
	[ "$(stat -c %u:%g "$mnt/f")" = 1000:2000 ]
	[ "$(stat -c %u:%g "$mnt/d/g")" = 1007:2008 ]
	[ "$(stat -c %u:%g "$mnt/d")" = 1005:2006 ]
	storage --debug=false unmount "$layer" >/dev/null
	run -0 storage --debug=false layer "$layer"
	[[ "$output" == *"UID mapping: (container=0, host=1000, size=100)"* ]]
	[[ "$output" == *"GID mapping: (container=0, host=2000, size=100)"* ]]
	json=$(storage --debug=false layer --json "$layer")
	[ "$(jq -c '.[0].uidmap' <<<"$json")" = '[{"container_id":0,"host_id":1000,"size":100}]' ]
	[ "$(jq -c '.[0].gidmap' <<<"$json")" = '[{"container_id":0,"host_id":2000,"size":100}]' ]
	[ "$(jq -c '.[0].uidset' <<<"$json")" = '[0,5,7]' ]
	# the diff is in container IDs and identical to the input
	storage --debug=false diff -u "$layer" | cmp - "$TESTDIR/owned.tar"
	# diff-size / diff-digest keys are extractable with a sed regex
	size=$(sed -e 's/.*"diff-size":\([0-9]*\).*/\1/' <<<"$json")
	digest=$(sed -e 's/.*"diff-digest":"\(sha256:[0-9a-f]*\)".*/\1/' <<<"$json")
	[ "$size" -eq "$(stat -c %s "$TESTDIR/owned.tar")" ]
	[ "$digest" = "sha256:$(sha256sum <"$TESTDIR/owned.tar" | cut -d' ' -f1)" ]
}

@test "idmaps: a mapped child of an unmapped layer sees shifted files" {
	require_root
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	child=$(new_layer --uidmap 0:1000:100 --gidmap 0:2000:100 "$base")
	mnt=$(mount_layer "$child")
	[ "$(stat -c %u:%g "$mnt/f")" = 1000:2000 ]
	[ "$(stat -c %u:%g "$mnt/d/g")" = 1007:2008 ]
	if ! is_reference_143; then
		# v1.43's vfs left directories unshifted
		[ "$(stat -c %u:%g "$mnt/d")" = 1005:2006 ]
		[ "$(stat -c %u:%g "$mnt")" = 1000:2000 ]
	fi
	# a file created as host 1003:2004 shows as container 3:4 in the diff
	touch "$mnt/new"
	chown 1003:2004 "$mnt/new"
	run -0 storage --debug=false layer-parent-owners "$child"
	[ "${lines[0]}" = "ID: $child" ]
	[[ "${lines[1]}" == "UIDs: [0"* ]]
	[[ "${lines[2]}" == "GIDs: [0"* ]]
	run -0 storage --debug=false layer-parent-owners --json "$child"
	[ "$(jq -r .ID <<<"$output")" = "$child" ]
	[ "$(jq -r '.UIDs[0]' <<<"$output")" = 0 ]
	storage --debug=false unmount "$child" >/dev/null
	run -0 sh -c "'$STORAGE_BINARY' --debug=false --graph '$TESTDIR/root' --run '$TESTDIR/runroot' --storage-driver '$STORAGE_DRIVER' diff -u '$child' | tar -tv --numeric-owner"
	[[ "$output" == *" 3/4 "*new* ]]
	# the base is untouched
	mnt=$(mount_layer "$base")
	[ "$(stat -c %u:%g "$mnt/f")" = 0:0 ]
	[ "$(stat -c %u:%g "$mnt/d/g")" = 7:8 ]
	storage --debug=false unmount "$base" >/dev/null
}

@test "idmaps: a mapped container of an unmapped image" {
	require_root
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	image=$(new_image "$base")
	container=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	mnt=$(mount_layer "$container")
	[ "$(stat -c %u:%g "$mnt/f")" = 3000:4000 ]
	[ "$(stat -c %u:%g "$mnt/d/g")" = 3007:4008 ]
	if ! is_reference_143; then
		[ "$(stat -c %u:%g "$mnt/d")" = 3005:4006 ]
	fi
	storage --debug=false unmount "$container" >/dev/null
	run -0 storage --debug=false container --json "$container"
	[ "$(jq -c '.[0].uidmap' <<<"$output")" = '[{"container_id":0,"host_id":3000,"size":100}]' ]
	[ "$(jq -c '.[0].gidmap' <<<"$output")" = '[{"container_id":0,"host_id":4000,"size":100}]' ]
}

@test "idmaps: parent owners of unmapped layers and containers are empty" {
	layer=$(new_layer)
	run -0 storage --debug=false layer-parent-owners "$layer"
	[ "$output" = "ID: $layer" ]
	image=$(new_image "$layer")
	container=$(new_container "$image")
	run -0 storage --debug=false container-parent-owners "$container"
	[ "$output" = "ID: $container"$'\nUIDs: []\nGIDs: []' ]
	run -1 storage --debug=false layer-parent-owners nosuch
	run -1 storage --debug=false container-parent-owners nosuch
}

@test "idmaps: several ranges chained with colons" {
	require_root
	layer=$(new_layer --uidmap 0:1000:1:1:2001:99 --gidmap 0:1000:1:1:2001:99)
	run -0 storage --debug=false layer "$layer"
	[[ "$output" == *"UID mapping: (container=0, host=1000, size=1)"* ]]
	[[ "$output" == *"UID mapping: (container=1, host=2001, size=99)"* ]]
	[[ "$output" == *"GID mapping: (container=1, host=2001, size=99)"* ]]
}

@test "idmaps: malformed maps and host map conflicts are rejected" {
	run -1 storage --debug=false create-layer --uidmap 0:1
	[[ "$output" == *"uid setting is malformed"* ]]
	run -1 storage --debug=false create-layer --gidmap 0:x:1
	[[ "$output" == *"gid setting is malformed"* ]]
	run -1 storage --debug=false create-layer --hostuidmap --uidmap 0:1:1
	[[ "$output" == *"host uid map specified along with UID mapping"* ]]
	run -1 storage --debug=false create-layer --hostgidmap --gidmap 0:1:1
	[[ "$output" == *"host gid map specified along with GID mapping"* ]]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
}

@test "idmaps: copy maps ownership and --chown forces it" {
	require_root
	layer=$(new_layer --uidmap 0:1000:100 --gidmap 0:2000:100)
	echo data >"$TESTDIR/src"
	chown 0:0 "$TESTDIR/src"
	storage --debug=false copy "$TESTDIR/src" "$layer:/copied"
	storage --debug=false copy --chown 5:6 "$TESTDIR/src" "$layer:/chowned"
	mnt=$(mount_layer "$layer")
	[ "$(cat "$mnt/copied")" = data ]
	[ "$(stat -c %u:%g "$mnt/copied")" = 1000:2000 ]
	[ "$(stat -c %u:%g "$mnt/chowned")" = 1005:2006 ]
	storage --debug=false unmount "$layer" >/dev/null
}
