#!/usr/bin/env bats
# Interoperability with Debian's skopeo (1.9) and podman (4.3) on an overlay
# store (issue 3, item 6):
#  - skopeo copies an OCI image into a store stowage created; stowage lists
#    the image, mounts it and re-exports every layer bit-identically (the
#    config's rootfs.diff_ids);
#  - after stowage changed that store (names added, layers and containers
#    created and deleted), podman still lists, inspects and mounts the image
#    and runs a static binary from it with crun.
# The image is built once per file with umoci from a rootfs holding a static
# Go program (/hello prints /etc/message). Skips when root, overlay, skopeo,
# podman, crun, umoci or Go are missing.

load helpers

setup_file() {
	local reason= cmd w
	for cmd in skopeo podman crun umoci; do
		if ! command -v "$cmd" >/dev/null 2>&1; then
			reason="$cmd not installed (apt-get install -y skopeo podman crun umoci)"
			break
		fi
	done
	local gobin
	gobin=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
	if [ -z "$reason" ] && [ ! -x "$gobin" ]; then
		reason="no Go toolchain to build the static test binary"
	fi
	w="$BATS_FILE_TMPDIR"
	if [ -z "$reason" ]; then
		if ! (build_image "$gobin") >"$w/build.log" 2>&1; then
			reason="could not build the test image: $(tail -n 3 "$w/build.log" | tr '\n' ' ')"
		fi
	fi
	printf '%s' "$reason" >"$w/skip-reason"
}

# build_image GO: $BATS_FILE_TMPDIR/oci:t, two layers: the first holds
# /hello, /etc/message ("one") and /etc/gone; the second deletes /etc/gone
# and rewrites /etc/message ("two").
build_image() {
	local gobin=$1 w="$BATS_FILE_TMPDIR"
	mkdir -p "$w/hello" || return 1
	cat >"$w/hello/main.go" <<'EOF'
package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("/etc/message")
	if err != nil {
		fmt.Println("no message:", err)
		os.Exit(1)
	}
	fmt.Printf("hello from the stowage interop image: %s", b)
}
EOF
	printf 'module hello\n\ngo 1.21\n' >"$w/hello/go.mod" || return 1
	(cd "$w/hello" && CGO_ENABLED=0 GOFLAGS= "$gobin" build -o "$w/hellobin" .) || return 1
	cd "$w" || return 1
	umoci init --layout oci || return 1
	umoci new --image oci:t || return 1
	umoci unpack --image oci:t b1 || return 1
	mkdir -p b1/rootfs/etc || return 1
	cp hellobin b1/rootfs/hello || return 1
	echo one >b1/rootfs/etc/message || return 1
	echo gone >b1/rootfs/etc/gone || return 1
	umoci repack --image oci:t b1 || return 1
	umoci unpack --image oci:t b2 || return 1
	rm b2/rootfs/etc/gone || return 1
	echo two >b2/rootfs/etc/message || return 1
	umoci repack --image oci:t b2 || return 1
	umoci config --image oci:t --config.cmd /hello || return 1
	rm -rf b1 b2 || return 1
	printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >policy.json || return 1
	local m c
	m=$(jq -r '.manifests[0].digest' oci/index.json) || return 1
	c=$(jq -r .config.digest "oci/blobs/sha256/${m#sha256:}") || return 1
	echo "$m" >manifest-digest || return 1
	echo "$c" >config-digest || return 1
	jq -r '.rootfs.diff_ids[]' "oci/blobs/sha256/${c#sha256:}" >diff-ids || return 1
	[ "$(wc -l <diff-ids)" -eq 2 ]
}

setup() {
	local reason
	reason=$(cat "$BATS_FILE_TMPDIR/skip-reason" 2>/dev/null || echo "setup_file did not run")
	if [ -n "$reason" ]; then
		skip "$reason"
	fi
	STORAGE_DRIVER=overlay
	export STORAGE_DRIVER
	require_overlay
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-interop.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot" "$TESTDIR/podman-tmp"
	export TESTDIR
	export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
	H="$TESTDIR/root/overlay"
	W="$BATS_FILE_TMPDIR"
	# podman reads the system policy; Debian ships one, create it if absent
	if [ ! -e /etc/containers/policy.json ]; then
		mkdir -p /etc/containers
		cp "$W/policy.json" /etc/containers/policy.json
		echo "# created a permissive /etc/containers/policy.json for podman" >&3
	fi
}

