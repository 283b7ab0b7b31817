#!/usr/bin/env bats
# Durable commits (issue 4): what is flushed, in which order, per sync mode;
# recovery after a killed import; volatile and transient records; lock
# statistics. The flush order is read from strace (syscalls with fd paths).

load helpers

# trace OUT ARGS...: run the binary under test under strace, recording
# flushes and renames (with fd paths) into OUT.
trace() {
	local out=$1
	shift
	command -v strace >/dev/null || skip "strace not installed (tests/deps.sh installs it)"
	local opt=()
	if [ -n "$STORAGE_OPTION" ]; then
		opt=("--storage-opt=$STORAGE_OPTION")
	fi
	strace -f -y -qq -e signal=none -e trace=fdatasync,fsync,syncfs,rename,renameat,renameat2 -o "$out" \
		"$STORAGE_BINARY" --debug=false --graph "$TESTDIR/root" --run "$TESTDIR/runroot" \
		--storage-driver "$STORAGE_DRIVER" "${opt[@]}" "$@"
}

# line_of FILE REGEX [last]: number of the first (or last) line matching.
line_of() {
	if [ "${3:-}" = last ]; then
		grep -nE -- "$2" "$1" | tail -1 | cut -d: -f1
	else
		grep -nE -- "$2" "$1" | head -1 | cut -d: -f1
	fi
}

# the directory a staged layer is renamed into, and the rename's target
publish_dir() {
	case $STORAGE_DRIVER in
	vfs) echo "$TESTDIR/root/vfs/dir" ;;
	overlay) echo "$TESTDIR/root/overlay" ;;
	esac
}

@test "durable import (default): files and dirs flushed, then rename, parent fsync, then the record" {
	skip_if_143 "no durable commit"
	make_tar "$TESTDIR/l.tar"
	storage --debug=false layers >/dev/null # create the store outside the trace
	trace "$TESTDIR/st" import-layer -f "$TESTDIR/l.tar" >"$TESTDIR/id"
	id=$(cat "$TESTDIR/id")
	st=$TESTDIR/st
	# every regular file of the layer was fdatasynced in staging (overlay
	# stages the whole layer directory, the files in its diff/, and its
	# link file with them)
	sub=
	[ "$STORAGE_DRIVER" = overlay ] && sub=diff/
	for f in etc/app/hello.txt etc/app/empty usr/bin/tool; do
		grep -qE "fdatasync\([0-9]+<[^>]*/tempdirs/temp-dir-[0-9]+/[0-9]+-addition/$sub$f>" "$st"
	done
	if [ "$STORAGE_DRIVER" = overlay ]; then
		grep -qE "fdatasync\([0-9]+<[^>]*/tempdirs/temp-dir-[0-9]+/[0-9]+-addition/link>" "$st"
	fi
	data=$(line_of "$st" 'fdatasync\([0-9]+<[^>]*/tempdirs/' last)
	rootdir=$(line_of "$st" 'fsync\([0-9]+<[^>]*/tempdirs/temp-dir-[0-9]+/[0-9]+-addition>' last)
	rename=$(line_of "$st" "renameat2?\(.*/tempdirs/temp-dir-[0-9]+/[0-9]+-addition\".*\"$(publish_dir)/$id(/diff)?\"")
	parent=$(line_of "$st" "fsync\([0-9]+<$(publish_dir)>" last)
	tsplit=$(line_of "$st" "renameat2?\(.*\"$TESTDIR/root/${STORAGE_DRIVER}-layers/$id.tar-split.gz\"")
	record=$(line_of "$st" "renameat2?\(.*\"$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json\"" last)
	recsync=$(line_of "$st" "fsync\([0-9]+<$TESTDIR/root/${STORAGE_DRIVER}-layers>" last)
	echo "data=$data rootdir=$rootdir rename=$rename parent=$parent tsplit=$tsplit record=$record recsync=$recsync"
	[ "$data" -lt "$rootdir" ]
	[ "$rootdir" -lt "$rename" ]
	[ "$rename" -lt "$parent" ]
	[ "$parent" -lt "$record" ]
	[ "$tsplit" -lt "$record" ]
	[ "$record" -lt "$recsync" ]
	# the record's file, prepared in tmp/ by the commit, was flushed
	# before its rename
	tmp=$(line_of "$st" "fdatasync\([0-9]+<$TESTDIR/root/${STORAGE_DRIVER}-layers/tmp/layers-$id\.json" last)
	[ "$tmp" -lt "$record" ]
}

