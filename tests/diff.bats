#!/usr/bin/env bats
# diff, diffsize, changes, applydiff (and its junk-input errors).

load helpers

# two_layers: $lower with d/f and top, $upper on it that deletes d, modifies
# top and adds new.
two_layers() {
	lower=$(new_layer)
	mnt=$(mount_layer "$lower")
	mkdir "$mnt/d"
	echo a >"$mnt/d/f"
	echo b >"$mnt/top"
	echo keep >"$mnt/unchanged"
	storage --debug=false unmount "$lower" >/dev/null
	upper=$(new_layer "$lower")
	mnt=$(mount_layer "$upper")
	rm -r "$mnt/d"
	echo c >>"$mnt/top"
	echo n >"$mnt/new"
	mkdir -p "$mnt/newdir/sub"
	echo x >"$mnt/newdir/sub/x"
	storage --debug=false unmount "$upper" >/dev/null
}

@test "changes: add, modify, delete" {
	two_layers
	run -0 storage --debug=false changes "$upper"
	sorted=$(sort <<<"$output")
	expected=$(printf '%s\n' 'Add "/new"' 'Add "/newdir"' 'Add "/newdir/sub"' 'Add "/newdir/sub/x"' 'Delete "/d"' 'Modify "/top"' | sort)
	[ "$sorted" = "$expected" ]
	run -0 storage --debug=false changes "$lower"
	sorted=$(sort <<<"$output")
	expected=$(printf '%s\n' 'Add "/d"' 'Add "/d/f"' 'Add "/top"' 'Add "/unchanged"' | sort)
	[ "$sorted" = "$expected" ]
	run -0 storage --debug=false changes --json "$upper"
	[ "$(jq -r '.[] | select(.Path == "/d") | .Kind' <<<"$output")" = 2 ]
	[ "$(jq -r '.[] | select(.Path == "/new") | .Kind' <<<"$output")" = 1 ]
	[ "$(jq -r '.[] | select(.Path == "/top") | .Kind' <<<"$output")" = 0 ]
}

@test "changes: modifying a file in a subdirectory reports the directory as modified" {
	lower=$(new_layer)
	mnt=$(mount_layer "$lower")
	mkdir -p "$mnt/a/b"
	echo 1 >"$mnt/a/b/file"
	storage --debug=false unmount "$lower" >/dev/null
	upper=$(new_layer "$lower")
	mnt=$(mount_layer "$upper")
	sleep 0.01
	echo 2 >"$mnt/a/b/file"
	storage --debug=false unmount "$upper" >/dev/null
	run -0 storage --debug=false changes "$upper"
	[[ "$output" == *'Modify "/a/b/file"'* ]]
	[[ "$output" != *'Add '* ]]
	[[ "$output" != *'Delete '* ]]
}

@test "diff: tar of the changes with whiteouts, relative names" {
	two_layers
	run -0 --separate-stderr storage --debug=false diff -u "$upper"
	storage --debug=false diff -u -f "$TESTDIR/upper.tar" "$upper"
	run -0 sorted_tar_list "$TESTDIR/upper.tar"
	expected=$(printf '%s\n' .wh.d new newdir/ newdir/sub/ newdir/sub/x top | sort)
	[ "$output" = "$expected" ]
	# no leading ./ or / in member names
	! tar -tf "$TESTDIR/upper.tar" | grep -q '^[./]'
	# the content is there
	mkdir "$TESTDIR/x"
	tar -C "$TESTDIR/x" -xf "$TESTDIR/upper.tar"
	[ "$(cat "$TESTDIR/x/top")" = $'b\nc' ]
	# the lower layer's diff is all of its content
	storage --debug=false diff -u "$lower" >"$TESTDIR/lower.tar"
	run -0 sorted_tar_list "$TESTDIR/lower.tar"
	expected=$(printf '%s\n' d/ d/f top unchanged | sort)
	[ "$output" = "$expected" ]
}

@test "diff: compression flags" {
	two_layers
	storage --debug=false diff -u "$upper" >"$TESTDIR/plain.tar"
	storage --debug=false diff -c "$upper" >"$TESTDIR/d.tar.gz"
	gzip -t "$TESTDIR/d.tar.gz"
	[ "$(gzip -dc "$TESTDIR/d.tar.gz" | tar -t | sort)" = "$(tar -tf "$TESTDIR/plain.tar" | sort)" ]
	storage --debug=false diff --gzip -f "$TESTDIR/e.tar.gz" "$upper"
	gzip -t "$TESTDIR/e.tar.gz"
	# layers created empty and written through a mount diff uncompressed by default
	storage --debug=false diff "$upper" | tar -t >/dev/null
	run -1 storage --debug=false diff -b "$upper"
	run -1 storage --debug=false diff -x "$upper"
	run -1 storage --debug=false diff nosuch
}

