#!/usr/bin/env bats
# Differential tests against the reference containers-storage (Debian's 1.43):
# a vfs store written by one tool must be read, listed, mounted and diffed
# identically by the other, and both tools must see each other's changes
# when they take turns on one store.

load helpers

setup() {
	require_reference
	if [ "$STORAGE_DRIVER" != vfs ]; then
		skip "differential tests cover vfs (the reference's overlay differs)"
	fi
	if [ "$(readlink -f "$STORAGE_BINARY")" = "$(readlink -f "$REFERENCE_BINARY")" ]; then
		skip "STORAGE_BINARY is the reference itself"
	fi
	TESTDIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-diff.XXXXXX")
	mkdir -p "$TESTDIR/root" "$TESTDIR/runroot"
	export TESTDIR
}

teardown() {
	if [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ]; then
		STORAGE_TIMEOUT=60 storage wipe >/dev/null 2>&1 || true
		STORAGE_TIMEOUT=60 storage shutdown >/dev/null 2>&1 || true
		unmount_below "$TESTDIR"
		rm -rf "$TESTDIR"
	fi
}

# same ARGS...: stdout and exit status of ARGS must be equal for both tools.
same() {
	local so ro sr rr
	so=$(storage --debug=false "$@" 2>"$TESTDIR/same.stowage.err") && sr=0 || sr=$?
	ro=$(reference "$@" 2>"$TESTDIR/same.reference.err") && rr=0 || rr=$?
	if [ "$so" != "$ro" ] || [ "$sr" != "$rr" ]; then
		echo "outputs of '$*' differ:"
		echo "--- stowage (exit $sr):"
		printf '%s\n' "$so"
		cat "$TESTDIR/same.stowage.err"
		echo "--- containers-storage (exit $rr):"
		printf '%s\n' "$ro"
		cat "$TESTDIR/same.reference.err"
		return 1
	fi
}

# same_sorted ARGS...: like same, ignoring line order (map iteration).
same_sorted() {
	local so ro
	so=$(storage --debug=false "$@" 2>&1 | sort)
	ro=$(reference "$@" 2>&1 | sort)
	if [ "$so" != "$ro" ]; then
		echo "outputs of '$*' differ (sorted):"
		diff <(printf '%s\n' "$ro") <(printf '%s\n' "$so") || true
		return 1
	fi
}

# same_json ARGS...: JSON output of both tools equal after normalising
# (sorted keys, duplicates dropped: v1.43's `layer -j` repeats records).
same_json() {
	local so ro
	so=$(storage --debug=false "$@" | jq -S 'if type == "array" then unique else . end') || return 1
	ro=$(reference "$@" | jq -S 'if type == "array" then unique else . end') || return 1
	if [ "$so" != "$ro" ]; then
		echo "JSON of '$*' differs:"
		diff <(printf '%s\n' "$ro") <(printf '%s\n' "$so") || true
		return 1
	fi
}

# rich_tar OUT: a layer tar with regular files, directories, relative and
# absolute symlinks, hard links, a fifo, a device node, an xattr, a long
# name, odd modes, owners and times.
rich_tar() {
	local src="$TESTDIR/rich"
	rm -rf "$src"
	mkdir -p "$src/etc/app" "$src/usr/bin" "$src/usr/share/empty" "$src/var/lib/owned" "$src/dev"
	printf 'hello world\n' >"$src/etc/app/hello.txt"
	: >"$src/etc/app/empty"
	head -c 300000 /dev/urandom >"$src/usr/bin/big"
	createrandom "$src/usr/bin/tool" 5000
	chmod 4755 "$src/usr/bin/tool"
	ln "$src/usr/bin/tool" "$src/usr/bin/tool-hardlink"
	ln -s ../app/hello.txt "$src/etc/app/rel-link"
	ln -s /etc/app/hello.txt "$src/etc/app/abs-link"
	ln -s /nonexistent/target "$src/etc/app/dangling"
	mkfifo "$src/var/lib/fifo"
	mknod "$src/dev/null-ish" c 1 3 2>/dev/null || true
	echo owned >"$src/var/lib/owned/file"
	chown -R 1234:5678 "$src/var/lib/owned"
	chmod 0700 "$src/var/lib/owned"
	local long
	long=$(printf 'x%.0s' $(seq 1 150))
	echo long >"$src/usr/share/$long"
	echo unicode >"$src/usr/share/ünïcödé"
	setfattr -n user.stowage -v test-value "$src/etc/app/hello.txt" 2>/dev/null || true
	find "$src" -exec touch -h -d '2021-06-07 08:09:10' {} +
	tar --format=pax --xattrs --sort=name --numeric-owner -C "$src" -cf "$1" etc usr var dev
	rm -rf "$src"
}

