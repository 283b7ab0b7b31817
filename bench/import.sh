#!/usr/bin/env bash
# Import benchmark: time, side by side on a fresh loop-mounted scratch file
# system,
#   tar       tar -xf layer.tar -C fresh_dir
#   stowage   stowage import-layer -f layer.tar            (fresh vfs store)
#   reference containers-storage import-layer -f layer.tar (fresh vfs store)
# for an uncompressed and a zstd-compressed layer of ~250 MB / ~17k entries,
# each several times, interleaved (tar, stowage, reference, tar, ...) so that
# machine drift hits all three alike. Prints min/median/max and the ratios of
# the medians. The issue's bar: stowage <= 3x tar on the uncompressed layer.
#
# usage: bench/import.sh [--runs N] [--size-mb N] [--files N] [--fs ext4|xfs]
#                        [--driver vfs|overlay] [--sync] [--no-reference] [--keep]
#   --sync  end every timed command with `sync` (durable timings); by default
#           timings are page-cache timings and a sync runs, untimed, before
#           each run.
# Needs root (loop mount), python3, tar, zstd, mkfs.ext4 (or mkfs.xfs), Go to
# build bin/stowage if it is missing. Not part of CI.
set -euo pipefail

runs=5
size_mb=250
files=17000
fs=ext4
driver=vfs
dosync=no
reference=/usr/bin/containers-storage
keep=no
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift ;;
	--size-mb) size_mb=$2; shift ;;
	--files) files=$2; shift ;;
	--fs) fs=$2; shift ;;
	--driver) driver=$2; shift ;;
	--sync) dosync=yes ;;
	--no-reference) reference= ;;
	--keep) keep=yes ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "import.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" -ne 0 ]; then
	echo "import.sh: needs root (loop mount of the scratch file system)" >&2
	exit 1
fi
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

stowage=${STOWAGE:-$repo/bin/stowage}
if [ ! -x "$stowage" ]; then
	echo "building $stowage"
	go build -o "$stowage" ./cmd/stowage
fi
if [ -n "$reference" ] && [ ! -x "$reference" ]; then
	echo "note: $reference not installed, skipping the reference (apt-get install containers-storage)"
	reference=
fi

work=$(mktemp -d /var/tmp/stowage-bench.XXXXXX)
mnt="$work/mnt"
cleanup() {
	set +e
	if mountpoint -q "$mnt"; then
		# stores may still have layers "mounted" (vfs: no real mounts)
		umount "$mnt" || umount -l "$mnt"
	fi
	if [ "$keep" = no ]; then
		rm -rf "$work"
	else
		echo "kept $work"
	fi
}
trap cleanup EXIT INT TERM

echo "== scratch file system: 4G sparse $fs image, loop-mounted at $mnt"
mkdir -p "$mnt"
truncate -s 4G "$work/scratch.img"
case $fs in
ext4) mkfs.ext4 -q -F "$work/scratch.img" ;;
xfs) mkfs.xfs -q -f "$work/scratch.img" ;;
*) echo "unsupported --fs $fs" >&2; exit 2 ;;
esac
mount -o loop "$work/scratch.img" "$mnt"

echo "== generating the layer (${size_mb} MB, ${files} entries)"
python3 "$repo/bench/gen_layer.py" --size-mb "$size_mb" --files "$files" -o "$mnt/layer.tar"
zstd -q -T0 -3 "$mnt/layer.tar" -o "$mnt/layer.tar.zst"
echo "   layer.tar     $(stat -c %s "$mnt/layer.tar") bytes, $(tar -tf "$mnt/layer.tar" | wc -l) entries"
echo "   layer.tar.zst $(stat -c %s "$mnt/layer.tar.zst") bytes"
expected="sha256:$(sha256sum <"$mnt/layer.tar" | cut -d' ' -f1)"
sync

results="$work/results.txt"
: >"$results"

# timed VARIANT TOOL CMD...: run CMD once, append "VARIANT TOOL SECONDS".
timed() {
	local variant=$1 tool=$2 t0 t1
	shift 2
	t0=$(date +%s%N)
	"$@" >/dev/null
	if [ "$dosync" = yes ]; then sync; fi
	t1=$(date +%s%N)
	echo "$variant $tool $(((t1 - t0) / 1000000))" >>"$results"
}

store_args() { echo --graph "$1/root" --run "$1/run" --storage-driver "$driver" --debug=false; }

# drop TOOL DIR: wipe the store and undo driver-level mounts (overlay
# bind-mounts its home) so the directory can be removed.
drop() {
	"$1" $(store_args "$2") wipe >/dev/null 2>&1 || true
	"$1" $(store_args "$2") shutdown >/dev/null 2>&1 || true
	umount -R "$2/root/$driver" >/dev/null 2>&1 || true
	rm -rf "$2"
}

run_variant() {
	local variant=$1 file=$2 taropt=$3 i d
	echo "== $variant: $runs runs each, interleaved"
	for i in $(seq 1 "$runs"); do
		d="$mnt/run-$variant-$i"
		mkdir -p "$d/tar"
		sync
		timed "$variant" tar tar $taropt -xf "$file" -C "$d/tar"
		rm -rf "$d/tar"
		sync
		# shellcheck disable=SC2046
		timed "$variant" stowage "$stowage" $(store_args "$d/stowage") import-layer -f "$file"
		if [ "$i" -eq 1 ]; then
			got=$("$stowage" $(store_args "$d/stowage") layers --json | jq -r '.[0]["diff-digest"]')
			if [ "$got" != "$expected" ]; then
				echo "   WARNING: stowage recorded diff-digest $got, expected $expected" >&2
			fi
		fi
		drop "$stowage" "$d/stowage"
		if [ -n "$reference" ]; then
			sync
			timed "$variant" reference "$reference" $(store_args "$d/reference") import-layer -f "$file"
			drop "$reference" "$d/reference"
		fi
		rm -rf "$d"
		echo "   run $i done"
	done
}

run_variant plain "$mnt/layer.tar" ""
run_variant zstd "$mnt/layer.tar.zst" "-I zstd"

echo
echo "== results ($fs, $driver driver, $( [ "$dosync" = yes ] && echo "durable: sync inside the timing" || echo "page cache: sync outside the timing"), seconds)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    v, tool, s = line.split()
    rows.setdefault(v, {}).setdefault(tool, []).append(int(s) / 1000.0)
for v, tools in rows.items():
    print(f"{v}:")
    med = {t: statistics.median(x) for t, x in tools.items()}
    for t, x in tools.items():
        print(f"  {t:<10} median {med[t]:7.3f}  min {min(x):7.3f}  max {max(x):7.3f}  (n={len(x)})")
    if "tar" in med:
        for t in ("stowage", "reference"):
            if t in med:
                print(f"  {t}/tar = {med[t] / med['tar']:.2f}x")
    if "stowage" in med and "reference" in med:
        print(f"  stowage/reference = {med['stowage'] / med['reference']:.2f}x")
PY
