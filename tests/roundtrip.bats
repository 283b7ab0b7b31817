#!/usr/bin/env bats
# stowage save/push (issue 5, item 6): an image pulled from an OCI layout is
# saved to an OCI layout, an OCI archive and a docker-archive (gzip, zstd and
# uncompressed layers) and pulled back into a fresh store: the same image ID
# (the config is kept) and the same layer diff IDs. skopeo reads what save
# wrote. An image stowage assembled from import-layer gets a synthesized
# config. Also runs bench/pull.sh --quick so the benchmark keeps working.

load helpers
load registry

setup_file() {
	local w="$BATS_FILE_TMPDIR"
	python3 "$TESTSDIR/../bench/gen_image.py" "$w/oci" --ref a --seeds 11,12,13 --size-mb 1 --files 80 >"$w/diff-ids"
}

# chain_diff_ids IMAGE [STORE-FUNCTION]: the diff-digests of the image's
# layers, base first, one per line.
chain_diff_ids() {
	local fn=${2:-stowage_q} l ids=()
	l=$($fn image --json "$1" | jq -r '.[0].layer')
	while [ -n "$l" ] && [ "$l" != null ]; do
		ids=("$($fn layer --json "$l" | jq -r '.[0]["diff-digest"]')" "${ids[@]}")
		l=$($fn layer --json "$l" | jq -r '.[0].parent // empty')
	done
	printf '%s\n' "${ids[@]}"
}

# other ARGS...: stowage on a second store under $TESTDIR/other.
other() {
	timeout -k 10 300 "$STORAGE_BINARY" --debug=false --graph "$TESTDIR/other/root" --run "$TESTDIR/other/runroot" \
		--storage-driver "$STORAGE_DRIVER" "$@"
}

