#!/usr/bin/env bats
# stowage pull from a real registry (issue 5, item 8): Debian's
# docker-registry on 127.0.0.1 (tests/registry.bash), images pushed into it
# by `skopeo copy`. By tag and by digest, a multi-arch index, podman running
# an image stowage pulled, concurrent pulls of overlapping images into one
# store, a SIGKILLed pull, a tampered blob, a registry killed mid-transfer,
# basic auth (htpasswd) with credentials from the usual auth files (also
# ~/.dockercfg and a credsStore helper),
# and stowage push to the registry and back. Fixtures come from
# bench/gen_image.py (deterministic gzip'd layers) and, for podman, umoci.

load helpers
load registry

setup_file() {
	local w="$BATS_FILE_TMPDIR" gen="$TESTSDIR/../bench/gen_image.py"
	: >"$w/skip-reason"
	if [ ! -x "$REG_BIN" ] || ! command -v skopeo >/dev/null 2>&1; then
		echo "docker-registry or skopeo not installed (apt-get install docker-registry skopeo)" >"$w/skip-reason"
		return 0
	fi
	python3 "$gen" "$w/oci" --ref a --seeds 21,22,23 --size-mb 2 --files 120 >"$w/a.ids"
	python3 "$gen" "$w/oci" --ref b --seeds 21,22,24 --size-mb 2 --files 120 >"$w/b.ids"
	python3 "$gen" "$w/oci" --ref m --seeds 31,32 --size-mb 1 --files 50 --platforms linux/arm64,linux/amd64 >/dev/null
	# the per-platform diff IDs of m (the index lists arm64 first)
	python3 "$gen" "$w/m-arm64" --seeds 31,32 --size-mb 1 --files 50 >"$w/m-arm64.ids"
	python3 "$gen" "$w/m-amd64" --seeds 1031,1032 --size-mb 1 --files 50 >"$w/m-amd64.ids"
	python3 "$gen" "$w/big" --ref big --seeds 41,42,43 --size-mb 8 --files 200 >"$w/big.ids"
	if command -v umoci >/dev/null 2>&1 && { command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; }; then
		(build_hello "$(command -v go || echo /usr/local/go/bin/go)") >"$w/hello.log" 2>&1 || echo "build failed: $(tail -n 3 "$w/hello.log" | tr '\n' ' ')" >"$w/hello-skip"
	else
		echo "umoci or Go missing" >"$w/hello-skip"
	fi
	registry_start "$w/registry"
	echo "$REGISTRY" >"$w/registry-addr"
	echo "$REG_PID" >"$w/registry-pid"
	skopeo_push "oci:$w/oci:a" t/a:1
	skopeo_push "oci:$w/oci:b" t/b:1
	skopeo_push "oci:$w/oci:m" t/m:1 --all
	if [ ! -s "$w/hello-skip" ]; then
		skopeo_push "oci:$w/hello:t" t/hello:1
	fi
	skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/a:1" | sha256sum | cut -d' ' -f1 >"$w/a.digest"
}

# build_hello GO: $BATS_FILE_TMPDIR/hello:t, an umoci-built image whose one
# layer holds a static Go program /hello that prints /etc/message.
build_hello() {
	local gobin=$1 w="$BATS_FILE_TMPDIR"
	set -e
	mkdir -p "$w/hellosrc"
	cat >"$w/hellosrc/main.go" <<'GO'
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
	fmt.Printf("hello from a stowage pull: %s", b)
}
GO
	printf 'module hello\n\ngo 1.21\n' >"$w/hellosrc/go.mod"
	(cd "$w/hellosrc" && CGO_ENABLED=0 GOFLAGS= "$gobin" build -o "$w/hellobin" .)
	cd "$w"
	umoci init --layout hello
	umoci new --image hello:t
	umoci unpack --image hello:t hb
	mkdir -p hb/rootfs/etc
	cp hellobin hb/rootfs/hello
	echo registry >hb/rootfs/etc/message
	umoci repack --image hello:t hb
	umoci config --image hello:t --config.cmd /hello
	rm -rf hb
}

