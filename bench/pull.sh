#!/usr/bin/env bash
# Pull benchmark (issue 5, "Done when"): in one run, on a fresh loop-mounted
# scratch file system, generate a 10-layer gzip'd OCI image of a few hundred
# MB (bench/gen_image.py: many small files, a few large ones, links), then
# time side by side, interleaved run by run (a, b, c, d, a, b, ...):
#   a  serial   gzip -d | tar -x of every layer, one after another, into one dir
#   b  skopeo   skopeo copy oci:... containers-storage:[overlay@G+R]bench:1
#               (fresh containers-storage overlay store)
#   c  stowage  stowage pull oci:... (fresh overlay store)
#   d  2x       two concurrent stowage pulls of the image into one fresh store
# and print medians and the ratios against the targets:
#   c/a <= 0.8    c/b <= 0.4    d/c <= 1.2
# Every stowage store is checked after its first pull: the image's layer chain
# has exactly the image's diff IDs (d: both pulls succeeded and each layer is
# stored once).
#
# usage: bench/pull.sh [--quick] [--runs N] [--layers N] [--size-mb N]
#                      [--files N] [--fs ext4|xfs] [--driver overlay|vfs]
#                      [--sync] [--keep]
#   --quick    tiny image (3 layers of 1 MB), one run: exercises the script
#              (tests/bench.bats); targets are reported, not enforced
#   --size-mb  uncompressed size of each layer (default 40, 10 layers)
#   --sync     end every timed command with `sync` (by default the timings
#              are page-cache timings; an untimed sync runs before each)
# Exit status: 0 when every target passes (always in --quick), 1 otherwise,
# 2 on usage errors or when something failed. Needs root (loop mount),
# python3, gzip, tar, jq, skopeo (b is skipped without it), and Go: it
# builds bin/stowage with scripts/build.sh unless $STOWAGE names a binary.
set -euo pipefail

runs=5
layers=10
size_mb=40
files=2500
fs=ext4
driver=overlay
dosync=no
keep=no
quick=no
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=yes runs=1 layers=3 size_mb=1 files=100 ;;
	--runs) runs=$2; shift ;;
	--layers) layers=$2; shift ;;
	--size-mb) size_mb=$2; shift ;;
	--files) files=$2; shift ;;
	--fs) fs=$2; shift ;;
	--driver) driver=$2; shift ;;
	--sync) dosync=yes ;;
	--keep) keep=yes ;;
	-h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "pull.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" -ne 0 ]; then
	echo "pull.sh: needs root (loop mount of the scratch file system)" >&2
	exit 2
fi
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH="$PATH:/usr/local/go/bin"
export _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes

if [ -n "${STOWAGE:-}" ]; then
	stowage=$STOWAGE
else
	stowage=$repo/bin/stowage
	echo "== building $stowage (scripts/build.sh)"
	scripts/build.sh "$stowage"
fi
if ldd "$stowage" 2>/dev/null | grep -q libisal; then
	echo "   gzip inflate: ISA-L"
else
	echo "   gzip inflate: Go (built without ISA-L: see scripts/build.sh)"
fi
skopeo=$(command -v skopeo || true)
if [ -z "$skopeo" ]; then
	echo "note: skopeo not installed, skipping b (apt-get install skopeo)"
fi

work=$(mktemp -d /var/tmp/stowage-pullbench.XXXXXX)
mnt="$work/mnt"
cleanup() {
	set +e
	if mountpoint -q "$mnt"; then
		awk -v d="$mnt" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
			while read -r mp; do umount -l "$mp"; done
		umount "$mnt" || umount -l "$mnt"
	fi
	if [ "$keep" = no ]; then
		rm -rf "$work"
	else
		echo "kept $work"
	fi
}
trap cleanup EXIT INT TERM

img_size=$([ "$quick" = yes ] && echo 1G || echo 8G)
echo "== scratch file system: $img_size sparse $fs image, loop-mounted at $mnt"
mkdir -p "$mnt"
truncate -s "$img_size" "$work/scratch.img"
case $fs in
ext4) mkfs.ext4 -q -F "$work/scratch.img" ;;
xfs) mkfs.xfs -q -f "$work/scratch.img" ;;
*) echo "unsupported --fs $fs" >&2; exit 2 ;;
esac
mount -o loop "$work/scratch.img" "$mnt"

echo "== generating the image: $layers layers of ${size_mb} MB, ${files} entries each (gzip -6)"
seeds=$(seq -s, 1 "$layers")
python3 "$repo/bench/gen_image.py" "$mnt/oci" --ref bench --seeds "$seeds" --size-mb "$size_mb" --files "$files" >"$work/diff-ids"
src="oci:$mnt/oci:bench"
manifest=$(jq -r '.manifests[0].digest' "$mnt/oci/index.json")
mapfile -t blobs < <(jq -r '.layers[].digest | sub("sha256:"; "")' "$mnt/oci/blobs/sha256/${manifest#sha256:}")
total=0
for b in "${blobs[@]}"; do total=$((total + $(stat -c %s "$mnt/oci/blobs/sha256/$b"))); done
echo "   ${#blobs[@]} layers, $((total / 1000000)) MB compressed, $((layers * size_mb)) MB uncompressed"
policy="$work/policy.json"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$policy"
sync

