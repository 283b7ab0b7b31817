#!/usr/bin/env bats
# create-container, containers, container, container directories.

load helpers

@test "containers: empty store prints nothing" {
	run -0 storage --debug=false containers
	[ "$output" = "" ]
	run -0 storage --debug=false containers --json
	[ "$(jq length <<<"$output")" -eq 0 ]
}

@test "create-container: from an image, its layer sits on the image's top layer" {
	layer=$(new_layer)
	image=$(new_image -n img "$layer")
	run -0 storage --debug=false create-container "$image"
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	container=$output
	run -0 storage --debug=false containers
	[ "$output" = "$container" ]
	run -0 storage exists -c "$container"
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	[ -n "$clayer" ]
	[ "$(storage --debug=false layer --json "$clayer" | jq -r '.[0].parent')" = "$layer" ]
	run -0 storage --debug=false container "$container"
	[ "${lines[0]}" = "ID: $container" ]
	[[ "$output" == *$'\nImage: '"$image"$'\nImage name: img\n'* ]]
	[[ "$output" == *$'\nLayer: '"$clayer"* ]]
	[[ "$output" =~ $'\n'Size:\ [0-9]+ ]]
	# the container's layer is writable and mountable through the container
	mnt=$(mount_layer "$container")
	echo hello >"$mnt/written-in-container"
	storage --debug=false unmount "$container" >/dev/null
	mnt=$(mount_layer "$clayer")
	[ "$(cat "$mnt/written-in-container")" = hello ]
	storage --debug=false unmount "$clayer" >/dev/null
}

@test "create-container: the container layer starts with the image content" {
	make_tar "$TESTDIR/layer.tar"
	layer=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar")
	image=$(new_image "$layer")
	container=$(new_container "$image")
	mnt=$(mount_layer "$container")
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	storage --debug=false unmount "$container" >/dev/null
}

@test "create-container: names, ID, metadata, JSON record" {
	image=$(new_image -n img "")
	run -0 storage --debug=false create-container -n c1 --name c2 -m container-meta --id 00112233aabbccdd img
	[ "${lines[0]}" = 00112233aabbccdd ]
	if is_reference_143; then
		# v1.43 printed the names without newlines
		[ "${lines[1]}" = $'\tc1\tc2' ]
	else
		[ "${lines[1]}" = $'\tc1' ]
		[ "${lines[2]}" = $'\tc2' ]
	fi
	run -0 storage --debug=false containers
	[ "$output" = $'00112233aabbccdd\n\tname: c1\n\tname: c2' ]
	run -0 storage --debug=false container --json c2
	[ "$(jq -r '.[0].id' <<<"$output")" = 00112233aabbccdd ]
	[ "$(jq -r '.[0].image' <<<"$output")" = "$image" ]
	[ "$(jq -r '.[0].metadata' <<<"$output")" = container-meta ]
	[ "$(jq -c '.[0].names' <<<"$output")" = '["c1","c2"]' ]
	jq -e '.[0].flags | has("MountLabel") and has("ProcessLabel")' <<<"$output"
	run -0 storage --debug=false container c1
	[[ "$output" == *$'\nName: c1\nName: c2\n'* ]]
}

@test "create-container: an empty image argument makes a container with no image" {
	run -0 storage --debug=false create-container ""
	container=${lines[0]}
	run -0 storage --debug=false container --json "$container"
	[ "$(jq -r '.[0].image' <<<"$output")" = "" ]
	clayer=$(jq -r '.[0].layer' <<<"$output")
	[ "$(storage --debug=false layer --json "$clayer" | jq -r '.[0].parent // ""')" = "" ]
	run -0 storage --debug=false container "$container"
	[[ "$output" == *$'\nImage: \n'* ]]
}

@test "create-container: errors" {
	image=$(new_image "")
	new_container -n taken "$image" >/dev/null
	run -1 storage --debug=false create-container -n taken "$image"
	[[ "$output" == *"that name is already in use"* ]]
	run -1 storage --debug=false create-container nosuchimage
	[[ "$output" == *"image not known"* ]]
	run -1 storage --debug=false create-container
	[[ "$output" == *"more arguments required"* ]]
	run -0 storage --debug=false containers
	[ "${#lines[@]}" -eq 2 ]
}