@test "sync=filesystem flushes with one syncfs, sync=none flushes no layer content" {
	skip_if_143 "no sync modes"
	make_tar "$TESTDIR/l.tar"
	storage --debug=false layers >/dev/null
	trace "$TESTDIR/fs" --storage-opt "$STORAGE_DRIVER.sync=filesystem" import-layer -f "$TESTDIR/l.tar"
	[ "$(grep -cE 'syncfs\([0-9]+<[^>]*/tempdirs/' "$TESTDIR/fs")" -eq 1 ]
	! grep -qE 'fdatasync\([0-9]+<[^>]*/tempdirs/' "$TESTDIR/fs"
	trace "$TESTDIR/none" --storage-opt "$STORAGE_DRIVER.sync=none" import-layer -f "$TESTDIR/l.tar"
	! grep -qE '(fdatasync|syncfs)\([0-9]+<[^>]*/tempdirs/' "$TESTDIR/none"
	# the records are flushed in every mode
	grep -qE "fdatasync\([0-9]+<[^>]*-layers/tmp/layers-[0-9a-f]+\.json" "$TESTDIR/none"
	run -0 storage --debug=false layers
	[ "${#lines[@]}" -eq 2 ]
}

@test "sync option: bad values are refused, storage.conf sets it" {
	skip_if_143 "no sync modes"
	run -0 storage --debug=false status
	[[ "$output" == *"Sync Mode: durable"* ]]
	run -0 storage --debug=false --storage-opt "$STORAGE_DRIVER.sync=none" status
	[[ "$output" == *"Sync Mode: none"* ]]
	run -1 storage --debug=false --storage-opt "$STORAGE_DRIVER.sync=sometimes" layers
	[[ "$output" == *'option sync: "sometimes" (want durable, filesystem or none)'* ]]
	cat >"$TESTDIR/storage.conf" <<-EOF2
	[storage]
	driver = "$STORAGE_DRIVER"
	graphroot = "$TESTDIR/root"
	runroot = "$TESTDIR/runroot"
	[storage.options.$STORAGE_DRIVER]
	sync = "filesystem"
	EOF2
	CONTAINERS_STORAGE_CONF=$TESTDIR/storage.conf run -0 "$STORAGE_BINARY" config
	jq -e --arg o "$STORAGE_DRIVER.sync=filesystem" '.["driver-options"] | index($o)' <<<"$output"
	make_tar "$TESTDIR/l.tar"
	command -v strace >/dev/null || skip "strace not installed"
	CONTAINERS_STORAGE_CONF=$TESTDIR/storage.conf strace -f -y -qq -e signal=none -e trace=syncfs -o "$TESTDIR/st" \
		"$STORAGE_BINARY" import-layer -f "$TESTDIR/l.tar"
	grep -qE 'syncfs\([0-9]+<[^>]*/tempdirs/' "$TESTDIR/st"
}

@test "create-layer and big data are flushed; volatile records are not" {
	skip_if_143 "no durable commit"
	layer=$(new_layer)
	image=$(new_image "$layer")
	trace "$TESTDIR/bd" set-image-data -f /etc/hostname "$image" somekey
	grep -qE "fdatasync\([0-9]+<$TESTDIR/root/${STORAGE_DRIVER}-images/$image/\.tmp-somekey" "$TESTDIR/bd"
	grep -qE "fsync\([0-9]+<$TESTDIR/root/${STORAGE_DRIVER}-images/$image>" "$TESTDIR/bd"
	trace "$TESTDIR/cl" create-layer "$layer" >/dev/null
	grep -qE "fsync\([0-9]+<$(publish_dir)>" "$TESTDIR/cl"
	trace "$TESTDIR/vc" create-container --volatile "$image" >/dev/null
	grep -qE 'renameat2?\(.*volatile-containers\.json"' "$TESTDIR/vc"
	! grep -qE 'fdatasync\([0-9]+<[^>]*\.tmp-volatile-(containers|layers)\.json' "$TESTDIR/vc"
}