# tree_listing DIR: every entry's path, owner, mode, type, link target, size,
# device numbers, mtime and (for regular files) sha256, sorted.
tree_listing() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 -printf '%p %U:%G %m %y %l %s %T@\n' | sort
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum
		find . -type c -print0 | sort -z | xargs -0 -r stat -c '%n %t:%T'
	)
}

# write_store TOOL: build the scenario store with TOOL (storage or
# reference). Sets base, child, image, container, and writes layer.tar.
write_store() {
	local tool=$1 mnt
	rich_tar "$TESTDIR/layer.tar"
	base=$($tool --debug=false import-layer -n base-layer -f "$TESTDIR/layer.tar")
	base=${base%%$'\n'*}
	child=$($tool --debug=false create-layer -n child-layer "$base")
	child=${child%%$'\n'*}
	mnt=$($tool --debug=false mount "$child")
	echo "added by $tool" >"$mnt/etc/app/added"
	rm "$mnt/etc/app/empty"
	echo "changed" >>"$mnt/etc/app/hello.txt"
	$tool --debug=false unmount "$child" >/dev/null
	image=$($tool --debug=false create-image -n diff-image -n diff-image:tag -m image-meta "$child")
	image=${image%%$'\n'*}
	createrandom "$TESTDIR/item1" 256
	createrandom "$TESTDIR/item2" 1000
	printf '{"schemaVersion":2}' >"$TESTDIR/manifest"
	$tool --debug=false set-image-data -f "$TESTDIR/item1" "$image" item1
	$tool --debug=false set-image-data -f "$TESTDIR/manifest" "$image" manifest
	$tool --debug=false set-image-data -f "$TESTDIR/item2" "$image" "sha256:Odd/Key"
	container=$($tool --debug=false create-container -n diff-container -m container-meta "$image")
	container=${container%%$'\n'*}
	$tool --debug=false set-container-data -f "$TESTDIR/item2" "$container" citem
	$tool --debug=false set-layer-data -f "$TESTDIR/item1" "$base" litem
	$tool --debug=false add-names -n extra-name "$image"
	$tool --debug=false set-metadata -m layer-meta "$base"
	$tool --debug=false shutdown
}

# check_reader TOOL: TOOL reads the scenario store correctly.
check_reader() {
	local tool=$1 mnt
	# the imported layer's diff is the original tar, byte for byte
	$tool --debug=false diff -u "$base" >"$TESTDIR/diff.tar"
	cmp "$TESTDIR/layer.tar" "$TESTDIR/diff.tar"
	$tool --debug=false diff -u -f "$TESTDIR/diff2.tar" "$base"
	cmp "$TESTDIR/layer.tar" "$TESTDIR/diff2.tar"
	json=$($tool --debug=false layer --json "$base")
	[ "$(jq -r '.[0]["diff-digest"]' <<<"$json")" = "sha256:$(sha256sum <"$TESTDIR/layer.tar" | cut -d' ' -f1)" ]
	[ "$(jq -r '.[0]["diff-size"]' <<<"$json")" -eq "$(stat -c %s "$TESTDIR/layer.tar")" ]
	# mounted content equals what tar extracts
	rm -rf "$TESTDIR/x" && mkdir "$TESTDIR/x"
	tar --xattrs --numeric-owner -C "$TESTDIR/x" -xpf "$TESTDIR/layer.tar"
	mnt=$($tool --debug=false mount "$base")
	tree_listing "$TESTDIR/x" >"$TESTDIR/x.list"
	tree_listing "$mnt" >"$TESTDIR/mnt.list"
	diff "$TESTDIR/x.list" "$TESTDIR/mnt.list"
	[ "$(stat -c %i "$mnt/usr/bin/tool")" = "$(stat -c %i "$mnt/usr/bin/tool-hardlink")" ]
	if getfattr -n user.stowage "$TESTDIR/x/etc/app/hello.txt" >/dev/null 2>&1; then
		[ "$(getfattr --only-values -n user.stowage "$mnt/etc/app/hello.txt")" = test-value ]
	fi
	$tool --debug=false unmount "$base" >/dev/null
	# the child layer: changes and a diff that tar understands
	run -0 $tool --debug=false changes "$child"
	[[ "$output" == *'Add "/etc/app/added"'* ]]
	[[ "$output" == *'Delete "/etc/app/empty"'* ]]
	[[ "$output" == *'Modify "/etc/app/hello.txt"'* ]]
	mnt=$($tool --debug=false mount "$child")
	[ "$(cat "$mnt/etc/app/added")" = "added by $writer" ]
	[ ! -e "$mnt/etc/app/empty" ]
	[ "$(tail -n 1 "$mnt/etc/app/hello.txt")" = changed ]
	$tool --debug=false unmount "$child" >/dev/null
	$tool --debug=false diff -u "$child" | tar -t | sort >"$TESTDIR/child.list"
	grep -qx 'etc/app/.wh.empty' "$TESTDIR/child.list"
	grep -qx 'etc/app/added' "$TESTDIR/child.list"
	# names, metadata and data items
	run -0 $tool --debug=false get-names "$image"
	[[ "$output" == *diff-image* && "$output" == *extra-name* ]]
	run -0 $tool --debug=false metadata -q "$image"
	[ "$output" = image-meta ]
	run -0 $tool --debug=false metadata -q "$base"
	[ "$output" = layer-meta ]
	$tool --debug=false get-image-data "$image" item1 | cmp - "$TESTDIR/item1"
	$tool --debug=false get-image-data "$image" "sha256:Odd/Key" | cmp - "$TESTDIR/item2"
	$tool --debug=false get-container-data "$container" citem | cmp - "$TESTDIR/item2"
	$tool --debug=false get-layer-data "$base" litem | cmp - "$TESTDIR/item1"
	run -0 $tool --debug=false get-image-data-digest "$image" manifest
	md="sha256:$(sha256sum <"$TESTDIR/manifest" | cut -d' ' -f1)"
	[ "$output" = "$md" ]
	run -0 $tool --debug=false images-by-digest -q "$md"
	[ "$output" = "$image" ]
	# the container mounts with the image content plus its own layer
	mnt=$($tool --debug=false mount "$container")
	[ "$(cat "$mnt/etc/app/added")" = "added by $writer" ]
	$tool --debug=false unmount "$container" >/dev/null
	$tool --debug=false shutdown
}