@test "container: unknown argument exits 1" {
	run -1 storage --debug=false container nosuch
}

@test "container directories: data dir under the graph root, run dir under the run root" {
	image=$(new_image "")
	container=$(new_container "$image")
	run -0 storage --debug=false get-container-dir "$container"
	dir=$output
	[[ "$dir" == "$TESTDIR/root/"* ]]
	[[ "$dir" == *"$container"* ]]
	run -0 storage --debug=false get-container-run-dir "$container"
	rundir=$output
	[[ "$rundir" == "$TESTDIR/runroot/"* ]]
	[[ "$rundir" == *"$container"* ]]
	mkdir -p "$dir" "$rundir"
	touch "$dir/file" "$rundir/file"
	run -1 storage --debug=false get-container-dir nosuch
	run -1 storage --debug=false get-container-run-dir nosuch
	# deleting the container removes both
	storage --debug=false delete-container "$container"
	[ ! -e "$dir/file" ]
	[ ! -e "$rundir/file" ]
}

@test "image directories" {
	skip_if_143 "no get-image-dir / get-image-run-dir"
	image=$(new_image "")
	run -0 storage --debug=false get-image-dir "$image"
	[[ "$output" == "$TESTDIR/root/"*"$image"* ]]
	run -0 storage --debug=false get-image-run-dir "$image"
	[[ "$output" == "$TESTDIR/runroot/"*"$image"* ]]
	run -1 storage --debug=false get-image-dir nosuch
}

@test "transient store: container records and their layers live in the run root" {
	skip_if_143 "no --transient-store"
	image=$(storage --debug=false --transient-store create-image "")
	image=${image%%$'\n'*}
	run -0 storage --debug=false --transient-store create-container -n tctr "$image"
	container=${lines[0]}
	[ -f "$TESTDIR/runroot/${STORAGE_DRIVER}-containers/volatile-containers.json" ]
	[ -f "$TESTDIR/runroot/${STORAGE_DRIVER}-containers/containers.lock" ]
	jq -e --arg c "$container" '.[] | select(.id == $c)' "$TESTDIR/runroot/${STORAGE_DRIVER}-containers/volatile-containers.json"
	clayer=$(storage --debug=false --transient-store container --json "$container" | jq -r '.[0].layer')
	jq -e --arg l "$clayer" '.[] | select(.id == $l)' "$TESTDIR/runroot/${STORAGE_DRIVER}-layers/volatile-layers.json"
	# images stay in the graph root
	jq -e --arg i "$image" '.[] | select(.id == $i)' "$TESTDIR/root/${STORAGE_DRIVER}-images/images.json"
	run -0 storage --debug=false --transient-store containers
	[ "${lines[0]}" = "$container" ]
	t1=$(lock_token "$TESTDIR/runroot/${STORAGE_DRIVER}-containers/containers.lock")
	storage --debug=false --transient-store set-names -n renamed "$container"
	[ "$(lock_token "$TESTDIR/runroot/${STORAGE_DRIVER}-containers/containers.lock")" != "$t1" ]
	storage --debug=false --transient-store delete-container "$container"
}

# super_options MNT: the super options of the mount at MNT.
super_options() {
	awk -v m="$1" '$5 == m { sub(/.* - /, ""); print $3 }' /proc/self/mountinfo
}

