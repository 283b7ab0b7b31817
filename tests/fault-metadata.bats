#!/usr/bin/env bats
# Corrupt metadata (issue 4, fault tests): layers.json, images.json,
# containers.json and mountpoints.json are replaced by a truncated copy,
# random bytes, NUL bytes of the same length (what a power cut can leave on
# a file system without data journaling), JSON of the wrong shape and an
# array holding null. Every command that needs the file must refuse with an
# error naming it; no command may rewrite it (byte-identical afterwards);
# `check`, once stowage has it, must fail and name the file; with the file
# restored, everything works again.

load helpers
load fault/lib

corrupt() {
	local how=$1 f=$2 size
	size=$(stat -c %s "$f.orig")
	case $how in
	truncated) head -c $((size / 2)) "$f.orig" >"$f" ;;
	garbage) head -c 300 /dev/urandom >"$f" ;;
	zeros) head -c "$size" /dev/zero >"$f" ;;
	wrong-shape) printf '{"id": 1, "names": "x"}' >"$f" ;;
	null-record) printf '[null]' >"$f" ;;
	esac
}

@test "corrupt layers/images/containers/mountpoints JSON is refused, named, left byte-identical" {
	require_root
	FDRIVER=${STORAGE_DRIVER:-vfs} FG=$TESTDIR/root FR=$TESTDIR/runroot
	local tars=$TESTDIR/t
	mkdir "$tars" && echo hi >"$tars/f" && tar -C "$tars" -cf "$TESTDIR/l.tar" f
	local L I C
	L=$(fault_store import-layer -f "$TESTDIR/l.tar")
	I=$(fault_store create-image "$L")
	C=$(fault_store create-container "$I")
	fault_store mount "$C" >/dev/null
	local check_impl=yes
	if fault_store check 2>&1 | grep -q "not implemented"; then
		check_impl=no
	fi
	local d=$FDRIVER file how cmd sum bad=0 n=0
	declare -A needs=([layers.json]=layers [images.json]=images [containers.json]=containers [mountpoints.json]="mount $C")
	for file in "$FG/$d-layers/layers.json" "$FG/$d-images/images.json" "$FG/$d-containers/containers.json" "$FR/$d-layers/mountpoints.json"; do
		cp -p "$file" "$file.orig"
		local base=${file##*/}
		for how in truncated garbage zeros wrong-shape null-record; do
			corrupt "$how" "$file"
			sum=$(sha256sum <"$file")
			for cmd in "${needs[$base]}" layers "mount $C" "create-image $L" "delete-container $C"; do
				run fault_store $cmd
				n=$((n + 1))
				if [ "$status" -ne 0 ]; then
					grep -q "$base" <<<"$output" || { echo "$base ($how): '$cmd' failed without naming the file: $output"; bad=1; }
					! grep -qE 'panic|goroutine [0-9]' <<<"$output" || { echo "$base ($how): '$cmd' panicked"; bad=1; }
				elif [ "$cmd" = "${needs[$base]}" ]; then
					echo "$base ($how): '$cmd' succeeded on a corrupt file: $output"
					bad=1
				else
					# it did not need the file: undo what it created
					case $cmd in create-*) fault_store delete "$output" >/dev/null 2>&1 || true ;; esac
				fi
				[ "$(sha256sum <"$file")" = "$sum" ] || { echo "$base ($how): rewritten by '$cmd'"; bad=1; corrupt "$how" "$file"; sum=$(sha256sum <"$file"); }
			done
			if [ $check_impl = yes ]; then
				run fault_store check
				if [ "$status" -eq 0 ] || ! grep -q "$base" <<<"$output"; then
					echo "$base ($how): check did not explain it (status $status): $output"
					bad=1
				fi
				[ "$(sha256sum <"$file")" = "$sum" ] || { echo "$base ($how): rewritten by check"; bad=1; }
			fi
			echo "$base ($how): refused and left byte-identical"
		done
		cp -p "$file.orig" "$file"
		rm "$file.orig"
	done
	[ $check_impl = yes ] || echo "# check is not implemented yet: its explanation of corrupt files is not asserted" >&3
	echo "# 4 files x 5 corruptions, $n commands: refused naming the file, never rewritten" >&3
	[ "$bad" -eq 0 ]
	# whole again
	run fault_store layers
	[ "$status" -eq 0 ]
	run fault_store unmount "$C"
	[ "$status" -eq 0 ]
	run fault_store delete-container "$C"
	[ "$status" -eq 0 ]
}