teardown_file() {
	local w="$BATS_FILE_TMPDIR"
	if [ -f "$w/registry-pid" ]; then
		REG_PID=$(cat "$w/registry-pid") REG_DIR="$w/registry" registry_cleanup
	fi
}

setup() {
	local reason
	reason=$(cat "$BATS_FILE_TMPDIR/skip-reason" 2>/dev/null || echo "setup_file did not run")
	if [ -n "$reason" ]; then
		skip "$reason"
	fi
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-registry-test.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR
	export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes
	W="$BATS_FILE_TMPDIR"
	REGISTRY=$(cat "$W/registry-addr")
	REG_PID= REG_DIR= PROXY_PID=
}

teardown() {
	# a registry (and proxy) this test started itself
	registry_cleanup
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# own_registry: a registry for this test alone (it will be killed or
# corrupted), holding the big image as t/big:1.
own_registry() {
	registry_start
	skopeo_push "oci:$W/big:big" t/big:1
}

# chain_diff_ids IMAGE: the diff-digests of its layers, base first.
chain_diff_ids() {
	local l ids=()
	l=$(stowage_q image --json "$1" | jq -r '.[0].layer')
	while [ -n "$l" ] && [ "$l" != null ]; do
		ids=("$(stowage_q layer --json "$l" | jq -r '.[0]["diff-digest"]')" "${ids[@]}")
		l=$(stowage_q layer --json "$l" | jq -r '.[0].parent // empty')
	done
	printf '%s\n' "${ids[@]}"
}

# pull_ok SOURCE [NAME...]: pull quietly; sets image (the ID it printed).
pull_ok() {
	run -0 stowage_q pull --quiet "$@"
	image=${lines[-1]}
	[ -n "$image" ]
}

# store_consistent IDS-FILE: nothing half-visible: no image, and every
# stored layer is complete and one of the image's layers, whose diff
# re-exports to its recorded diff-digest.
store_consistent() {
	local n l d got left
	n=$(stowage_q images --json | jq length)
	if [ "$n" -ne 0 ]; then
		echo "$n images visible after a failed pull"
		return 1
	fi
	for l in $(stowage_q layers --json | jq -r '.[]?.id'); do
		d=$(stowage_q layer --json "$l" | jq -r '.[0]["diff-digest"]')
		if ! grep -qx "$d" "$1"; then
			echo "layer $l has diff-digest $d, not one of the image's"
			return 1
		fi
		got="sha256:$(stowage_q diff -u "$l" | sha256sum | cut -d' ' -f1)"
		if [ "$got" != "$d" ]; then
			echo "layer $l re-exports as $got, recorded $d"
			return 1
		fi
	done
	# no staging left behind once the store was opened again
	left=$(find "$TESTDIR/root" -maxdepth 3 -path '*tempdirs/temp-dir-*')
	if [ -n "$left" ]; then
		echo "staging left behind: $left"
		return 1
	fi
}

@test "registry: pull by tag records names, digests, manifest and config as containers/image does" {
	pull_ok "docker://$REGISTRY/t/a:1"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/a.ids")" ]
	run -0 stowage_q images --json
	jq -e --arg n "$REGISTRY/t/a:1" '.[0].names | index($n)' <<<"$output"
	[ "$(stowage_q image --json "$image" | jq -r '.[0].digest')" = "sha256:$(cat "$W/a.digest")" ]
	# the image ID is the config digest, and the config and manifest are big data
	cfg=$(stowage_q get-image-data "$image" manifest | jq -r .config.digest)
	[ "$cfg" = "sha256:$image" ]
	stowage_q get-image-data "$image" "$cfg" | jq -e '.rootfs.diff_ids | length == 3'
	# layers carry their blob digests and sizes
	top=$(stowage_q image --json "$image" | jq -r '.[0].layer')
	[ "$(stowage_q layer --json "$top" | jq -r '.[0]["compressed-diff-digest"]')" = \
		"$(stowage_q get-image-data "$image" manifest | jq -r '.layers[2].digest')" ]
	# a second pull reuses everything
	pull_ok "docker://$REGISTRY/t/a:1"
	[ "$(stowage_q layers --json | jq length)" -eq 3 ]
}

