#!/usr/bin/env bash
# Installs (as root, through apt-get) the Debian packages the test suites
# need, but only those whose commands are missing, so that `tests/run.sh`
# works on a fresh machine and costs nothing on a prepared one.
#   tests/deps.sh          install what is missing
#   tests/deps.sh --all    install the whole list (what CI does)
set -euo pipefail

# command:package pairs; the package provides the command (or the file,
# for an absolute path).
needs=(
	bats:bats jq:jq containers-storage:containers-storage
	tar:tar gzip:gzip bzip2:bzip2 xz:xz-utils zstd:zstd
	cmp:diffutils getfattr:attr python3:python3
	mkfs.xfs:xfsprogs mkfs.ext4:e2fsprogs losetup:mount git:git
	skopeo:skopeo podman:podman crun:crun runc:runc umoci:umoci
	strace:strace xfs_io:xfsprogs /usr/bin/time:time setfattr:attr
	docker-registry:docker-registry curl:curl
	gcc:gcc /usr/include/isa-l/igzip_lib.h:libisal-dev
)

missing=()
for pair in "${needs[@]}"; do
	cmd=${pair%%:*} pkg=${pair#*:}
	if [ "${1:-}" = --all ] || ! { command -v "$cmd" >/dev/null 2>&1 || [ -e "$cmd" ]; }; then
		missing+=("$pkg")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "tests/deps.sh: missing packages (install them as root): ${missing[*]}" >&2
	exit 1
fi
echo "=== installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates "${missing[@]}"