# compare_listings: both tools print the same for every listing command.
compare_listings() {
	same layers
	same layers -t
	same images
	same containers
	same layer "$base" "$child"
	same image "$image"
	same container "$container"
	same metadata "$base" "$image" "$container"
	same list-image-data "$image"
	same list-container-data "$container"
	same list-layer-data "$base"
	same get-names "$image"
	same get-image-data-size "$image" "sha256:Odd/Key"
	same get-image-data-digest "$image" manifest
	same get-container-data-digest "$container" citem
	same_sorted exists "$base" "$image" "$container" diff-container
	same diffsize "$base"
	same diffsize "$child"
	run -0 bash -c "$(declare -f storage reference); TESTDIR='$TESTDIR' STORAGE_BINARY='$STORAGE_BINARY' REFERENCE_BINARY='$REFERENCE_BINARY' STORAGE_DRIVER='$STORAGE_DRIVER'; storage --debug=false changes '$child' | sort >'$TESTDIR/c1'; reference changes '$child' | sort >'$TESTDIR/c2'"
	diff "$TESTDIR/c2" "$TESTDIR/c1"
	same_json layers --json
	same_json images --json
	same_json containers --json
	same_json layer --json "$base" "$child"
	same_json image --json "$image"
	same_json container --json "$container"
}

@test "differential: a store written by stowage is read by containers-storage" {
	require_root
	writer=storage
	write_store storage
	check_reader reference
	compare_listings
	# containers-storage can keep using the store: layers, images, deletion
	run -0 reference create-layer "$child"
	grandchild=${lines[0]}
	run -0 reference delete-layer "$grandchild"
	run -0 reference delete-container "$container"
	# the image's unused layer chain goes with it
	run -0 reference delete-image "$image"
	run -0 reference layers
	[ "$output" = "" ]
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	run -0 storage --debug=false images
	[ "$output" = "" ]
	[ -z "$(ls -A "$TESTDIR/root/vfs/dir")" ]
}

@test "differential: a store written by containers-storage is read by stowage" {
	require_root
	writer=reference
	write_store reference
	check_reader storage
	compare_listings
	# stowage can keep using the store
	grandchild=$(new_layer "$child")
	run -0 storage --debug=false delete-layer "$grandchild"
	run -0 storage --debug=false delete-container "$container"
	run -0 storage --debug=false delete-image "$image"
	run -0 reference layers
	[ "$output" = "" ]
	run -0 reference images
	[ "$output" = "" ]
	[ -z "$(ls -A "$TESTDIR/root/vfs/dir")" ]
}

