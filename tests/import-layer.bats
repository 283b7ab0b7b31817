#!/usr/bin/env bats
# import-layer: create a layer from a tar stream in any supported compression.

load helpers

# check_imported LAYER TAR: LAYER's recorded uncompressed digest and size match
# TAR, its uncompressed diff is TAR byte for byte, and the mounted content
# matches what tar extracts.
check_imported() {
	local layer=$1 tar=$2 json digest size
	json=$(storage --debug=false layer --json "$layer")
	digest=$(jq -r '.[0]["diff-digest"]' <<<"$json")
	size=$(jq -r '.[0]["diff-size"]' <<<"$json")
	[ "$digest" = "sha256:$(sha256sum <"$tar" | cut -d' ' -f1)" ]
	[ "$size" -eq "$(stat -c %s "$tar")" ]
	# the stored diff is byte-identical to the input
	storage --debug=false diff -u -f "$TESTDIR/out.tar" "$layer"
	cmp "$tar" "$TESTDIR/out.tar"
	storage --debug=false diff -u "$layer" >"$TESTDIR/out2.tar"
	cmp "$tar" "$TESTDIR/out2.tar"
	# mounted content equals an extraction by tar
	rm -rf "$TESTDIR/x" && mkdir "$TESTDIR/x"
	tar -C "$TESTDIR/x" -xf "$tar"
	mnt=$(mount_layer "$layer")
	diff -r --no-dereference "$TESTDIR/x" "$mnt"
	[ "$(stat -c %a "$mnt/usr/bin/tool")" = 755 ]
	[ "$(readlink "$mnt/etc/app/link")" = ../app/hello.txt ]
	[ "$(stat -c %i "$mnt/usr/bin/tool")" = "$(stat -c %i "$mnt/usr/bin/tool-hardlink")" ]
	[ "$(stat -c %Y "$mnt/etc/app/hello.txt")" = "$(date -d '2020-01-02 03:04:05' +%s)" ]
	storage --debug=false unmount "$layer" >/dev/null
}

@test "import-layer: uncompressed tar from a file" {
	make_tar "$TESTDIR/layer.tar"
	run -0 storage --debug=false import-layer -f "$TESTDIR/layer.tar"
	[[ "$output" =~ ^[0-9a-f]{64}$ ]]
	layer=$output
	check_imported "$layer" "$TESTDIR/layer.tar"
	json=$(storage --debug=false layer --json "$layer")
	# uidset/gidset of a root-owned tar
	[ "$(jq -c '.[0].uidset' <<<"$json")" = "[0]" ]
	[ "$(jq -c '.[0].gidset' <<<"$json")" = "[0]" ]
	# compressed digest of an uncompressed input is the same digest
	[ "$(jq -r '.[0]["compressed-diff-digest"]' <<<"$json")" = "$(jq -r '.[0]["diff-digest"]' <<<"$json")" ]
	[ "$(jq -r '.[0].compression // 0' <<<"$json")" -eq 0 ]
}

@test "import-layer: from stdin, with names and a parent" {
	make_tar "$TESTDIR/layer.tar"
	parent=$(new_layer)
	run -0 storage --debug=false import-layer -n imported "$parent" <"$TESTDIR/layer.tar"
	layer=${lines[0]}
	[ "${lines[1]}" = $'\timported' ]
	run -0 storage --debug=false layer imported
	[[ "$output" == *"Parent: $parent"* ]]
	check_imported "$layer" "$TESTDIR/layer.tar"
}

@test "import-layer: gzip, bzip2, xz and zstd streams are detected" {
	make_tar "$TESTDIR/layer.tar"
	for c in gzip bzip2 xz zstd; do
		case $c in
		gzip) ext=gz; code=2 ;;
		bzip2) ext=bz2; code=1 ;;
		xz) ext=xz; code=3 ;;
		zstd) ext=zst; code=4 ;;
		esac
		$c -c "$TESTDIR/layer.tar" >"$TESTDIR/layer.tar.$ext"
		layer=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar.$ext")
		echo "compression $c: layer $layer"
		check_imported "$layer" "$TESTDIR/layer.tar"
		json=$(storage --debug=false layer --json "$layer")
		[ "$(jq -r '.[0]["compressed-diff-digest"]' <<<"$json")" = "sha256:$(sha256sum <"$TESTDIR/layer.tar.$ext" | cut -d' ' -f1)" ]
		[ "$(jq -r '.[0]["compressed-size"]' <<<"$json")" -eq "$(stat -c %s "$TESTDIR/layer.tar.$ext")" ]
		[ "$(jq -r '.[0].compression' <<<"$json")" -eq "$code" ]
	done
}

@test "import-layer: a gzip layer's default diff keeps gzip compression" {
	make_tar "$TESTDIR/layer.tar"
	gzip -c "$TESTDIR/layer.tar" >"$TESTDIR/layer.tar.gz"
	layer=$(storage --debug=false import-layer -f "$TESTDIR/layer.tar.gz")
	storage --debug=false diff -f "$TESTDIR/d.gz" "$layer"
	gzip -t "$TESTDIR/d.gz"
	gzip -dc "$TESTDIR/d.gz" | cmp - "$TESTDIR/layer.tar"
	storage --debug=false diff -c "$layer" | gzip -dc | cmp - "$TESTDIR/layer.tar"
}