results="$work/results.txt"
: >"$results"

# timed NAME CMD...: run CMD once, append "NAME MILLISECONDS".
timed() {
	local name=$1 t0 t1
	shift
	sync
	t0=$(date +%s%N)
	"$@" >"$work/last.log" 2>&1 || { echo "   $name failed:" >&2; cat "$work/last.log" >&2; return 1; }
	if [ "$dosync" = yes ]; then sync; fi
	t1=$(date +%s%N)
	echo "$name $(((t1 - t0) / 1000000))" >>"$results"
}

st() { "$stowage" --graph "$1/root" --run "$1/run" --storage-driver "$driver" --debug=false "${@:2}"; }

serial() {
	local b
	mkdir -p "$1"
	for b in "${blobs[@]}"; do
		gzip -d -c "$mnt/oci/blobs/sha256/$b" | tar -x -C "$1"
	done
}

pull_one() { st "$1" pull "$src"; }

pull_two() {
	local p1 p2 s1=0 s2=0
	st "$1" pull "$src" >"$1.one.log" 2>&1 &
	p1=$!
	st "$1" pull "$src" >"$1.two.log" 2>&1 &
	p2=$!
	wait "$p1" || s1=$?
	wait "$p2" || s2=$?
	if [ "$s1" -ne 0 ] || [ "$s2" -ne 0 ]; then
		echo "concurrent pulls exited $s1 and $s2:"
		cat "$1.one.log" "$1.two.log"
		return 1
	fi
}

# check_store DIR: the store has one image whose layer chain carries the
# image's diff IDs, and no other layers.
check_store() {
	local d=$1 img l got=()
	img=$(st "$d" images --json | jq -r '.[0].id')
	l=$(st "$d" image --json "$img" | jq -r '.[0].layer')
	while [ -n "$l" ] && [ "$l" != null ]; do
		got=("$(st "$d" layer --json "$l" | jq -r '.[0]["diff-digest"]')" "${got[@]}")
		l=$(st "$d" layer --json "$l" | jq -r '.[0].parent // empty')
	done
	if [ "$(printf '%s\n' "${got[@]}")" != "$(cat "$work/diff-ids")" ]; then
		echo "   CHECK FAILED: $d: the pulled image's diff IDs are not the image's" >&2
		return 1
	fi
	if [ "$(st "$d" layers --json | jq length)" -ne "$layers" ]; then
		echo "   CHECK FAILED: $d: $(st "$d" layers --json | jq length) layers stored, want $layers" >&2
		return 1
	fi
}

# drop DIR: shut the store down, undo its mounts, remove it.
drop() {
	st "$1" shutdown >/dev/null 2>&1 || true
	awk -v d="$1" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	rm -rf "$1" "$1".*.log
}

echo "== $runs runs, interleaved (a serial untar, b skopeo, c stowage pull, d two concurrent pulls)"
for i in $(seq 1 "$runs"); do
	d="$mnt/run-$i"
	timed a serial "$d-a"
	rm -rf "$d-a"
	if [ -n "$skopeo" ]; then
		mkdir -p "$d-b"
		timed b "$skopeo" --policy "$policy" copy --quiet "$src" \
			"containers-storage:[overlay@$d-b/root+$d-b/run]localhost/bench:1"
		drop "$d-b"
	fi
	timed c pull_one "$d-c"
	if [ "$i" -eq 1 ]; then check_store "$d-c"; fi
	drop "$d-c"
	timed d pull_two "$d-d"
	if [ "$i" -eq 1 ]; then check_store "$d-d"; fi
	drop "$d-d"
	echo "   run $i: $(grep -c . "$results") timings so far"
done

echo
echo "== results ($fs, $driver driver, $(nproc) CPUs, $([ "$dosync" = yes ] && echo "sync inside the timing" || echo "page-cache timings"); seconds)"
python3 - "$results" "$quick" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, ms = line.split()
    rows.setdefault(k, []).append(int(ms) / 1000.0)
names = {"a": "serial gzip -d | tar -x", "b": "skopeo copy (containers-storage)",
         "c": "stowage pull", "d": "2 concurrent stowage pulls"}
med = {k: statistics.median(v) for k, v in rows.items()}
for k in sorted(rows):
    v = rows[k]
    print(f"  {k} {names[k]:<34} median {med[k]:7.3f}  min {min(v):7.3f}  max {max(v):7.3f}  (n={len(v)})")
fails = 0
for num, den, target in (("c", "a", 0.8), ("c", "b", 0.4), ("d", "c", 1.2)):
    if num not in med or den not in med:
        print(f"  {num}/{den}: not measured")
        continue
    r = med[num] / med[den]
    ok = r <= target
    fails += not ok
    print(f"  {num}/{den} = {r:.2f}  (target <= {target})  {'PASS' if ok else 'FAIL'}")
if sys.argv[2] == "yes":
    print("  (--quick: tiny image, targets not enforced)")
    sys.exit(0)
sys.exit(1 if fails else 0)
PY