@test "registry: pull by digest" {
	pull_ok "docker://$REGISTRY/t/a@sha256:$(cat "$W/a.digest")" localhost/by-digest:1
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/a.ids")" ]
	[ "$(stowage_q image --json "$image" | jq -r '.[0].digest')" = "sha256:$(cat "$W/a.digest")" ]
	# an unknown digest or tag fails clearly and stores nothing more
	run ! stowage_q pull --quiet "docker://$REGISTRY/t/a@sha256:$(printf '%064d' 0)"
	[ -n "$output" ]
	run ! stowage_q pull --quiet "docker://$REGISTRY/t/a:no-such-tag"
	[[ "${output,,}" == *"not found"* || "${output,,}" == *unknown* ]]
	[ "$(stowage_q images --json | jq length)" -eq 1 ]
}

@test "registry: a multi-arch index gives this machine's platform, --platform another" {
	[ "$(uname -m)" = x86_64 ] || skip "the fixture's platforms are linux/amd64 and linux/arm64"
	pull_ok "docker://$REGISTRY/t/m:1"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/m-amd64.ids")" ]
	stowage_q get-image-data "$image" "sha256:$image" | jq -e '.architecture == "amd64"'
	pull_ok --platform linux/arm64 "docker://$REGISTRY/t/m:1" localhost/m:arm64
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/m-arm64.ids")" ]
	stowage_q get-image-data "$image" "sha256:$image" | jq -e '.architecture == "arm64"'
	run ! stowage_q pull --quiet --platform linux/s390x "docker://$REGISTRY/t/m:1"
	[[ "$output" == *platform* ]]
}

@test "registry: push of an image from a multi-arch index writes its platform (as podman) with a note; --all writes an index of the stored platforms" {
	[ "$(uname -m)" = x86_64 ] || skip "the fixture's platforms are linux/amd64 and linux/arm64"
	pull_ok "docker://$REGISTRY/t/m:1" localhost/m:1
	amd=$image
	# only this platform stored: --all writes a one-entry index and says
	# what is missing
	run -0 --separate-stderr stowage_q push --all --json localhost/m:1 "docker://$REGISTRY/t/m-one:1"
	[ "$(jq -r '.missing | join(",")' <<<"$output")" = linux/arm64 ]
	[ "$(jq -r '.platforms | length' <<<"$output")" = 1 ]
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/m-one:1"
	[ "$(jq -r '.manifests | map(.platform.architecture) | join(",")' <<<"$output")" = amd64 ]

	pull_ok --platform linux/arm64 "docker://$REGISTRY/t/m:1" localhost/m:arm64
	# without --all: one platform, and a note naming the index and --all
	run -0 stowage_q push localhost/m:1 "docker://$REGISTRY/t/m-single:1"
	[[ "$output" == *"note: localhost/m:1 was pulled from the multi-platform index"*"--all"* ]]
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/m-single:1"
	[ "$(jq -r .config.digest <<<"$output")" = "sha256:$amd" ]

	run -0 stowage_q push --all --quiet localhost/m:1 "docker://$REGISTRY/t/m-all:1"
	idx=${lines[-1]}
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/m-all:1"
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$idx" ]
	[ "$(jq -r .mediaType <<<"$output")" = application/vnd.oci.image.index.v1+json ]
	# the source index's order (arm64 first)
	[ "$(jq -r '.manifests | map(.platform.os + "/" + .platform.architecture) | join(",")' <<<"$output")" = linux/arm64,linux/amd64 ]
	# skopeo copies the whole index back out
	skopeo --policy "$TESTSDIR/../bench/policy.json" copy --quiet --all --src-tls-verify=false "docker://$REGISTRY/t/m-all:1" "oci:$TESTDIR/m-all:x"
	[ "$(jq '.manifests | length' "$TESTDIR/m-all/index.json")" = 1 ]
	# and a fresh store pulls both platforms of it with the original diff IDs
	storage shutdown >/dev/null 2>&1 || true
	rm -rf "$TESTDIR/root" "$TESTDIR/runroot"
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	pull_ok "docker://$REGISTRY/t/m-all:1"
	[ "$image" = "$amd" ]
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/m-amd64.ids")" ]
	pull_ok --platform linux/arm64 "docker://$REGISTRY/t/m-all:1"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/m-arm64.ids")" ]
	# an OCI archive holds the index too; a docker-archive cannot
	run -0 stowage_q push --all --quiet "$image" "oci-archive:$TESTDIR/m.tar:multi"
	pull_ok --platform linux/arm64 "oci-archive:$TESTDIR/m.tar:multi"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/m-arm64.ids")" ]
	run ! stowage_q push --all --quiet "$image" "docker-archive:$TESTDIR/m-docker.tar"
	[[ "$output" == *"docker-archive cannot hold a multi-platform index"* ]]
	[ ! -e "$TESTDIR/m-docker.tar" ]
	# an image that came from no index
	pull_ok "docker://$REGISTRY/t/a:1"
	run ! stowage_q push --all --quiet "$image" "oci:$TESTDIR/plain"
	[[ "$output" == *"not pulled from a multi-platform index"* ]]
}