@test "import-layer: file owners, modes and whiteouts" {
	require_root
	src="$TESTDIR/src"
	mkdir -p "$src/owned" "$src/sticky"
	echo data >"$src/owned/file"
	chown -R 1234:5678 "$src/owned"
	chmod 1777 "$src/sticky"
	chmod 0640 "$src/owned/file"
	tar --numeric-owner -C "$src" -cf "$TESTDIR/l1.tar" owned sticky
	lower=$(storage --debug=false import-layer -f "$TESTDIR/l1.tar")
	# an upper layer that deletes owned/file through a whiteout
	mkdir -p "$TESTDIR/up/owned"
	touch "$TESTDIR/up/owned/.wh.file"
	tar --numeric-owner -C "$TESTDIR/up" -cf "$TESTDIR/l2.tar" owned
	upper=$(storage --debug=false import-layer -f "$TESTDIR/l2.tar" "$lower")

	json=$(storage --debug=false layer --json "$lower")
	[ "$(jq -c '.[0].uidset' <<<"$json")" = "[0,1234]" ]
	[ "$(jq -c '.[0].gidset' <<<"$json")" = "[0,5678]" ]

	mnt=$(mount_layer "$lower")
	[ "$(stat -c %u:%g:%a "$mnt/owned/file")" = "1234:5678:640" ]
	[ "$(stat -c %a "$mnt/sticky")" = 1777 ]
	storage --debug=false unmount "$lower" >/dev/null

	mnt=$(mount_layer "$upper")
	[ -d "$mnt/owned" ]
	[ ! -e "$mnt/owned/file" ]
	[ ! -e "$mnt/owned/.wh.file" ]
	storage --debug=false unmount "$upper" >/dev/null

	run -0 storage --debug=false changes "$upper"
	[[ "$output" == *'Delete "/owned/file"'* ]]
	# the upper diff carries the whiteout again
	storage --debug=false diff -u "$upper" | tar -t | grep -qx 'owned/.wh.file'
}

@test "import-layer: junk input fails and leaves no layer behind" {
	echo "this is not a tar file, not even close, it is junk" >"$TESTDIR/junk"
	run -1 storage --debug=false import-layer -f "$TESTDIR/junk"
	[[ "$output" == *"invalid tar header"* || "$output" == *"unexpected EOF"* ]]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	run -1 storage --debug=false import-layer -f "$TESTDIR/does-not-exist"
	run -0 storage --debug=false layers
	[ "$output" = "" ]
}

@test "import-layer: a truncated stream fails and leaves no layer behind" {
	make_tar "$TESTDIR/layer.tar"
	head -c 3000 "$TESTDIR/layer.tar" >"$TESTDIR/short.tar"
	run -1 storage --debug=false import-layer -f "$TESTDIR/short.tar"
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	gzip -c "$TESTDIR/layer.tar" | head -c 200 >"$TESTDIR/short.tar.gz"
	run -1 storage --debug=false import-layer -f "$TESTDIR/short.tar.gz"
	[[ "$output" == *"unexpected EOF"* ]]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
}

@test "import-layer: hostile paths are never written outside the layer" {
	require_root
	# ../ escape and an absolute path
	python3 - "$TESTDIR/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for name in ("../escaped-dotdot", "/escaped-abs", "a/../../escaped-mid"):
        data = b"evil\n"
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
PY
	storage --debug=false import-layer -f "$TESTDIR/evil.tar" || true
	[ ! -e "$TESTDIR/escaped-dotdot" ]
	[ ! -e "$TESTDIR/root/escaped-dotdot" ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}/escaped-dotdot" ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}/dir/escaped-dotdot" ]
	[ ! -e /escaped-abs ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}/dir/escaped-mid" ]
	# a symlink pointing outside, then a file written through it
	python3 - "$TESTDIR/evil2.tar" "$TESTDIR/outside" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    ti = tarfile.TarInfo("sneaky")
    ti.type = tarfile.SYMTYPE
    ti.linkname = sys.argv[2]
    t.addfile(ti)
    data = b"evil\n"
    ti = tarfile.TarInfo("sneaky/planted")
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
PY
	mkdir -p "$TESTDIR/outside"
	storage --debug=false import-layer -f "$TESTDIR/evil2.tar" || true
	[ ! -e "$TESTDIR/outside/planted" ]
}

@test "import-layer: a ./ entry's metadata is applied to the layer root, ./ names survive in the diff" {
	require_root
	if [ "$STORAGE_DRIVER" = overlay ]; then
		# verified against containers-storage 1.43 on overlay: it keeps
		# the diff root it created (0555 root:root) too
		skip "overlay keeps the layer root's own mode and owner, as containers-storage 1.43 does"
	fi
	src="$TESTDIR/dotsrc"
	mkdir -p "$src/sub"
	echo a >"$src/sub/f"
	chmod 0711 "$src"
	chown 12:34 "$src"
	tar --numeric-owner -C "$src" -cf "$TESTDIR/dot.tar" .
	layer=$(storage --debug=false import-layer -f "$TESTDIR/dot.tar")
	mnt=$(mount_layer "$layer")
	[ "$(stat -c %a:%u:%g "$mnt")" = 711:12:34 ]
	[ "$(cat "$mnt/sub/f")" = a ]
	storage --debug=false unmount "$layer" >/dev/null
	storage --debug=false diff -u "$layer" | cmp - "$TESTDIR/dot.tar"
	# an empty layer's root is 0555, as upstream's vfs makes it
	empty=$(new_layer)
	mnt=$(mount_layer "$empty")
	[ "$(stat -c %a "$mnt")" = 555 ]
	storage --debug=false unmount "$empty" >/dev/null
}