@test "differential: the tar-split written by each tool reassembles in the other" {
	require_root
	rich_tar "$TESTDIR/layer.tar"
	gzip -c "$TESTDIR/layer.tar" >"$TESTDIR/layer.tar.gz"
	zstd -q -c "$TESTDIR/layer.tar" >"$TESTDIR/layer.tar.zst"
	for f in layer.tar layer.tar.gz layer.tar.zst; do
		s=$(storage --debug=false import-layer -f "$TESTDIR/$f")
		r=$(reference import-layer -f "$TESTDIR/$f")
		reference diff -u "$s" | cmp - "$TESTDIR/layer.tar"
		storage --debug=false diff -u "$r" | cmp - "$TESTDIR/layer.tar"
		same_json layer --json "$s"
		same_json layer --json "$r"
		# the recorded digests and sizes agree between the tools
		[ "$(storage --debug=false layer --json "$s" | jq -c '.[0] | [.["diff-digest"], .["diff-size"], .["compressed-diff-digest"], .["compressed-size"], .compression, .uidset, .gidset]')" = \
			"$(reference layer --json "$r" | jq -c '.[0] | [.["diff-digest"], .["diff-size"], .["compressed-diff-digest"], .["compressed-size"], .compression, .uidset, .gidset]')" ]
	done
}

@test "differential: both tools take turns on one store and see each other's changes" {
	layers_lock="$TESTDIR/root/vfs-layers/layers.lock"
	images_lock="$TESTDIR/root/vfs-images/images.lock"
	a=$(new_layer -n from-stowage)
	t0=$(lock_token "$layers_lock")
	run -0 reference layers
	[ "${lines[0]}" = "$a" ]
	run -0 reference add-names -n added-by-reference "$a"
	t1=$(lock_token "$layers_lock")
	[ "$t0" != "$t1" ]
	run -0 storage --debug=false get-names "$a"
	[[ "$output" == *from-stowage* && "$output" == *added-by-reference* ]]
	b=$(reference create-layer -n from-reference "$a")
	b=${b%%$'\n'*}
	t2=$(lock_token "$layers_lock")
	[ "$t1" != "$t2" ]
	run -0 storage --debug=false layer from-reference
	[[ "$output" == *"Parent: $a"* ]]
	storage --debug=false set-names -n renamed-by-stowage "$b"
	t3=$(lock_token "$layers_lock")
	[ "$t2" != "$t3" ]
	run -0 reference get-names "$b"
	[ "$output" = renamed-by-stowage ]
	run -1 reference exists from-reference
	# images, alternately
	img=$(reference create-image -n ref-image "$b")
	img=${img%%$'\n'*}
	storage --debug=false add-names -n stowage-name "$img"
	i1=$(lock_token "$images_lock")
	run -0 reference images
	[[ "$output" == *"name: stowage-name"* ]]
	reference set-names -n final "$img"
	[ "$(lock_token "$images_lock")" != "$i1" ]
	run -0 storage --debug=false get-names "$img"
	[ "$output" = final ]
	# deletions are seen both ways
	run -0 storage --debug=false delete-image final
	run -0 reference images
	[ "$output" = "" ]
	run -0 reference layers
	[ "$output" = "" ]
	c=$(reference create-layer)
	d=$(new_layer "$c")
	run -0 reference delete-layer "$d"
	run -0 storage --debug=false layers
	[ "$output" = "$c" ]
	run -0 storage --debug=false delete-layer "$c"
	run -0 reference layers
	[ "$output" = "" ]
	# mount counts are shared through mountpoints.json
	e=$(new_layer)
	storage --debug=false mount "$e" >/dev/null
	run -0 reference mounted "$e"
	[ "$output" = "$e mounted" ]
	reference mount "$e" >/dev/null
	run -0 storage --debug=false unmount "$e"
	[ "$output" = "" ]
	run -0 reference unmount "$e"
	[ "$output" = "$e mountpoint unmounted" ]
	run -0 storage --debug=false mounted "$e"
	[ "$output" = "" ]
}

@test "differential: a layer incomplete after a crash of one tool is cleaned by the other" {
	a=$(reference create-layer)
	sed -i -e 's/"id":/"flags":{"incomplete":true},"id":/g' "$TESTDIR/root/vfs-layers/layers.json"
	run -0 storage --debug=false layers
	[ "$output" = "" ]
	[ ! -e "$TESTDIR/root/vfs/dir/$a" ]
	b=$(new_layer)
	sed -i -e 's/"id":/"flags":{"incomplete":true},"id":/g' "$TESTDIR/root/vfs-layers/layers.json"
	run -0 reference layers
	[ "$output" = "" ]
	[ ! -e "$TESTDIR/root/vfs/dir/$b" ]
}
