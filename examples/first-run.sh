#!/usr/bin/env bash
# The main job on an embedded default: build stowage, turn examples/rootfs
# into a layer tarball, import it into a store, make an image and a
# container from it, and mount the container.
#
#   examples/first-run.sh            # store under /var/tmp/stowage-demo
#   STOWAGE_DEMO=/some/dir examples/first-run.sh
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
cd "$(dirname "$0")/.."

demo=${STOWAGE_DEMO:-/var/tmp/stowage-demo}
driver=${STOWAGE_DRIVER:-vfs}
mkdir -p bin "$demo"
go build -o bin/stowage ./cmd/stowage
st() { bin/stowage --graph "$demo/root" --run "$demo/run" --storage-driver "$driver" "$@"; }

# A reproducible gzip'd layer from the embedded rootfs.
layer_tar=$demo/hello-layer.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C examples/rootfs -cf - . | gzip -n >"$layer_tar"

# Start from a clean demo store so the script can be re-run.
st wipe >/dev/null 2>&1 || true

layer=$(st import-layer -f "$layer_tar" | head -n1)
img=$(st create-image -n localhost/hello:latest "$layer" | head -n1)
ctr=$(st create-container -n hello-ctr "$img" | head -n1)
mnt=$(st mount "$ctr")

echo "layer:      $layer"
echo "image:      $img (localhost/hello:latest)"
echo "container:  $ctr (hello-ctr)"
echo "mounted at: $mnt"
echo "--- $mnt/usr/share/hello/greeting.txt:"
cat "$mnt/usr/share/hello/greeting.txt"
echo "--- layer record:"
st layer "$layer"
st unmount "$ctr" >/dev/null
st shutdown >/dev/null # releases driver-level mounts (overlay's private home bind mount)
echo "unmounted; the store stays in $demo (remove it with: rm -rf $demo)"