@test "registry: concurrent pulls of overlapping images into one store both succeed, shared layers stored once" {
	stowage_q pull --quiet "docker://$REGISTRY/t/a:1" >"$TESTDIR/a.out" 2>"$TESTDIR/a.err" &
	pa=$!
	stowage_q pull --quiet "docker://$REGISTRY/t/b:1" >"$TESTDIR/b.out" 2>"$TESTDIR/b.err" &
	pb=$!
	sa=0 sb=0
	wait "$pa" || sa=$?
	wait "$pb" || sb=$?
	if [ "$sa" -ne 0 ] || [ "$sb" -ne 0 ]; then
		cat "$TESTDIR/a.err" "$TESTDIR/b.err"
		false
	fi
	[ "$(chain_diff_ids "$(tail -n1 "$TESTDIR/a.out")")" = "$(cat "$W/a.ids")" ]
	[ "$(chain_diff_ids "$(tail -n1 "$TESTDIR/b.out")")" = "$(cat "$W/b.ids")" ]
	# seeds 21, 22 shared: 4 layers in all
	[ "$(stowage_q layers --json | jq length)" -eq 4 ]
	[ "$(stowage_q images --json | jq length)" -eq 2 ]
}

@test "registry: a SIGKILLed pull leaves nothing half-visible and the next pull succeeds" {
	own_registry
	proxy_start 1000000
	# the binary itself, not through `timeout`: SIGKILL must hit stowage
	"$STORAGE_BINARY" --debug=false --graph "$TESTDIR/root" --run "$TESTDIR/runroot" --storage-driver "$STORAGE_DRIVER" \
		pull --quiet "docker://$PROXY/t/big:1" localhost/big:1 >/dev/null 2>&1 3>&- &
	pid=$!
	proxy_wait_bytes 2000000
	kill -9 "$pid"
	wait "$pid" || true
	store_consistent "$W/big.ids"
	# the killed holder's locks do not block the next pull
	STORAGE_TIMEOUT=120 pull_ok "docker://$REGISTRY/t/big:1" localhost/big:1
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/big.ids")" ]
	[ "$(stowage_q layers --json | jq length)" -eq 3 ]
}

