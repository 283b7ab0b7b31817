#!/usr/bin/env bash
# The main job on an embedded default: build stowage, build the demo image
# (examples/rootfs as an OCI layout, no network), pull it into a store,
# create a container from it and mount it.
#
#   examples/first-run.sh            # store under /var/tmp/stowage-demo
#   STOWAGE_DEMO=/some/dir STOWAGE_DRIVER=overlay examples/first-run.sh
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
cd "$(dirname "$0")/.."

demo=${STOWAGE_DEMO:-/var/tmp/stowage-demo}
driver=${STOWAGE_DRIVER:-vfs}
mkdir -p bin "$demo"
scripts/build.sh bin/stowage
st() { bin/stowage --graph "$demo/root" --run "$demo/run" --storage-driver "$driver" "$@"; }

# The image: an OCI layout with one reproducible layer made from examples/rootfs.
examples/make-image.sh "$demo/hello-oci"

# Start from a clean demo store so the script can be re-run.
st wipe >/dev/null 2>&1 || true

img=$(st pull oci:"$demo/hello-oci":latest localhost/hello:latest)
ctr=$(st create-container -n hello-ctr "$img" | head -n1)
mnt=$(st mount "$ctr")

echo "image:      $img (localhost/hello:latest)"
echo "container:  $ctr (hello-ctr)"
echo "mounted at: $mnt"
echo "--- $mnt/usr/share/hello/greeting.txt:"
cat "$mnt/usr/share/hello/greeting.txt"
echo "--- image record:"
st image "$img"
st unmount "$ctr" >/dev/null
st shutdown >/dev/null # releases driver-level mounts (overlay's private home bind mount)
echo "unmounted; the store stays in $demo (remove it with: rm -rf $demo)"
