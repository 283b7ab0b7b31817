#!/usr/bin/env python3
"""Write a deterministic layer tar to stdout (or a file) for the import benchmark.

Default shape: about 250 MB in about 17,000 entries: many small files (a mix of
random and text-like, compressible data), a few large files, directories,
symlinks and hard links. The same arguments always produce the same bytes.

usage: gen_layer.py [--size-mb N] [--files N] [--seed N] [-o OUT]
"""
import argparse
import io
import random
import sys
import tarfile

MTIME = 1600000000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=250)
    ap.add_argument("--files", type=int, default=17000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    total = args.size_mb * 1000 * 1000
    nfiles = args.files
    nlarge = max(1, nfiles // 850)          # ~20 large files
    large_share = 0.55                      # of the bytes
    nlinks = nfiles // 100                  # symlinks
    nhard = nfiles // 300                   # hard links
    ndirs = max(1, nfiles // 20)
    nsmall = nfiles - nlarge - nlinks - nhard - ndirs
    if nfiles <= 64:
        # few-file layer: every file is large
        nlarge, large_share, nlinks, nhard, ndirs = nfiles - 1, 1.0, 0, 0, 1
        nsmall = 0

    # text-like, compressible source material
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(2000)]
    text = bytearray()
    while len(text) < 4 * 1024 * 1024:
        text += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    text = bytes(text)

    def data(n, kind):
        if kind == "random":
            # randbytes is limited to 2 Gbit per call
            return b"".join(rng.randbytes(min(1 << 24, n - i)) for i in range(0, n, 1 << 24))
        off = rng.randrange(0, len(text) - n) if n < len(text) else 0
        out = text[off:off + n]
        while len(out) < n:
            out += text[: n - len(out)]
        return out

    large_each = int(total * large_share) // nlarge
    small_budget = total - large_each * nlarge
    # exponential sizes scaled to the small-file budget
    raw = [rng.expovariate(1.0) for _ in range(nsmall)]
    scale = small_budget / sum(raw) if raw else 0
    small_sizes = [min(int(r * scale), 1024 * 1024) for r in raw]

    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name):
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = MTIME
            tar.addfile(ti)

        def add_file(name, payload, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size = len(payload)
            ti.mode = mode
            ti.mtime = MTIME
            tar.addfile(ti, io.BytesIO(payload))

        dirs = []
        for i in range(ndirs):
            parent = rng.choice(dirs) if dirs and rng.random() < 0.7 else None
            name = f"{parent}/d{i:05d}" if parent else f"usr/d{i:05d}"
            if parent is None and "usr" not in dirs:
                add_dir("usr")
                dirs.append("usr")
            add_dir(name)
            dirs.append(name)

        files = []
        for i, size in enumerate(small_sizes):
            name = f"{rng.choice(dirs)}/f{i:06d}.{rng.choice(['so', 'py', 'txt', 'bin', 'h'])}"
            kind = "random" if rng.random() < 0.5 else "text"
            add_file(name, data(size, kind), 0o755 if i % 7 == 0 else 0o644)
            files.append(name)

        add_dir("opt")
        for i in range(nlarge):
            name = f"opt/large-{i:03d}.dat"
            kind = "random" if i % 2 == 0 else "text"
            add_file(name, data(large_each, kind))
            files.append(name)

        for i in range(nlinks):
            ti = tarfile.TarInfo(f"{rng.choice(dirs)}/link{i:05d}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/" + rng.choice(files)
            ti.mtime = MTIME
            ti.mode = 0o777
            tar.addfile(ti)

        for i in range(nhard):
            ti = tarfile.TarInfo(f"{rng.choice(dirs)}/hard{i:05d}")
            ti.type = tarfile.LNKTYPE
            ti.linkname = rng.choice(files)
            ti.mtime = MTIME
            ti.mode = 0o644
            tar.addfile(ti)
    if out is not sys.stdout.buffer:
        out.close()


if __name__ == "__main__":
    main()
