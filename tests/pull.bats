#!/usr/bin/env bats
# stowage pull from oci:, oci-archive: and docker-archive: sources (issue 5):
# records, reuse, corrupt blobs, interrupted and killed pulls, concurrent
# pulls of one image, progress output. Fixtures are built once per file by
# examples/mkimage (Go, offline); the archive forms by skopeo (skipped
# without it). Registry pulls are in the registry suite.

load helpers

setup_file() {
	local w=$BATS_FILE_TMPDIR gobin
	gobin=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
	: >"$w/skip-reason"
	if [ ! -x "$gobin" ]; then
		echo "no Go toolchain to build examples/mkimage" >"$w/skip-reason"
		return 0
	fi
	(cd "$TESTSDIR/.." && "$gobin" build -o "$w/mkimage" ./examples/mkimage) || {
		echo "could not build examples/mkimage" >"$w/skip-reason"
		return 0
	}
	mkdir -p "$w/d1/etc" "$w/d2/etc"
	echo one >"$w/d1/etc/message"
	echo gone >"$w/d1/etc/gone"
	echo two >"$w/d2/etc/message"
	"$w/mkimage" -o "$w/oci" -ref latest -layer "$w/d1" -layer "$w/d2" -cmd /hello
	# For podman: a static Go program printing /etc/message, and a second
	# layer changing the message.
	if command -v podman >/dev/null 2>&1; then
		mkdir -p "$w/hello" "$w/p1/etc" "$w/p2/etc"
		printf 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tb, _ := os.ReadFile("/etc/message")\n\tfmt.Printf("hello from a pulled image: %%s", b)\n}\n' >"$w/hello/main.go"
		printf 'module hello\n\ngo 1.21\n' >"$w/hello/go.mod"
		if (cd "$w/hello" && CGO_ENABLED=0 GOFLAGS= "$gobin" build -o "$w/p1/hello" .); then
			echo first >"$w/p1/etc/message"
			echo second >"$w/p2/etc/message"
			"$w/mkimage" -o "$w/pod" -ref latest -layer "$w/p1" -layer "$w/p2" -cmd /hello
			printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$w/policy.json"
		fi
	fi
	# Four 24 MB layers: long enough to interrupt.
	"$w/mkimage" -o "$w/big" -ref latest -random-layers 4 -random-size 24000000 -seed 7
}

setup() {
	local reason
	reason=$(cat "$BATS_FILE_TMPDIR/skip-reason")
	if [ -n "$reason" ]; then
		skip "$reason"
	fi
	# helpers.bash's setup
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-test.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
}

require_skopeo() {
	command -v skopeo >/dev/null 2>&1 || skip "skopeo not installed (apt-get install -y skopeo)"
}

# config_id LAYOUT: the hex config digest of the layout's only image.
config_id() {
	local m
	m=$(jq -r '.manifests[0].digest' "$1/index.json" | cut -d: -f2)
	jq -r '.config.digest' "$1/blobs/sha256/$m" | cut -d: -f2
}

# diff_ids LAYOUT: the config's diff IDs, one a line.
diff_ids() {
	jq -r '.rootfs.diff_ids[]' "$1/blobs/sha256/$(config_id "$1")"
}

@test "pull oci: records the image as containers/image does and the files are there" {
	local w=$BATS_FILE_TMPDIR id
	run -0 --separate-stderr stowage_q pull oci:"$w/oci":latest localhost/t
	id=$(config_id "$w/oci")
	[ "${lines[0]}" = "$id" ]
	run -0 stowage_q images
	[[ "$output" == *"$id"* ]]
	[[ "$output" == *"name: localhost/t:latest"* ]]
	[[ "$output" == *"data: manifest"* ]]
	[[ "$output" == *"data: sha256:$id"* ]]
	# Layer records: compressed and uncompressed digests.
	run -0 stowage_q layers --json
	local d
	for d in $(diff_ids "$w/oci"); do
		echo "$output" | jq -e --arg d "$d" 'map(select(.["diff-digest"] == $d and .["compressed-diff-digest"] != null and .["diff-size"] > 0)) | length == 1'
	done
	# The merged view: the second layer overrides /etc/message.
	local ctr mnt
	ctr=$(stowage_q create-container "$id" | head -n1)
	mnt=$(stowage_q mount "$ctr")
	[ "$(cat "$mnt/etc/message")" = two ]
	[ -f "$mnt/etc/gone" ]
	stowage_q unmount "$ctr"
	# Nothing a pull leaves (pull locks included) looks like damage to check.
	run -0 stowage_q check
}

