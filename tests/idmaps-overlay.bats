#!/usr/bin/env bats
# ID mappings on the overlay driver (issue 3, item 5), whatever
# STORAGE_DRIVER says. Two modes, as in containers-storage:
#  - no idmapped lowers (_CONTAINERS_OVERLAY_DISABLE_IDMAP=yes, which the
#    harness sets, or a kernel without them): layers record their maps and
#    are chowned; a mapped child re-owns its parent's view into diff1; a
#    mapped container sits on a mapped copy of the image's top layer
#    (the image's mapped-layers);
#  - idmapped lowers: layers stay unmapped and a container's lowers are
#    shown through its maps at mount time.
# Both tools cache the kernel probe in R/overlay/idmapped-lower-dir-*;
# v1.43 does not know the environment variable, so `no_idmapped_lowers`
# writes that cache to make it behave as the variable asks.

load helpers

STORAGE_DRIVER=overlay

# no_idmapped_lowers: make both tools skip idmapped lowers in this store.
no_idmapped_lowers() {
	mkdir -p "$TESTDIR/runroot/overlay"
	: >"$TESTDIR/runroot/overlay/idmapped-lower-dir-false"
}

# with_idmapped_lowers: let both tools use idmapped lowers, or skip.
with_idmapped_lowers() {
	unset _CONTAINERS_OVERLAY_DISABLE_IDMAP
	local probe
	probe=$(new_layer) || return 1
	storage --debug=false mount "$probe" >/dev/null || return 1
	storage --debug=false unmount "$probe" >/dev/null
	storage --debug=false delete-layer "$probe" >/dev/null
	if [ ! -e "$TESTDIR/runroot/overlay/idmapped-lower-dir-true" ]; then
		skip "the kernel cannot mount overlay on idmapped lowers ($(ls "$TESTDIR/runroot/overlay" | tr '\n' ' '))"
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

# owners DIR: "path uid:gid" of f, d and d/g under DIR.
owners() {
	(cd "$1" && stat -c '%n %u:%g' f d d/g | tr '\n' ' ')
}

MAPPED='f 3000:4000 d 3005:4006 d/g 3007:4008 '
UNMAPPED='f 0:0 d 5:6 d/g 7:8 '

# chowned_owners: what a re-owned copy shows: $MAPPED, except that v1.43
# leaves directories unshifted when it re-owns a copy (a fixed bug).
chowned_owners() {
	if is_reference_143; then
		echo 'f 3000:4000 d 5:6 d/g 3007:4008 '
	else
		echo "$MAPPED"
	fi
}

@test "idmaps-overlay: without idmapped lowers a mapped container sits on a reused mapped copy of the top layer" {
	require_overlay
	no_idmapped_lowers
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	image=$(new_image "$base")
	c1=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	mapped=$(storage --debug=false image --json "$image" | jq -r '.[0]["mapped-layers"][0]')
	[ -n "$mapped" ] && [ "$mapped" != null ]
	run -0 storage --debug=false layer --json "$mapped"
	[ "$(jq -c '.[0].uidmap' <<<"$output")" = '[{"container_id":0,"host_id":3000,"size":100}]' ]
	# v1.43's layout: an empty diff over diff1, the re-owned copy
	[ -d "$TESTDIR/root/overlay/$mapped/diff1" ]
	[ "$(owners "$TESTDIR/root/overlay/$mapped/diff1")" = "$(chowned_owners)" ]
	[ "$(owners "$TESTDIR/root/overlay/$base/diff")" = "$UNMAPPED" ]
	mnt=$(mount_layer "$c1")
	[ "$(owners "$mnt")" = "$(chowned_owners)" ]
	run -0 storage --debug=false container-parent-owners "$c1"
	[ "${lines[1]}" = "UIDs: [0]" ]
	storage --debug=false unmount "$c1" >/dev/null
	# a second container with the same maps reuses the copy
	c2=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	run -0 storage --debug=false image --json "$image"
	[ "$(jq '.[0]["mapped-layers"] | length' <<<"$output")" = 1 ]
	[ "$(storage --debug=false container --json "$c2" | jq -r '.[0].layer' | xargs -I{} sh -c "'$STORAGE_BINARY' --debug=false --graph '$TESTDIR/root' --run '$TESTDIR/runroot' --storage-driver overlay layer --json {}" | jq -r '.[0].parent')" = "$mapped" ]
	# the diff of the copy is the image layer's, bit for bit
	storage --debug=false diff -u "$mapped" | cmp - "$TESTDIR/owned.tar"
	# deleting the image takes the mapped copy with it
	storage --debug=false delete-container "$c1" >/dev/null
	storage --debug=false delete-container "$c2" >/dev/null
	storage --debug=false delete-image "$image" >/dev/null
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	[ ! -e "$TESTDIR/root/overlay/$mapped" ]
}

@test "idmaps-overlay: with idmapped lowers layers stay unmapped and containers are mapped at mount" {
	require_overlay
	with_idmapped_lowers
	owned_tar "$TESTDIR/owned.tar"
	# as containers-storage does when it can shift: the layer's maps are dropped
	layer=$(storage --debug=false import-layer --uidmap 0:1000:100 --gidmap 0:2000:100 -f "$TESTDIR/owned.tar")
	run -0 storage --debug=false layer --json "$layer"
	[ "$(jq -c '.[0].uidmap' <<<"$output")" = null ]
	[ "$(owners "$TESTDIR/root/overlay/$layer/diff")" = "$UNMAPPED" ]
	image=$(new_image "$layer")
	container=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	run -0 storage --debug=false container --json "$container"
	[ "$(jq -c '.[0].uidmap' <<<"$output")" = '[{"container_id":0,"host_id":3000,"size":100}]' ]
	clayer=$(jq -r '.[0].layer' <<<"$output")
	run -0 storage --debug=false layer --json "$clayer"
	[ "$(jq -c '.[0].uidmap' <<<"$output")" = null ]
	[ "$(jq -r '.[0].parent' <<<"$output")" = "$layer" ]
	run -0 storage --debug=false image --json "$image"
	[ "$(jq -c '.[0]["mapped-layers"]' <<<"$output")" = null ]
	mnt=$(mount_layer "$container")
	[ "$(owners "$mnt")" = "$MAPPED" ]
	# the temporary idmapped mounts are gone, the disk is unchanged
	! grep -q "$TESTDIR/root/overlay/$clayer/mapped" /proc/self/mountinfo
	[ "$(owners "$TESTDIR/root/overlay/$layer/diff")" = "$UNMAPPED" ]
	# a file made by container root lands in the upper as host 3000
	touch "$mnt/new" && chown 3003:4004 "$mnt/new"
	run -0 storage --debug=false container-parent-owners "$container"
	[ "$output" = "ID: $container"$'\nUIDs: []\nGIDs: []' ]
	storage --debug=false unmount "$container" >/dev/null
	[ "$(stat -c %u:%g "$TESTDIR/root/overlay/$clayer/diff/new")" = 3003:4004 ]
	# a plain layer mount is never shifted
	mnt=$(mount_layer "$layer")
	[ "$(owners "$mnt")" = "$UNMAPPED" ]
	storage --debug=false unmount "$layer" >/dev/null
}

@test "idmaps-overlay: a mapped child re-owns its parent's view into diff1" {
	require_overlay
	no_idmapped_lowers
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	child=$(new_layer --uidmap 0:3000:100 --gidmap 0:4000:100 "$base")
	[ "$(owners "$TESTDIR/root/overlay/$child/diff1")" = "$(chowned_owners)" ]
	[ "$(stat -c %u:%g "$TESTDIR/root/overlay/$child/diff")" = 3000:4000 ]
	grand=$(new_layer "$child")
	mnt=$(mount_layer "$grand")
	[ "$(owners "$mnt")" = "$(chowned_owners)" ]
	storage --debug=false unmount "$grand" >/dev/null
	# an import on a parent owned in other maps stacks over the re-owned view
	top=$(storage --debug=false import-layer --uidmap 0:3000:100 --gidmap 0:4000:100 -f "$TESTDIR/owned.tar" "$base")
	[ -d "$TESTDIR/root/overlay/$top/diff1" ]
	[ "$(owners "$TESTDIR/root/overlay/$top/diff")" = "$MAPPED" ]
	storage --debug=false diff -u "$top" | cmp - "$TESTDIR/owned.tar"
}

@test "idmaps-overlay: containers-storage 1.43 and stowage mount each other's mapped copies" {
	require_overlay
	[ -x "$REFERENCE_BINARY" ] || skip "no reference binary $REFERENCE_BINARY"
	[ "$STORAGE_BINARY" != "$REFERENCE_BINARY" ] || skip "the binary under test is the reference"
	no_idmapped_lowers
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	image=$(new_image "$base")
	ours=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	theirs=$(reference create-container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	# 1.43 reuses the copy stowage registered
	run -0 storage --debug=false image --json "$image"
	[ "$(jq '.[0]["mapped-layers"] | length' <<<"$output")" = 1 ]
	mnt=$(reference mount "$ours")
	[ "$(stat -c '%u:%g' "$mnt/f" "$mnt/d/g" | tr '\n' ' ')" = "3000:4000 3007:4008 " ]
	reference unmount "$ours" >/dev/null
	mnt=$(mount_layer "$theirs")
	[ "$(owners "$mnt")" = "$MAPPED" ]
	storage --debug=false unmount "$theirs" >/dev/null
	# and the other way round: a copy 1.43 made, under a new image
	image2=$(reference create-image "$base")
	theirs2=$(reference create-container --uidmap 0:5000:100 --gidmap 0:6000:100 "$image2")
	ours2=$(new_container --uidmap 0:5000:100 --gidmap 0:6000:100 "$image2")
	mnt=$(mount_layer "$ours2")
	[ "$(stat -c '%u:%g' "$mnt/f" "$mnt/d/g" | tr '\n' ' ')" = "5000:6000 5007:6008 " ]
	storage --debug=false unmount "$ours2" >/dev/null
	mnt=$(mount_layer "$theirs2")
	[ "$(stat -c '%u:%g' "$mnt/f" "$mnt/d/g" | tr '\n' ' ')" = "5000:6000 5007:6008 " ]
	storage --debug=false unmount "$theirs2" >/dev/null
}

@test "idmaps-overlay: containers-storage 1.43 and stowage mount each other's containers through idmapped lowers" {
	require_overlay
	[ -x "$REFERENCE_BINARY" ] || skip "no reference binary $REFERENCE_BINARY"
	[ "$STORAGE_BINARY" != "$REFERENCE_BINARY" ] || skip "the binary under test is the reference"
	with_idmapped_lowers
	owned_tar "$TESTDIR/owned.tar"
	base=$(storage --debug=false import-layer -f "$TESTDIR/owned.tar")
	image=$(new_image "$base")
	ours=$(new_container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	theirs=$(reference create-container --uidmap 0:3000:100 --gidmap 0:4000:100 "$image")
	for c in "$ours" "$theirs"; do
		mnt=$(reference mount "$c")
		[ "$(owners "$mnt")" = "$MAPPED" ]
		reference unmount "$c" >/dev/null
		mnt=$(mount_layer "$c")
		[ "$(owners "$mnt")" = "$MAPPED" ]
		storage --debug=false unmount "$c" >/dev/null
	done
}

@test "idmaps-overlay: create-layer over a leftover layer directory replaces it" {
	require_overlay
	id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	mkdir -p "$TESTDIR/root/overlay/$id/diff"
	echo stale >"$TESTDIR/root/overlay/$id/diff/stale"
	run -0 storage --debug=false create-layer --id "$id"
	[ ! -e "$TESTDIR/root/overlay/$id/diff/stale" ]
	[ -s "$TESTDIR/root/overlay/$id/link" ]
	mnt=$(mount_layer "$id")
	[ -d "$mnt" ]
	storage --debug=false unmount "$id" >/dev/null
}

@test "idmaps-overlay: every case of idmaps.bats passes on overlay" {
	require_overlay
	run env STORAGE_DRIVER=overlay bats --tap "$TESTSDIR/idmaps.bats"
	printf '%s\n' "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
}
