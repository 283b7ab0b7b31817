#!/usr/bin/env bash
# Shared set-up of the fault suites (tests/fault-*.bats), loaded after
# helpers.bash.
#
#   STOWAGE_FAULT_ROUNDS  scale factor for longer local runs (default 1):
#                         kills, power cuts and corpus passes are multiplied
#   FAULTKIT              a prebuilt tests/fault/cmd/faultkit (else built here)

FAULT_ROUNDS=${STOWAGE_FAULT_ROUNDS:-1}

# faultkit_build: build the helper once per bats run into $BATS_RUN_TMPDIR.
faultkit_build() {
	if [ -n "${FAULTKIT:-}" ] && [ -x "$FAULTKIT" ]; then
		return 0
	fi
	FAULTKIT="$BATS_RUN_TMPDIR/faultkit"
	export FAULTKIT
	if [ ! -x "$FAULTKIT" ]; then
		local go=go
		if ! command -v go >/dev/null 2>&1; then go=/usr/local/go/bin/go; fi
		if ! (cd "$TESTSDIR/.." && "$go" build -o "$FAULTKIT" ./tests/fault/cmd/faultkit) >&2; then
			echo "cannot build tests/fault/cmd/faultkit (needs Go)" >&2
			return 1
		fi
	fi
}

# faultkit_tars: the storm/power-cut layer tarballs, generated once per run.
faultkit_tars() {
	FAULT_TARS="$BATS_RUN_TMPDIR/fault-tars"
	if [ ! -f "$FAULT_TARS/digests" ]; then
		"$FAULTKIT" gentars "$FAULT_TARS"
	fi
}

# fault_tmpfs DIR [SIZE]: a private tmpfs at DIR (fast scratch store; the
# machine's root ext4 slows down after mass deletions).
fault_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=${2:-2G}" tmpfs "$1"
}

# fault_loopfs TYPE IMG DIR SIZE: make and mount a loop file system.
fault_loopfs() {
	local type=$1 img=$2 dir=$3 size=$4
	truncate -s "$size" "$img"
	case $type in
	xfs) mkfs.xfs -q -f "$img" ;;
	ext4) mkfs.ext4 -q -F "$img" ;;
	esac
	mkdir -p "$dir"
	mount -o loop "$img" "$dir"
}

# fault_unmount_all DIR: unmount everything below and at DIR, deepest first.
fault_unmount_all() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
}

# fault_store ARGS: the binary under test on $FG/$FR with $FDRIVER.
fault_store() {
	timeout -k 10 "${STORAGE_TIMEOUT:-300}" "$STORAGE_BINARY" --graph "$FG" --run "$FR" --storage-driver "$FDRIVER" "$@"
}

require_fault_root() {
	require_root
	if [ "$FDRIVER" = overlay ]; then
		require_overlay
	fi
}