@test "pull: layer IDs are containers/image chain IDs" {
	local w=$BATS_FILE_TMPDIR
	run -0 stowage_q pull -q oci:"$w/oci" localhost/t
	local ids=() d parent=
	for d in $(diff_ids "$w/oci"); do
		if [ -z "$parent" ]; then
			parent=${d#sha256:}
		else
			parent=$(printf '%s+%s' "$parent" "${d#sha256:}" | sha256sum | cut -d' ' -f1)
		fi
		ids+=("$parent")
	done
	run -0 stowage_q image localhost/t:latest
	[[ "$output" == *"Top Layer: ${ids[1]}"* ]]
	run -0 stowage_q layer "${ids[1]}"
	[[ "$output" == *"Parent: ${ids[0]}"* ]]
}

@test "pull again: every layer reused, none fetched; the new name is added" {
	local w=$BATS_FILE_TMPDIR
	run -0 stowage_q pull -q oci:"$w/oci" localhost/t
	run -0 --separate-stderr stowage_q pull --json oci:"$w/oci" localhost/u:2
	echo "$output" | jq -e '.reused == 2 and .fetched == 0 and .bytes == 0'
	run -0 stowage_q images
	[[ "$output" == *"name: localhost/t:latest"* ]]
	[[ "$output" == *"name: localhost/u:2"* ]]
}

@test "pull oci-archive: and docker-archive: give the same layers" {
	require_skopeo
	local w=$BATS_FILE_TMPDIR
	skopeo copy -q oci:"$w/oci":latest oci-archive:"$TESTDIR/o.tar":latest
	skopeo copy -q oci:"$w/oci":latest docker-archive:"$TESTDIR/d.tar":localhost/fromdocker:v1
	run -0 --separate-stderr stowage_q pull oci-archive:"$TESTDIR/o.tar" localhost/oa
	[ "${lines[0]}" = "$(config_id "$w/oci")" ]
	run -0 --separate-stderr stowage_q pull --json docker-archive:"$TESTDIR/d.tar"
	echo "$output" | jq -e '.names == ["localhost/fromdocker:v1"]'
	# docker-archive layers are uncompressed tars with the same diff IDs:
	# stored under the same chain IDs, so reused rather than re-extracted.
	echo "$output" | jq -e '.reused == 2'
	run -0 stowage_q images
	[[ "$output" == *"name: localhost/fromdocker:v1"* ]]
}

@test "pull docker-archive: into an empty store extracts its uncompressed layers" {
	require_skopeo
	local w=$BATS_FILE_TMPDIR
	skopeo copy -q oci:"$w/oci":latest docker-archive:"$TESTDIR/d.tar":localhost/fromdocker:v1
	run -0 --separate-stderr stowage_q pull --json docker-archive:"$TESTDIR/d.tar":localhost/fromdocker:v1
	echo "$output" | jq -e '.fetched == 2'
	local d
	run -0 stowage_q layers --json
	for d in $(diff_ids "$w/oci"); do
		echo "$output" | jq -e --arg d "$d" 'map(select(.["diff-digest"] == $d)) | length == 1'
	done
}

@test "pull: a corrupt blob is a digest mismatch and nothing is committed" {
	local w=$BATS_FILE_TMPDIR top
	cp -a "$w/big" "$TESTDIR/bad"
	top=$(jq -r '.layers[3].digest' "$TESTDIR/bad/blobs/sha256/$(jq -r '.manifests[0].digest' "$TESTDIR/bad/index.json" | cut -d: -f2)" | cut -d: -f2)
	chmod u+w "$TESTDIR/bad/blobs/sha256/$top"
	printf 'XXXX' | dd of="$TESTDIR/bad/blobs/sha256/$top" bs=1 seek=5000 conv=notrunc status=none
	run -1 stowage_q pull oci:"$TESTDIR/bad" localhost/bad
	[[ "$output" == *"digest mismatch"* ]]
	[[ "$output" == *"$top"* ]]
	run -0 stowage_q layers
	[ -z "$output" ]
	run -0 stowage_q images
	[ -z "$output" ]
}

@test "pull: bad references are clear errors" {
	run -1 stowage_q pull nonsense
	[[ "$output" == *"want one of oci: oci-archive: docker-archive: docker://"* ]]
	run -1 stowage_q pull dir:/tmp
	[[ "$output" == *'transport "dir"'* ]]
	run -1 stowage_q pull oci:"$TESTDIR/missing"
	[[ "$output" == *"no such file or directory"* ]]
	run -1 stowage_q pull oci:"$BATS_FILE_TMPDIR/oci":nope
	[[ "$output" == *'no image "nope"'* ]]
	run -1 stowage_q pull --platform linux oci:"$BATS_FILE_TMPDIR/oci"
	[[ "$output" == *"os/arch"* ]]
	run -1 stowage_q pull --jobs 0 oci:"$BATS_FILE_TMPDIR/oci"
	[[ "$output" == *"--jobs"* ]]
	run -1 stowage_q pull oci:"$BATS_FILE_TMPDIR/oci" 'Bad Name'
	[[ "$output" == *"invalid image reference"* ]]
}

@test "pull: progress lines and summary on stderr, --quiet prints only the ID" {
	local w=$BATS_FILE_TMPDIR
	run -0 --separate-stderr stowage_q pull oci:"$w/oci" localhost/t
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"layer 1 "*": committed"* ]]
	[[ "$stderr" == *"layer 2 "*": committed"* ]]
	[[ "$stderr" == *"2 layers: 2 fetched, 0 copied from stored layers, 0 reused"* ]]
	run -0 --separate-stderr stowage_q pull -q oci:"$w/oci" localhost/t
	[ -z "$stderr" ]
	[ "$output" = "$(config_id "$w/oci")" ]
	run -0 --separate-stderr stowage_q pull --json oci:"$w/oci" localhost/t
	echo "$stderr" | jq -s -e 'all(.event == "reused")'
}