@test "registry: a tampered blob is a digest mismatch and nothing is committed" {
	own_registry
	base=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/t/big:1" | jq -r '.Layers[0]')
	blob=$(registry_blob_path "$base")
	[ -f "$blob" ]
	# same size, different bytes in the middle
	printf 'tampered by stowage tests' | dd of="$blob" bs=1 seek=$(($(stat -c %s "$blob") / 2)) conv=notrunc status=none
	run ! stowage_q pull --quiet "docker://$REGISTRY/t/big:1" localhost/big:1
	echo "$output"
	[[ "${output,,}" == *"digest mismatch"* || "${output,,}" == *checksum* ]]
	[[ "$output" == *"${base#sha256:}"* || "$output" == *"$base"* ]]
	[[ "$output" != *panic* ]]
	# the base layer is bad, so no layer can have been committed
	[ "$(stowage_q layers --json | jq length)" -eq 0 ]
	store_consistent "$W/big.ids"
}

@test "registry: a registry killed mid-transfer gives a clean error and a consistent store" {
	own_registry
	proxy_start 1000000
	stowage_q pull --quiet "docker://$PROXY/t/big:1" localhost/big:1 >"$TESTDIR/out" 2>"$TESTDIR/err" 3>&- &
	pid=$!
	proxy_wait_bytes 2000000
	dir=$REG_DIR
	registry_stop
	st=0
	wait "$pid" || st=$?
	cat "$TESTDIR/err"
	[ "$st" -ne 0 ]
	[ "$st" -lt 128 ] # an error exit, not a crash or the test's timeout
	[ -s "$TESTDIR/err" ]
	! grep -q panic "$TESTDIR/err"
	store_consistent "$W/big.ids"
	# the registry comes back (on another port): the pull completes
	proxy_stop
	registry_start "$dir"
	pull_ok "docker://$REGISTRY/t/big:1" localhost/big:1
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/big.ids")" ]
}

@test "registry: stowage push to the registry and pull back gives the same image" {
	pull_ok "docker://$REGISTRY/t/a:1" localhost/a:1
	first=$image
	run -0 stowage_q push --quiet localhost/a:1 "docker://$REGISTRY/t/pushed:1"
	pushed=${lines[-1]}
	[[ "$pushed" == sha256:* ]]
	# the registry has it under that digest, with the same config
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/pushed:1"
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$pushed" ]
	[ "$(jq -r .config.digest <<<"$output")" = "sha256:$first" ]
	# pulled into a fresh store: same image ID and diff IDs
	storage shutdown >/dev/null 2>&1 || true
	rm -rf "$TESTDIR/root" "$TESTDIR/runroot"
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	pull_ok "docker://$REGISTRY/t/pushed:1"
	[ "$image" = "$first" ]
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/a.ids")" ]
	# zstd layers too, by digest
	run -0 stowage_q push --quiet --compression zstd "$image" "docker://$REGISTRY/t/pushed:zstd"
	z=${lines[-1]}
	run -0 skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/t/pushed@$z"
	[ "$(jq -r '.layers[0].mediaType' <<<"$output")" = application/vnd.oci.image.layer.v1.tar+zstd ]
}

# pod ARGS...: podman 4.3 on this test's (overlay) store.
pod() {
	timeout -k 10 120 podman --root "$TESTDIR/root" --runroot "$TESTDIR/runroot" \
		--storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
		--tmpdir "$TESTDIR/podman-tmp" "$@"
}