teardown() {
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# pod ARGS...: podman on this test's store.
pod() {
	timeout -k 10 120 podman --root "$TESTDIR/root" --runroot "$TESTDIR/runroot" \
		--storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
		--tmpdir "$TESTDIR/podman-tmp" "$@"
}

# pod_run ARGS...: `podman run --rm` with crun, setting $output/$lines like
# bats' run and failing the test on a non-zero exit. The limits are set below
# the host's (podman raises them by default, which needs CAP_SYS_RESOURCE).
# On a hybrid cgroup v1/v2 host with controllers in the v2 hierarchy crun
# refuses to start anything; then runc is used instead when installed.
pod_run() {
	local runtime=crun
	run pod --runtime "$runtime" run --rm --network none \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@"
	if [ "$status" -ne 0 ] && [[ "$output" == *"cgroups in hybrid mode not supported"* ]]; then
		if ! command -v runc >/dev/null 2>&1; then
			skip "crun cannot run containers on this hybrid-cgroup host and runc is not installed"
		fi
		echo "# crun refuses this hybrid-cgroup host; podman run uses runc" >&3
		runtime=runc
		run pod --runtime "$runtime" run --rm --network none \
			--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@"
	fi
	if [ "$status" -ne 0 ]; then
		echo "podman run ($runtime) $* failed with $status:"
		printf '%s\n' "$output"
		return 1
	fi
}

# copy_image: stowage creates the store, skopeo copies oci:t into it as
# localhost/t:1. Sets image (ID) and layers (IDs, bottom first).
copy_image() {
	storage --debug=false layers >/dev/null
	storage --debug=false shutdown >/dev/null
	[ -f "$TESTDIR/root/overlay-layers/layers.json" ] || [ -d "$TESTDIR/root/overlay" ]
	timeout 120 skopeo --policy "$W/policy.json" copy --quiet "oci:$W/oci:t" \
		"containers-storage:[overlay@$TESTDIR/root+$TESTDIR/runroot]localhost/t:1"
	image=$(storage --debug=false images --json | jq -r '.[] | select(.names | index("localhost/t:1")) | .id')
	[ -n "$image" ]
	local l
	l=$(storage --debug=false image --json "$image" | jq -r '.[0].layer')
	layers=()
	while [ -n "$l" ] && [ "$l" != null ]; do
		layers=("$l" "${layers[@]}")
		l=$(storage --debug=false layer --json "$l" | jq -r '.[0].parent // empty')
	done
}

# check_layers_reexport: every image layer's diff is its diff ID, in order.
check_layers_reexport() {
	mapfile -t ids <"$W/diff-ids"
	[ "${#layers[@]}" -eq "${#ids[@]}" ]
	local i got
	for i in "${!ids[@]}"; do
		[ "$(storage --debug=false layer --json "${layers[$i]}" | jq -r '.[0]["diff-digest"]')" = "${ids[$i]}" ]
		got="sha256:$(storage --debug=false diff -u "${layers[$i]}" | sha256sum | cut -d' ' -f1)"
		if [ "$got" != "${ids[$i]}" ]; then
			echo "layer $i (${layers[$i]}): diff -u gives $got, want ${ids[$i]}"
			return 1
		fi
	done
}

@test "interop: skopeo copies into a stowage overlay store; stowage lists, mounts and re-exports it" {
	copy_image
	# skopeo names the image after its config digest
	[ "sha256:$image" = "$(cat "$W/config-digest")" ]
	run -0 storage --debug=false images
	[[ "$output" == *"localhost/t:1"* ]]
	# the config and manifest are stored unchanged
	cfg=$(cat "$W/config-digest")
	storage --debug=false get-image-data "$image" "$cfg" | cmp - "$W/oci/blobs/sha256/${cfg#sha256:}"
	md=$(cat "$W/manifest-digest")
	storage --debug=false get-image-data "$image" manifest | cmp - "$W/oci/blobs/sha256/${md#sha256:}"
	# every layer re-exports bit-identically
	check_layers_reexport
	# overlay layout: the top layer's lowers are the lower image layers
	[ -d "$H/${layers[0]}/empty" ]
	[ "$(cat "$H/${layers[1]}/lower")" = "l/$(cat "$H/${layers[0]}/link")" ]
	# the top layer mounts with the image's content, and the binary runs
	mnt=$(mount_layer "${layers[1]}")
	cmp "$mnt/hello" "$W/hellobin"
	[ -x "$mnt/hello" ]
	[ "$(cat "$mnt/etc/message")" = two ]
	[ ! -e "$mnt/etc/gone" ]
	run -0 chroot "$mnt" /hello
	[ "$output" = "hello from the stowage interop image: two" ]
	run -0 storage --debug=false unmount "${layers[1]}"
	# the bottom layer alone still has the deleted file
	mnt=$(mount_layer "${layers[0]}")
	[ "$(cat "$mnt/etc/gone")" = gone ]
	[ "$(cat "$mnt/etc/message")" = one ]
	run -0 storage --debug=false unmount "${layers[0]}"
	run -0 storage --debug=false shutdown
	! is_mountpoint "$H"
}

@test "interop: podman lists, inspects, mounts and runs the image after stowage changed the store" {
	copy_image
	# stowage changes the store: names, layers and containers come and go
	run -0 storage --debug=false add-names -n localhost/t:extra "$image"
	extra=$(new_layer "${layers[1]}")
	populate_layer "$extra"
	make_tar "$TESTDIR/layer.tar"
	imported=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar" "$extra")
	imported=${imported%%$'\n'*}
	run -0 storage --debug=false delete-layer "$imported"
	run -0 storage --debug=false delete-layer "$extra"
	kept=$(new_layer)
	keep=$(new_container -n stowage-kept "$image")
	gone=$(new_container -n stowage-gone "$image")
	mnt=$(storage --debug=false mount "$keep")
	echo kept >"$mnt/kept-file"
	run -0 storage --debug=false unmount "$keep"
	run -0 storage --debug=false delete-container "$gone"
	run -0 storage --debug=false shutdown

	# podman lists the image under both names
	run -0 pod images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	[[ "$output" == *"localhost/t:1 ${image:0:12}"* ]]
	[[ "$output" == *"localhost/t:extra ${image:0:12}"* ]]
	# inspect: ID and the layers' diff IDs
	run -0 pod image inspect localhost/t:1
	[ "$(jq -r '.[0].Id' <<<"$output")" = "$image" ]
	[ "$(jq -r '.[0].RootFS.Layers[]' <<<"$output")" = "$(cat "$W/diff-ids")" ]
	[ "$(jq -r '.[0].Config.Cmd[0]' <<<"$output")" = /hello ]
	# podman sees stowage's container as an external one
	run -0 pod ps --all --external --format '{{.ID}} {{.Names}}'
	[[ "$output" == *"${keep:0:12}"* ]]
	[[ "$output" != *"${gone:0:12}"* ]]
	# podman mounts the image
	run -0 pod image mount localhost/t:1
	mnt=${lines[-1]}
	cmp "$mnt/hello" "$W/hellobin"
	[ "$(cat "$mnt/etc/message")" = two ]
	[ ! -e "$mnt/etc/gone" ]
	run -0 pod image unmount localhost/t:1
	# and runs the static binary with crun
	pod_run localhost/t:1 /hello
	[ "${lines[-1]}" = "hello from the stowage interop image: two" ]
	pod_run localhost/t:extra
	[ "${lines[-1]}" = "hello from the stowage interop image: two" ]

	# stowage still reads the store podman used
	run -0 storage --debug=false get-names "$image"
	[[ "$output" == *localhost/t:1* && "$output" == *localhost/t:extra* ]]
	check_layers_reexport
	storage --debug=false layers --json | jq -r '.[].id' >"$TESTDIR/ids"
	grep -qx "$kept" "$TESTDIR/ids"
	! grep -qx "$extra" "$TESTDIR/ids"
	! grep -qx "$imported" "$TESTDIR/ids"
	run -0 storage --debug=false containers
	[[ "$output" == *"$keep"* ]]
	[[ "$output" != *"$gone"* ]]
	mnt=$(storage --debug=false mount "$keep")
	[ "$(cat "$mnt/kept-file")" = kept ]
	[ "$(cat "$mnt/etc/message")" = two ]
	run -0 storage --debug=false unmount "$keep"
}
