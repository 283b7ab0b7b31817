#!/usr/bin/env bash
# Pull from a local registry: start Debian's docker-registry on
# 127.0.0.1:$PORT (default 5000) with a temporary storage dir, push the demo
# image into it with skopeo, pull it back with stowage (plain HTTP, as for
# every loopback registry), and stop the registry.
#
#   apt-get install -y docker-registry skopeo
#   examples/registry-pull.sh          # store under /var/tmp/stowage-demo-registry
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
cd "$(dirname "$0")/.."

port=${PORT:-5000}
demo=${STOWAGE_DEMO:-/var/tmp/stowage-demo-registry}
for cmd in docker-registry skopeo; do
	command -v "$cmd" >/dev/null || { echo "$cmd is missing: apt-get install -y docker-registry skopeo" >&2; exit 1; }
done
mkdir -p bin "$demo"
scripts/build.sh bin/stowage
st() { bin/stowage --graph "$demo/root" --run "$demo/run" --storage-driver "${STOWAGE_DRIVER:-vfs}" "$@"; }

tmp=$(mktemp -d)
cat >"$tmp/config.yml" <<CONF
version: 0.1
storage:
  filesystem:
    rootdirectory: $tmp/data
http:
  addr: 127.0.0.1:$port
CONF
docker-registry serve "$tmp/config.yml" >"$tmp/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; wait $registry 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
	sleep 0.1
done

examples/make-image.sh "$tmp/oci" >/dev/null
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$tmp/policy.json"
skopeo --policy "$tmp/policy.json" copy -q --dest-tls-verify=false \
	oci:"$tmp/oci":latest docker://127.0.0.1:"$port"/hello:latest

st wipe >/dev/null 2>&1 || true
img=$(st pull docker://127.0.0.1:"$port"/hello:latest)
echo "pulled $img"
st images
st shutdown >/dev/null