@test "registry: podman runs a command in an image stowage pulled from the registry" {
	if [ -s "$W/hello-skip" ]; then
		skip "no hello image: $(cat "$W/hello-skip")"
	fi
	command -v podman >/dev/null || skip "podman not installed"
	STORAGE_DRIVER=overlay
	require_overlay
	mkdir -p "$TESTDIR/podman-tmp"
	if [ ! -e /etc/containers/policy.json ]; then
		mkdir -p /etc/containers
		cp "$TESTSDIR/../bench/policy.json" /etc/containers/policy.json
	fi
	pull_ok "docker://$REGISTRY/t/hello:1" localhost/hello:1
	run -0 stowage_q shutdown
	run -0 pod images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	[[ "$output" == *"localhost/hello:1 ${image:0:12}"* ]]
	run -0 pod image inspect localhost/hello:1
	[ "$(jq -r '.[0].Config.Cmd[0]' <<<"$output")" = /hello ]
	# crun, or runc where crun refuses this hybrid-cgroup VM; limits below
	# the host's (raising them needs CAP_SYS_RESOURCE here)
	local rt
	for rt in crun runc; do
		command -v "$rt" >/dev/null || continue
		run pod --runtime "$rt" run --rm --network none \
			--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/hello:1
		[ "$status" -eq 0 ] && break
		echo "podman run with $rt: $output"
	done
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "hello from a stowage pull: registry" ]
	# podman used the layers stowage stored: nothing new was pulled or added
	[ "$(stowage_q layers --json | jq length)" -eq 1 ]
}

# alice's password "s3cret", hashed once with bcrypt (what docker-registry's
# htpasswd auth reads; `htpasswd -B` makes the same kind of line), so the
# test needs no hashing tool.
HTPASSWD_LINE='alice:$2b$12$6vjOIwMvPWNnNKpafRVai.MqOyKGbTkPOh6CVvA96MUJcP/8/kJ9m'

@test "registry: basic auth: none is a clear error; the default auth.json, REGISTRY_AUTH_FILE, docker's config.json and --authfile, in podman's order" {
	echo "$HTPASSWD_LINE" >"$TESTDIR/htpasswd"
	REG_HTPASSWD="$TESTDIR/htpasswd" registry_start
	skopeo_push "oci:$W/oci:a" t/private:1 --dest-creds alice:s3cret
	# no auth file anywhere: every location points into the test dir
	mkdir -p "$TESTDIR/home" "$TESTDIR/xdg"
	export HOME="$TESTDIR/home" XDG_RUNTIME_DIR="$TESTDIR/xdg"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME
	ref="docker://$REGISTRY/t/private:1"
	run ! stowage_q pull --quiet "$ref"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" == *"$XDG_RUNTIME_DIR/containers/auth.json"* ]]
	[ "$(stowage_q images --json | jq length)" -eq 0 ]
	[ "$(stowage_q layers --json | jq length)" -eq 0 ]

	# skopeo login writes podman's default file: the pull finds it
	skopeo login --tls-verify=false -u alice -p s3cret "$REGISTRY"
	[ -s "$XDG_RUNTIME_DIR/containers/auth.json" ]
	pull_ok "$ref"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/a.ids")" ]

	# a wrong password, and $REGISTRY_AUTH_FILE replacing the search
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$(printf alice:wrong | base64)" >"$TESTDIR/wrong.json"
	export REGISTRY_AUTH_FILE="$TESTDIR/wrong.json"
	run ! stowage_q pull --quiet "$ref"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" == *"$TESTDIR/wrong.json"* ]]
	mv "$XDG_RUNTIME_DIR/containers/auth.json" "$TESTDIR/auth.json"
	export REGISTRY_AUTH_FILE="$TESTDIR/auth.json"
	pull_ok "$ref"

	# docker's config.json, when no containers auth.json has the registry
	unset REGISTRY_AUTH_FILE
	mkdir -p "$HOME/.docker"
	cp "$TESTDIR/auth.json" "$HOME/.docker/config.json"
	pull_ok "$ref"
	# the containers file comes first: its wrong password wins
	mkdir -p "$HOME/.config/containers"
	cp "$TESTDIR/wrong.json" "$HOME/.config/containers/auth.json"
	run ! stowage_q pull --quiet "$ref"
	[[ "$output" == *"registry authentication failed"* ]]

	# --authfile reads that file alone
	run ! stowage_q pull --quiet --authfile "$TESTDIR/wrong.json" "$ref"
	[[ "$output" == *"registry authentication failed"* ]]
	pull_ok --authfile "$TESTDIR/auth.json" "$ref"
	[ "$(stowage_q images --json | jq length)" -eq 1 ]

	# stowage push reads the same files; a refused push is the same
	# error as a refused pull, naming the files searched
	run ! stowage_q push --quiet "$image" "docker://$REGISTRY/t/pushed:1"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" == *"$HOME/.config/containers/auth.json"* ]]
	[[ "$output" == *"$HOME/.dockercfg"* ]]
	run ! stowage_q push --quiet --authfile "$TESTDIR/wrong.json" "$image" "docker://$REGISTRY/t/pushed:1"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" == *"$TESTDIR/wrong.json"* ]]
	run -0 stowage_q push --quiet --authfile "$TESTDIR/auth.json" "$image" "docker://$REGISTRY/t/pushed:0"
	export REGISTRY_AUTH_FILE="$TESTDIR/auth.json"
	run -0 stowage_q push --quiet "$image" "docker://$REGISTRY/t/pushed:1"
	skopeo inspect --raw --tls-verify=false --creds alice:s3cret "docker://$REGISTRY/t/pushed:1" >/dev/null
	skopeo inspect --raw --tls-verify=false --creds alice:s3cret "docker://$REGISTRY/t/pushed:0" >/dev/null
}