# pull_bg: start a pull of the big image in the background; its pid is $!.
pull_bg() {
	"$STORAGE_BINARY" --graph "$TESTDIR/root" --run "$TESTDIR/runroot" --storage-driver "$STORAGE_DRIVER" \
		pull --jobs 2 oci:"$BATS_FILE_TMPDIR/big" localhost/big "$@" >"$TESTDIR/pull.out" 2>"$TESTDIR/pull.err" &
}

# wait_for_fetch: wait until the background pull started fetching.
wait_for_fetch() {
	local i
	for i in $(seq 200); do
		grep -q fetching "$TESTDIR/pull.err" && return 0
		sleep 0.02
	done
	return 1
}

@test "pull: Ctrl-C leaves no layer, image or staging" {
	pull_bg
	local pid=$!
	wait_for_fetch
	kill -INT "$pid"
	run wait "$pid"
	[ "$status" -ne 0 ]
	# Normally "pulling ...: context canceled"; what matters is below.
	if ! grep -q "context canceled" "$TESTDIR/pull.err"; then
		echo "# interrupted pull (status $status) said: $(tail -n 2 "$TESTDIR/pull.err")" >&3
	fi
	run -0 stowage_q layers
	[ -z "$output" ]
	run -0 stowage_q images
	[ -z "$output" ]
	run -0 find "$TESTDIR/root/$STORAGE_DRIVER-layers/tmp" -mindepth 1 -maxdepth 1 -name 'temp-dir-*'
	[ -z "$output" ]
}