@test "diff: against an explicit FROM layer" {
	two_layers
	run -0 --separate-stderr storage --debug=false diff -u "$upper" "$lower"
	storage --debug=false diff -u -f "$TESTDIR/from.tar" "$upper" "$lower"
	[ "$(sorted_tar_list "$TESTDIR/from.tar")" = "$(printf '%s\n' .wh.d new newdir/ newdir/sub/ newdir/sub/x top | sort)" ]
}

@test "diffsize: non-zero for layers with content, zero for an empty one" {
	two_layers
	run -0 storage --debug=false diffsize "$upper"
	[[ "$output" =~ ^[0-9]+$ ]]
	[ "$output" -gt 0 ]
	run -0 storage --debug=false diff-size "$lower"
	[ "$output" -gt 0 ]
	empty=$(new_layer)
	run -0 storage --debug=false diffsize "$empty"
	[ "$output" -eq 0 ]
	run -1 storage --debug=false diffsize nosuch
}

@test "applydiff: applies a tar silently; the diff is then the same bytes" {
	make_tar "$TESTDIR/layer.tar"
	layer=$(new_layer)
	run -0 storage --debug=false applydiff -f "$TESTDIR/layer.tar" "$layer"
	[ "$output" = "" ]
	storage --debug=false diff -u "$layer" | cmp - "$TESTDIR/layer.tar"
	json=$(storage --debug=false layer --json "$layer")
	[ "$(jq -r '.[0]["diff-digest"]' <<<"$json")" = "sha256:$(sha256sum <"$TESTDIR/layer.tar" | cut -d' ' -f1)" ]
	[ "$(jq -r '.[0]["diff-size"]' <<<"$json")" -eq "$(stat -c %s "$TESTDIR/layer.tar")" ]
	[[ "$json" == *'"diff-size":'* ]]
	[[ "$json" =~ \"diff-digest\":\"sha256:[0-9a-f]{64}\" ]]
	mnt=$(mount_layer "$layer")
	[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
	storage --debug=false unmount "$layer" >/dev/null
}

@test "applydiff: from stdin, compressed, under the apply-diff alias" {
	make_tar "$TESTDIR/layer.tar"
	for c in gzip bzip2 xz zstd; do
		layer=$(new_layer)
		$c -c "$TESTDIR/layer.tar" | storage --debug=false apply-diff "$layer"
		mnt=$(mount_layer "$layer")
		cmp "$mnt/usr/bin/tool" "$mnt/usr/bin/tool-hardlink"
		[ "$(cat "$mnt/etc/app/hello.txt")" = "hello world" ]
		storage --debug=false unmount "$layer" >/dev/null
	done
}

@test "applydiff: on top of a parent, round trip through diff" {
	two_layers
	storage --debug=false diff -u "$upper" >"$TESTDIR/upper.tar"
	copy=$(new_layer "$lower")
	storage --debug=false applydiff -f "$TESTDIR/upper.tar" "$copy"
	a=$(mount_layer "$upper")
	b=$(mount_layer "$copy")
	diff -r --no-dereference "$a" "$b"
	storage --debug=false unmount "$upper" "$copy" >/dev/null
	run -0 storage --debug=false changes "$copy"
	[[ "$output" == *'Delete "/d"'* ]]
}

@test "apply-junk: raw and compressed garbage is rejected" {
	layer=$(new_layer)
	junk="$TESTDIR/junk"
	for i in $(seq 1 30); do
		echo "This is not a tar archive, it is line $i of plain text junk."
	done >"$junk"
	run ! storage --debug=false applydiff -f "$junk" "$layer"
	[[ "$output" == *"invalid tar header"* || "$output" == *"unexpected EOF"* ]]
	for c in gzip bzip2 xz zstd; do
		$c -c "$junk" >"$junk.$c"
		run ! storage --debug=false applydiff -f "$junk.$c" "$layer"
		echo "$c: $output"
		[[ "$output" == *"invalid tar header"* || "$output" == *"unexpected EOF"* ]]
	done
	# a compressed stream too short for a tar header: unexpected EOF
	echo short >"$TESTDIR/short"
	for c in gzip bzip2 xz zstd; do
		$c -c "$TESTDIR/short" >"$TESTDIR/short.$c"
		run ! storage --debug=false applydiff -f "$TESTDIR/short.$c" "$layer"
		echo "$c: $output"
		[[ "$output" == *"unexpected EOF"* ]]
	done
}

@test "applydiff: unknown layer" {
	make_tar "$TESTDIR/layer.tar"
	run -1 storage --debug=false applydiff -f "$TESTDIR/layer.tar" nosuch
}