teardown() {
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR/other" ]; then
		other shutdown >/dev/null 2>&1 || true
	fi
	registry_cleanup
	# helpers' teardown: wipe, shut down, unmount, remove $TESTDIR
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		STORAGE_TIMEOUT=60 storage wipe >/dev/null 2>&1 || true
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# pulled: pull the fixture into the test store as localhost/rt:1; sets image.
pulled() {
	run -0 stowage_q pull --quiet "oci:$BATS_FILE_TMPDIR/oci:a" localhost/rt:1
	image=${lines[-1]}
	[ "$(chain_diff_ids "$image")" = "$(cat "$BATS_FILE_TMPDIR/diff-ids")" ]
}

# check_round_trip DEST-FOR-SAVE SOURCE-FOR-PULL [SAVE FLAGS...]
check_round_trip() {
	local dest=$1 src=$2
	shift 2
	run -0 stowage_q save "$@" localhost/rt:1 "$dest"
	[[ "${lines[-1]}" == sha256:* ]]
	run -0 other pull --quiet "$src" localhost/back:1
	local back=${lines[-1]}
	# the config is kept, so the image ID is too; the layers diff the same
	[ "$back" = "$image" ]
	[ "$(chain_diff_ids "$back" other)" = "$(cat "$BATS_FILE_TMPDIR/diff-ids")" ]
	# and the layers re-export bit-identically from the second store
	local l
	l=$(other image --json "$back" | jq -r '.[0].layer')
	[ "sha256:$(other diff -u "$l" | sha256sum | cut -d' ' -f1)" = "$(tail -n1 "$BATS_FILE_TMPDIR/diff-ids")" ]
	other delete-image "$back" >/dev/null
}

@test "save: oci layout round trip keeps the image ID and diff IDs (gzip, zstd, none)" {
	pulled
	check_round_trip "oci:$TESTDIR/out:v1" "oci:$TESTDIR/out:v1"
	jq -e '.manifests[0].annotations["org.opencontainers.image.ref.name"] == "v1"' "$TESTDIR/out/index.json"
	# skopeo reads the layout stowage wrote
	run -0 skopeo inspect "oci:$TESTDIR/out:v1"
	[ "$(jq -r '.Layers | length' <<<"$output")" -eq 3 ]
	[[ "$(jq -r '.Layers[0]' <<<"$output")" != "$(head -n1 "$BATS_FILE_TMPDIR/diff-ids")" ]] # gzip'd blobs
	check_round_trip "oci:$TESTDIR/out:zstd" "oci:$TESTDIR/out:zstd" --compression zstd
	check_round_trip "oci:$TESTDIR/out:none" "oci:$TESTDIR/out:none" --compression none
	# uncompressed blobs are named by their diff IDs
	m=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "none") | .digest' "$TESTDIR/out/index.json")
	[ "$(jq -r '.layers[].digest' "$TESTDIR/out/blobs/sha256/${m#sha256:}")" = "$(cat "$BATS_FILE_TMPDIR/diff-ids")" ]
	[ "$(jq -r '.layers[0].mediaType' "$TESTDIR/out/blobs/sha256/${m#sha256:}")" = application/vnd.oci.image.layer.v1.tar ]
	# saving v1 again replaces it instead of adding a second entry
	run -0 stowage_q save localhost/rt:1 "oci:$TESTDIR/out:v1"
	[ "$(jq '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1")] | length' "$TESTDIR/out/index.json")" -eq 1 ]
}

@test "save: oci-archive and docker-archive round trips" {
	pulled
	check_round_trip "oci-archive:$TESTDIR/img.tar:v1" "oci-archive:$TESTDIR/img.tar:v1"
	check_round_trip "oci-archive:$TESTDIR/z.tar" "oci-archive:$TESTDIR/z.tar" --compression zstd
	check_round_trip "docker-archive:$TESTDIR/d.tar:localhost/rt:1" "docker-archive:$TESTDIR/d.tar"
	tar -xOf "$TESTDIR/d.tar" manifest.json | jq -e '.[0].RepoTags == ["localhost/rt:1"]'
	check_round_trip "docker-archive:$TESTDIR/dn.tar" "docker-archive:$TESTDIR/dn.tar" --compression none
	# skopeo reads both archives
	run -0 skopeo inspect "oci-archive:$TESTDIR/img.tar:v1"
	[ "$(jq -r '.Layers | length' <<<"$output")" -eq 3 ]
	run -0 skopeo inspect "docker-archive:$TESTDIR/d.tar"
	[ "$(jq -r '.Layers | length' <<<"$output")" -eq 3 ]
	# no temporary files are left next to the archives
	[ -z "$(find "$TESTDIR" -maxdepth 1 -name '.*.tmp-*')" ]
}

@test "save: an image without a stored config gets one listing its layers" {
	make_tar "$TESTDIR/l1.tar"
	l1=$(stowage_q import-layer -f "$TESTDIR/l1.tar")
	l1=${l1%%$'\n'*}
	img=$(stowage_q create-image -n localhost/bare:1 "$l1")
	run -0 stowage_q save localhost/bare:1 "oci:$TESTDIR/bare"
	run -0 other pull --quiet "oci:$TESTDIR/bare" localhost/bare:1
	back=${lines[-1]}
	[ "$(chain_diff_ids "$back" other)" = "$(stowage_q layer --json "$l1" | jq -r '.[0]["diff-digest"]')" ]
	run -0 skopeo inspect --config "oci:$TESTDIR/bare"
	[ "$(jq -r .os <<<"$output")" = linux ]
	[ "$(jq -r '.rootfs.diff_ids[0]' <<<"$output")" = "sha256:$(sha256sum <"$TESTDIR/l1.tar" | cut -d' ' -f1)" ]
}

@test "save: bad destinations and unknown images fail clearly and write nothing" {
	pulled
	run -1 stowage_q save localhost/rt:1 "$TESTDIR/plain-path"
	[[ "$output" == *"invalid destination"* ]]
	run -1 stowage_q save localhost/rt:1 "dir:$TESTDIR/x"
	[[ "$output" == *"unknown transport"* ]]
	run -1 stowage_q save --compression bzip2 localhost/rt:1 "oci:$TESTDIR/x"
	[[ "$output" == *"unknown compression"* ]]
	run -1 stowage_q save localhost/nope:1 "oci:$TESTDIR/x"
	[[ "$output" == *"image not known"* ]]
	[ ! -e "$TESTDIR/x" ]
	run -1 stowage_q save localhost/rt:1 "oci-archive:$TESTDIR/no/such/dir/x.tar"
	[ ! -e "$TESTDIR/no" ]
}

@test "bench/pull.sh --quick runs the whole benchmark on a tiny image" {
	require_root
	if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
		skip "overlayfs not available"
	fi
	command -v skopeo >/dev/null || skip "skopeo not installed"
	run -0 env STOWAGE="$STORAGE_BINARY" timeout 600 "$TESTSDIR/../bench/pull.sh" --quick
	[[ "$output" == *"c/a = "* ]]
	[[ "$output" == *"c/b = "* ]]
	[[ "$output" == *"d/c = "* ]]
	[[ "$output" != *"CHECK FAILED"* ]]
}