@test "disable-volatile (storage.conf): volatile containers are not mounted volatile, records in containers.json" {
	# Read from [storage.options] as containers-storage does; its CLI (like
	# ours) consults storage.conf only when no root/driver flag is given, so
	# this part runs unchanged against the reference binary.
	conf="$TESTDIR/storage.conf"
	cat >"$conf" <<-EOF
		[storage]
		driver = "$STORAGE_DRIVER"
		graphroot = "$TESTDIR/root"
		runroot = "$TESTDIR/runroot"
		[storage.options]
		disable-volatile = true
	EOF
	cfg() {
		CONTAINERS_STORAGE_CONF="$conf" STORAGE_OPTS="$STORAGE_OPTION" timeout -k 10 120 "$STORAGE_BINARY" --debug=false "$@"
	}
	image=$(new_image "")
	run -0 cfg create-container --volatile "$image"
	container=${lines[0]}
	cdir="$TESTDIR/root/${STORAGE_DRIVER}-containers"
	jq -e --arg c "$container" '.[] | select(.id == $c) | .flags.Volatile == true' "$cdir/containers.json"
	if [ -f "$cdir/volatile-containers.json" ]; then
		! jq -e --arg c "$container" '.[] | select(.id == $c)' "$cdir/volatile-containers.json"
	fi
	clayer=$(stowage_q container --json "$container" | jq -r '.[0].layer')
	jq -e --arg l "$clayer" '.[] | select(.id == $l)' "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	if [ "$STORAGE_DRIVER" = overlay ]; then
		# Opened without the option (flags given: storage.conf unread), the
		# flagged container is mounted volatile: the control.
		mnt=$(mount_layer "$container")
		ctl=$(super_options "$mnt")
		stowage_q unmount "$container" >/dev/null
		mnt=$(cfg mount "$container")
		opts=$(super_options "$mnt")
		echo "without: $ctl; with disable-volatile: $opts"
		[ -n "$opts" ]
		! [[ ",$opts," =~ ,(fsync=)?volatile, ]]
		cfg unmount "$container" >/dev/null
		if ! [[ ",$ctl," =~ ,(fsync=)?volatile, ]]; then
			skip "overlay here does not mount volatile at all; the comparison is void"
		fi
	fi
}

@test "--disable-volatile: a volatile container and its layer are stored in the stable files" {
	skip_if_143 "no --disable-volatile flag"
	image=$(new_image "")
	run -0 storage --debug=false --disable-volatile create-container --volatile "$image"
	container=${lines[0]}
	cdir="$TESTDIR/root/${STORAGE_DRIVER}-containers"
	jq -e --arg c "$container" '.[] | select(.id == $c) | .flags.Volatile == true' "$cdir/containers.json"
	[ ! -f "$cdir/volatile-containers.json" ] || ! jq -e --arg c "$container" '.[] | select(.id == $c)' "$cdir/volatile-containers.json"
	clayer=$(stowage_q container --json "$container" | jq -r '.[0].layer')
	jq -e --arg l "$clayer" '.[] | select(.id == $l)' "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	# control: without the flag it goes to the volatile files
	run -0 storage --debug=false create-container --volatile "$image"
	jq -e --arg c "${lines[0]}" '.[] | select(.id == $c)' "$cdir/volatile-containers.json"
}

@test "create-container --volatile: mounts and keeps content across remounts" {
	image=$(new_image "")
	run -0 storage --debug=false create-container --volatile "$image"
	container=${lines[0]}
	clayer=$(storage --debug=false container --json "$container" | jq -r '.[0].layer')
	run -0 storage exists -l "$clayer"
	mnt=$(mount_layer "$container")
	echo kept >"$mnt/file"
	storage --debug=false unmount "$container" >/dev/null
	mnt=$(mount_layer "$container")
	[ "$(cat "$mnt/file")" = kept ]
	if [ "$STORAGE_DRIVER" = overlay ]; then
		# mounted with overlay's volatile option (fsync=volatile on newer kernels)
		opts=$(awk -v m="$mnt" '$5 == m { sub(/.* - /, ""); print $3 }' /proc/self/mountinfo)
		echo "volatile container mount options: $opts"
		[[ ",$opts," =~ ,(fsync=)?volatile, ]]
	fi
	storage --debug=false unmount "$container" >/dev/null
	if [ "$STORAGE_DRIVER" = overlay ]; then
		run -0 storage --debug=false create-container "$image"
		plain=${lines[0]}
		mnt=$(mount_layer "$plain")
		opts=$(awk -v m="$mnt" '$5 == m { sub(/.* - /, ""); print $3 }' /proc/self/mountinfo)
		echo "plain container mount options: $opts"
		[ -n "$opts" ]
		! [[ ",$opts," =~ ,(fsync=)?volatile, ]]
		storage --debug=false unmount "$plain" >/dev/null
	fi
}
