#!/bin/bash
# Regenerates the tar-split compatibility fixtures with the reference
# containers-storage (v1.43) CLI: a small tar with PAX long names, an xattr,
# a hard link, a symlink, an empty file, a non-UTF-8 name and 10 KiB record
# padding is imported with `import-layer`, and the reference's
# <id>.tar-split.gz is kept next to the original tar.
# Usage: make.sh   (as root, in this directory)
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/layer.tar" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
def add(tf, name, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    ti.mtime = 1700000000
    ti.mode = kw.pop("mode", 0o644)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)
# tarfile's default record size is 10 KiB: the archive ends with padding
# well beyond the two zero blocks.
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
    add(tf, "etc", type=tarfile.DIRTYPE, mode=0o755)
    add(tf, "etc/hosts", b"127.0.0.1 localhost\n")
    add(tf, "etc/empty", b"")
    add(tf, "etc/hosts.link", type=tarfile.LNKTYPE, linkname="etc/hosts")
    add(tf, "etc/sym", type=tarfile.SYMTYPE, linkname="/etc/hosts", mode=0o777)
    add(tf, "d" * 120 + "/" + "f" * 130, b"long name\n")
    ti = tarfile.TarInfo("xattr-file"); ti.mtime = 1700000000; ti.size = 3
    ti.pax_headers = {"SCHILY.xattr.user.test": "value"}
    tf.addfile(ti, io.BytesIO(b"xa\n"))
    add(tf, "owned", b"1000\n", uid=1000, gid=1001)
    add(tf, "big", bytes(range(256)) * 40)
PY
# A non-UTF-8 name, written by GNU tar (raw bytes in the ustar name).
mkdir -p "$work/src"
printf 'latin1\n' > "$work/src/$(printf 'caf\xe9')"
tar --format=gnu -C "$work/src" -cf "$work/nonutf8.tar" --owner=0 --group=0 --mtime=@1700000000 .
cp "$work/layer.tar" layer.tar
cp "$work/nonutf8.tar" nonutf8.tar
for t in layer nonutf8; do
  cs=(containers-storage --graph "$work/R-$t" --run "$work/RR-$t" --storage-driver vfs)
  gzip -c "$t.tar" > "$work/$t.tar.gz"
  id=$("${cs[@]}" import-layer -f "$work/$t.tar.gz" | tail -1)
  cp "$work/R-$t/vfs-layers/$id.tar-split.gz" "$t.tar-split.gz"
  "${cs[@]}" diff -u "$id" > "$work/$t.diff"
  cmp "$work/$t.diff" "$t.tar"   # the reference reproduces it too
done
ls -l
