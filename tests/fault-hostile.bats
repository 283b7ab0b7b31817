#!/usr/bin/env bats
# Hostile input at the CLI (issue 4, fault tests): faultkit generates a
# corpus of malicious tars aimed at a sentinel directory next to the store
# (traversal with ../ and absolute paths, symlink and hard-link escapes,
# links through symlinked dirs, a directory replaced by a symlink,
# whiteouts through symlinks, symlink loops, device nodes, a device whose
# owner is not in the layer's ID map, 64 MiB PAX and GNU long-name headers,
# truncated data/header/gzip, a 1 TiB size with no data, a bad checksum,
# trusted.overlay.* and user.overlay.* xattrs). Each is imported with
# import-layer on vfs and overlay: nothing may be written outside the layer,
# a refusal is one clear error line (never a panic), truncated and broken
# streams must be refused, overlayfs' private xattrs never reach the layer
# directory, peak RSS stays under 64 MiB, and the store is consistent after
# the whole corpus (faultkit verify, which diffs every accepted layer).
# Passes: STOWAGE_FAULT_ROUNDS.

load helpers
load fault/lib

# sandbox_intact: nothing escaped the layer.
sandbox_intact() {
	local what=$1
	[ "$(cat "$TESTDIR/sentinel/victim")" = intact ] || { echo "$what: sentinel victim changed"; return 1; }
	[ "$(ls -A "$TESTDIR/sentinel")" = victim ] || { echo "$what: sentinel dir changed: $(ls -A "$TESTDIR/sentinel")"; return 1; }
	[ "$(ls -A "$TESTDIR" | sort | tr '\n' ' ')" = "corpus root runroot sentinel " ] || { echo "$what: written next to the store: $(ls -A "$TESTDIR")"; return 1; }
	[ ! -e /stowage-escape-abs ] && [ ! -e /tmp/stowage-escape-dotdot ] || { echo "$what: escaped to / or /tmp"; return 1; }
	[ "$(sha256sum </etc/passwd)" = "$PASSWD_SUM" ] || { echo "$what: /etc/passwd changed"; return 1; }
}

layer_dir() {
	if [ "$FDRIVER" = overlay ]; then echo "$FG/overlay/$1/diff"; else echo "$FG/vfs/dir/$1"; fi
}

hostile() {
	FDRIVER=$1
	require_fault_root
	[ -x /usr/bin/time ] || skip "GNU time not installed (apt-get install time)"
	command -v getfattr >/dev/null || skip "attr not installed"
	faultkit_build
	FG=$TESTDIR/root FR=$TESTDIR/runroot
	mkdir "$TESTDIR/sentinel"
	printf intact >"$TESTDIR/sentinel/victim"
	PASSWD_SUM=$(sha256sum </etc/passwd)
	"$FAULTKIT" hostile "$TESTDIR/corpus" "$TESTDIR/sentinel"
	: >"$BATS_TEST_TMPDIR/acks"
	local name expect rss err id maxrss=0 accepted=0 refused=0 round
	for ((round = 1; round <= FAULT_ROUNDS; round++)); do
		while read -r name expect; do
			run /usr/bin/time -f 'maxrss=%M' timeout 120 "$STORAGE_BINARY" --graph "$FG" --run "$FR" --storage-driver "$FDRIVER" import-layer -f "$TESTDIR/corpus/$name.tar"
			rss=$(grep -o 'maxrss=[0-9]*' <<<"$output" | cut -d= -f2)
			err=$(grep -v -e 'maxrss=' -e '^Command exited with' <<<"$output")
			[ "$rss" -gt "$maxrss" ] && maxrss=$rss
			echo "$name ($expect): status $status, peak RSS $((rss / 1024)) MiB: $err"
			! grep -qE 'panic|goroutine [0-9]' <<<"$err"
			if [ "$status" -eq 0 ]; then
				[ "$expect" != reject ] || { echo "$name: a broken stream was accepted"; return 1; }
				id=$err
				[ ${#id} -eq 64 ]
				echo "layer $id" >>"$BATS_TEST_TMPDIR/acks"
				accepted=$((accepted + 1))
				local xa
				xa=$(getfattr -R -h --absolute-names -d -m '^(trusted|user)\.overlay\.' "$(layer_dir "$id")" 2>/dev/null || true)
				[ -z "$xa" ] || { echo "$name: overlay xattrs reached the layer: $xa"; return 1; }
			else
				refused=$((refused + 1))
				[ "$(wc -l <<<"$err")" -eq 1 ] && [ -n "$err" ] || { echo "$name: not one clear error line"; return 1; }
			fi
			[ "$rss" -le $((64 * 1024)) ] || { echo "$name: peak RSS $rss KiB over 64 MiB"; return 1; }
			sandbox_intact "$name"
		done <"$TESTDIR/corpus/MANIFEST"
	done
	# a device node whose owner the layer's ID map cannot represent
	run fault_store import-layer --uidmap 0:100000:65536 --gidmap 0:100000:65536 -f "$TESTDIR/corpus/device-unmapped-owner.tar"
	echo "device-unmapped-owner with an ID map: $status: $output"
	[ "$status" -ne 0 ]
	grep -q "not mapped" <<<"$output"
	sandbox_intact "mapped device"
	echo "# $FDRIVER: $(wc -l <"$TESTDIR/corpus/MANIFEST") hostile tars x $FAULT_ROUNDS: $accepted accepted (confined), $refused refused with one error line; peak RSS $((maxrss / 1024)) MiB" >&3
	run "$FAULTKIT" verify --bin "$STORAGE_BINARY" --graph "$FG" --run "$FR" --driver "$FDRIVER" --acks "$BATS_TEST_TMPDIR/acks"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "hostile tar corpus: confined, clear errors, bounded memory, consistent store (vfs)" {
	hostile vfs
}

@test "hostile tar corpus: confined, clear errors, bounded memory, consistent store (overlay)" {
	hostile overlay
}