@test "pull: a killed pull leaves only staging; the next pull completes and recovery cleans up" {
	pull_bg
	local pid=$!
	wait_for_fetch
	sleep 0.3
	kill -KILL "$pid"
	wait "$pid" || true
	# the fetch lock files the killed pull held stay (unlocked) ...
	locks="$TESTDIR/runroot/$STORAGE_DRIVER-layers/pull-locks"
	run -0 --separate-stderr stowage_q pull --json oci:"$BATS_FILE_TMPDIR/big" localhost/big
	echo "$output" | jq -e '(.fetched + .reused) == 4'
	run -0 stowage_q layers --json
	echo "$output" | jq -e 'length == 4 and all(.flags.incomplete != true)'
	run -0 find "$TESTDIR/root/$STORAGE_DRIVER-layers/tmp" -mindepth 1 -maxdepth 1 -name 'temp-dir-*'
	[ -z "$output" ]
	# ... until the next pull of those layers takes and removes them
	[ -z "$(ls -A "$locks")" ]
}

@test "pull: two concurrent pulls of one image fetch each layer once" {
	local w=$BATS_FILE_TMPDIR
	for n in 1 2; do
		"$STORAGE_BINARY" --graph "$TESTDIR/root" --run "$TESTDIR/runroot" --storage-driver "$STORAGE_DRIVER" \
			pull --json oci:"$w/big" localhost/big$n >"$TESTDIR/p$n.json" 2>"$TESTDIR/p$n.err" &
	done
	wait %1
	wait %2
	local f1 f2
	f1=$(jq .fetched "$TESTDIR/p1.json")
	f2=$(jq .fetched "$TESTDIR/p2.json")
	[ $((f1 + f2)) -eq 4 ]
	run -0 stowage_q layers --json
	echo "$output" | jq -e 'length == 4'
	run -0 stowage_q images
	[[ "$output" == *"localhost/big1:latest"* && "$output" == *"localhost/big2:latest"* ]]
	# the per-layer fetch locks are removed when released
	[ -d "$TESTDIR/runroot/$STORAGE_DRIVER-layers/pull-locks" ]
	[ -z "$(ls -A "$TESTDIR/runroot/$STORAGE_DRIVER-layers/pull-locks")" ]
}

# pod ARGS...: podman on this test's store.
pod() {
	mkdir -p "$TESTDIR/podman-tmp"
	timeout -k 10 120 podman --root "$TESTDIR/root" --runroot "$TESTDIR/runroot" \
		--storage-driver "$STORAGE_DRIVER" --cgroup-manager cgroupfs --events-backend file \
		--tmpdir "$TESTDIR/podman-tmp" "$@"
}

@test "pull: podman 4.3 lists, inspects and runs the pulled image; skopeo reuses its layers" {
	local w=$BATS_FILE_TMPDIR id runtime
	require_root
	[ -d "$w/pod" ] || skip "podman or the static test program is missing"
	command -v skopeo >/dev/null 2>&1 || skip "skopeo not installed"
	run -0 --separate-stderr stowage_q pull oci:"$w/pod" localhost/podtest
	id=${lines[0]}
	run -0 pod images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	[[ "$output" == *"localhost/podtest:latest ${id:0:12}"* ]]
	run -0 pod image inspect --format '{{.Id}} {{len .RootFS.Layers}}' localhost/podtest
	[ "$output" = "$id 2" ]
	for runtime in crun runc; do
		command -v $runtime >/dev/null 2>&1 || continue
		run pod --runtime $runtime run --rm --network none \
			--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/podtest
		[ "$status" -eq 0 ] && break
	done
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"hello from a pulled image: second"* ]]
	# skopeo finds both layers by their blob digests and copies neither.
	run -0 skopeo --debug --policy "$w/policy.json" copy oci:"$w/pod":latest \
		"containers-storage:[$STORAGE_DRIVER@$TESTDIR/root+$TESTDIR/runroot]localhost/again:1"
	[ "$(grep -c 'Skipping blob .* (already present)' <<<"$output")" -eq 2 ]
	run -0 stowage_q layers --json
	echo "$output" | jq -e 'length == 2'
}
