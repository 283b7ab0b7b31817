#!/usr/bin/env bash
# Build the demo image as an OCI layout, offline: examples/rootfs packed as
# one reproducible gzip'd layer by examples/mkimage (Go, no container tools).
#
#   examples/make-image.sh OUTDIR      # then: stowage pull oci:OUTDIR:latest NAME
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
out=${1:?usage: $0 OUTDIR}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/.."
go run ./examples/mkimage -o "$out" -ref latest -layer examples/rootfs -cmd /bin/hello