@test "registry: basic auth from the legacy ~/.dockercfg (as skopeo) and from docker's credsStore helper (which skopeo ignores)" {
	echo "$HTPASSWD_LINE" >"$TESTDIR/htpasswd"
	REG_HTPASSWD="$TESTDIR/htpasswd" registry_start
	skopeo_push "oci:$W/oci:a" t/private:1 --dest-creds alice:s3cret
	mkdir -p "$TESTDIR/home/.docker" "$TESTDIR/xdg" "$TESTDIR/bin"
	export HOME="$TESTDIR/home" XDG_RUNTIME_DIR="$TESTDIR/xdg"
	unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME
	ref="docker://$REGISTRY/t/private:1"
	run ! stowage_q pull --quiet "$ref"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" == *"$HOME/.dockercfg"* ]]

	# docker's pre-1.7 format: no "auths" wrapper
	printf '{"%s":{"auth":"%s","email":"alice@example.com"}}\n' "$REGISTRY" "$(printf alice:s3cret | base64)" >"$HOME/.dockercfg"
	skopeo inspect --raw --tls-verify=false "$ref" >/dev/null
	pull_ok "$ref"
	[ "$(chain_diff_ids "$image")" = "$(cat "$W/a.ids")" ]
	rm "$HOME/.dockercfg"

	# credsStore: docker-credential-xyz get, the server on stdin
	cat >"$TESTDIR/bin/docker-credential-xyz" <<-HELPER
		#!/bin/sh
		[ "\$1" = get ] || exit 1
		read -r server
		echo "\$server" >>"$TESTDIR/asked"
		printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}\n' "\$server"
	HELPER
	chmod +x "$TESTDIR/bin/docker-credential-xyz"
	echo '{"credsStore":"xyz","auths":{}}' >"$HOME/.docker/config.json"
	export PATH="$TESTDIR/bin:$PATH"
	# containers/image 5.23 ignores credsStore: skopeo is refused
	run ! skopeo inspect --raw --tls-verify=false "$ref"
	[ ! -e "$TESTDIR/asked" ]
	stowage_q delete-image "$image" >/dev/null
	pull_ok "$ref"
	grep -qx "$REGISTRY" "$TESTDIR/asked"
	# push asks it too
	run -0 stowage_q push --quiet "$image" "docker://$REGISTRY/t/pushed-helper:1"
	skopeo inspect --raw --tls-verify=false --creds alice:s3cret "docker://$REGISTRY/t/pushed-helper:1" >/dev/null

	# a credsStore whose helper is not installed is skipped: not an error
	echo '{"credsStore":"desktop","auths":{}}' >"$HOME/.docker/config.json"
	run ! stowage_q pull --quiet "$ref"
	[[ "$output" == *"registry authentication failed"* ]]
	[[ "$output" != *"docker-credential-desktop"* ]]
}