@test "a killed import leaves nothing once the store is opened again" {
	skip_if_143 "recovery differs"
	storage --debug=false layers >/dev/null
	mkfifo "$TESTDIR/fifo"
	# the binary itself, not the storage() wrapper, so $! is its PID
	"$STORAGE_BINARY" --graph "$TESTDIR/root" --run "$TESTDIR/runroot" --storage-driver "$STORAGE_DRIVER" \
		${STORAGE_OPTION:+--storage-opt="$STORAGE_OPTION"} import-layer -f "$TESTDIR/fifo" >/dev/null 2>&1 &
	pid=$!
	exec 7>"$TESTDIR/fifo"
	# half a layer: 64 files, then the writer stalls
	python3 - "$TESTDIR" <<-'PY' >&7
	import sys, tarfile, io
	t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
	for i in range(64):
	    data = b"x" * 65536
	    ti = tarfile.TarInfo(f"d/f{i}"); ti.size = len(data)
	    t.addfile(ti, io.BytesIO(data))
	sys.stdout.flush()
	PY
	for _ in $(seq 50); do
		[ -n "$(ls -A "$TESTDIR/root/$STORAGE_DRIVER/tempdirs" 2>/dev/null)" ] && break
		sleep 0.1
	done
	[ -n "$(ls -A "$TESTDIR/root/$STORAGE_DRIVER/tempdirs")" ]
	kill -KILL "$pid"
	wait "$pid" || true
	exec 7>&-
	run -0 storage --debug=false layers
	[ -z "$output" ]
	[ -z "$(ls -A "$TESTDIR/root/$STORAGE_DRIVER/tempdirs")" ]
	[ -z "$(ls -A "$TESTDIR/root/${STORAGE_DRIVER}-layers/tmp")" ]
}

@test "stale temp JSON files are removed when the store opens" {
	skip_if_143 "not removed by 1.43"
	storage --debug=false layers >/dev/null
	echo '[{"id":' >"$TESTDIR/root/${STORAGE_DRIVER}-layers/.tmp-layers.json123"
	echo '[' >"$TESTDIR/root/${STORAGE_DRIVER}-images/.tmp-images.json9"
	run -0 storage --debug=false layers
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}-layers/.tmp-layers.json123" ]
	[ ! -e "$TESTDIR/root/${STORAGE_DRIVER}-images/.tmp-images.json9" ]
}

@test "transient store: after a reboot (run root wiped) images stay, containers are gone" {
	skip_if_143 "no --transient-store"
	layer=$(new_layer)
	image=$(new_image -n keep "$layer")
	run -0 storage --debug=false --transient-store create-container -n tctr "$image"
	ctr=${lines[0]}
	clayer=$(storage --debug=false --transient-store container --json "$ctr" | jq -r '.[0].layer')
	# nothing container-related was written to the graph root's records
	[ ! -s "$TESTDIR/root/${STORAGE_DRIVER}-containers/containers.json" ] ||
		! jq -e --arg c "$ctr" '.[] | select(.id == $c)' "$TESTDIR/root/${STORAGE_DRIVER}-containers/containers.json"
	! jq -e --arg l "$clayer" '.[] | select(.id == $l)' "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.json"
	storage --debug=false --transient-store shutdown -f >/dev/null || true
	unmount_below "$TESTDIR/runroot"
	rm -rf "$TESTDIR/runroot"
	run -0 storage --debug=false --transient-store containers
	[ -z "$output" ]
	run -0 storage --debug=false --transient-store images
	[[ "$output" == *"$image"* ]]
	run -0 storage --debug=false --transient-store layers
	[[ "$output" != *"$clayer"* ]]
	# the container layer's directory is left for garbage collection
	run -0 storage --debug=false --transient-store storage-layers
	[[ "$output" == *"$clayer"* ]]
}

@test "lock statistics: processes append to STOWAGE_LOCK_STATS, lock-stats sums them" {
	skip_if_143 "no lock statistics"
	make_tar "$TESTDIR/l.tar"
	export STOWAGE_LOCK_STATS=$TESTDIR/locks.jsonl
	for i in 1 2 3 4; do
		storage --debug=false import-layer -f "$TESTDIR/l.tar" >/dev/null &
	done
	wait
	[ "$(wc -l <"$STOWAGE_LOCK_STATS")" -eq 4 ]
	run -0 storage --debug=false lock-stats
	[[ "${lines[0]}" == LOCK*PROCESSES*WAITING*WRITE*READ*WAITED*"LONGEST WAIT"*HELD*"LONGEST HOLD" ]]
	line=$(grep -F "$TESTDIR/root/${STORAGE_DRIVER}-layers/layers.lock" <<<"$output")
	[ "$(awk '{print $2}' <<<"$line")" -eq 4 ]
	[[ "${lines[-1]}" == "4 processes; "* ]]
	run -0 storage --debug=false lock-stats --json
	# each import plans under the read lock and commits under the write
	# lock; the commit's write hold is recorded apart
	jq -e '.records == 4 and (.locks | map(select(.path | endswith("layers.lock"))) | .[0] | .locks >= 4 and .rlocks >= 8 and .longest_write_hold > 0 and .longest_write_hold <= .longest_hold)' <<<"$output"
	unset STOWAGE_LOCK_STATS
	STOWAGE_LOCK_HOLD_THRESHOLD=0s run -0 storage layers
	[[ "$output" == *'msg="long lock hold" lock='* ]]
	[[ "$output" == *'msg="lock statistics" lock='*"layers.lock locks=0 rlocks="* ]]
}
