#!/usr/bin/env python3
"""Write a deterministic OCI image layout for the pull benchmark and tests.

Each layer is bench/gen_layer.py's tar for one seed, gzip'd with `gzip -n`
(so the same seed always gives the same blob), and an image lists its layers
base first. Images sharing seeds share layers. With --platforms, one image
per platform (its layers' seeds offset by the platform's position after the
first) goes into an image index, and the index is what REF names.

usage: gen_image.py LAYOUT_DIR [--ref REF] [--seeds 1,2,3] [--size-mb N]
                    [--files N] [--platforms linux/amd64,linux/arm64]
                    [--compress gzip|none]
Prints the diff IDs (one per line, base first; for an index, those of the
first platform) on stdout.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(layout, "blobs", "sha256", d)
    if not os.path.exists(p):
        with open(p + ".tmp", "wb") as f:
            f.write(data)
        os.rename(p + ".tmp", p)
    return "sha256:" + d, len(data)


def make_layer(layout, seed, size_mb, files, compress, cache):
    key = (seed, size_mb, files, compress)
    if key in cache:
        return cache[key]
    tar = subprocess.run([sys.executable, os.path.join(HERE, "gen_layer.py"), "--size-mb", str(size_mb),
                          "--files", str(files), "--seed", str(seed)], check=True, stdout=subprocess.PIPE).stdout
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    if compress == "gzip":
        blob = subprocess.run(["gzip", "-n", "-6"], input=tar, check=True, stdout=subprocess.PIPE).stdout
        mt = "application/vnd.oci.image.layer.v1.tar+gzip"
    else:
        blob, mt = tar, "application/vnd.oci.image.layer.v1.tar"
    dg, size = write_blob(layout, blob)
    cache[key] = ({"mediaType": mt, "digest": dg, "size": size}, diff_id)
    return cache[key]


def make_image(layout, seeds, args, platform, cache):
    layers, diff_ids = [], []
    for s in seeds:
        desc, diff_id = make_layer(layout, s, args.size_mb, args.files, args.compress, cache)
        layers.append(desc)
        diff_ids.append(diff_id)
    os_, arch = platform.split("/", 1)
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": os_,
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"gen_image.py seed {s}"} for s in seeds],
    }
    cdg, csize = write_blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": csize},
        "layers": layers,
    }
    mdg, msize = write_blob(layout, json.dumps(manifest, sort_keys=True).encode())
    return {"mediaType": manifest["mediaType"], "digest": mdg, "size": msize}, diff_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("layout")
    ap.add_argument("--ref", default="")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--size-mb", type=int, default=40)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--platforms", default="")
    ap.add_argument("--compress", choices=["gzip", "none"], default="gzip")
    args = ap.parse_args()

    os.makedirs(os.path.join(args.layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(args.layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    seeds = [int(s) for s in args.seeds.split(",") if s]
    cache = {}
    if args.platforms:
        manifests, first = [], None
        for n, plat in enumerate(args.platforms.split(",")):
            desc, diff_ids = make_image(args.layout, [s + 1000 * n for s in seeds], args, plat, cache)
            os_, arch = plat.split("/", 1)
            desc["platform"] = {"os": os_, "architecture": arch}
            manifests.append(desc)
            first = first or diff_ids
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        dg, size = write_blob(args.layout, json.dumps(index, sort_keys=True).encode())
        top = {"mediaType": index["mediaType"], "digest": dg, "size": size}
        diff_ids = first
    else:
        top, diff_ids = make_image(args.layout, seeds, args, "linux/amd64", cache)
    if args.ref:
        top["annotations"] = {"org.opencontainers.image.ref.name": args.ref}
    ipath = os.path.join(args.layout, "index.json")
    existing = []
    if os.path.exists(ipath):
        existing = json.load(open(ipath)).get("manifests", [])
        existing = [m for m in existing if not args.ref or m.get("annotations", {}).get("org.opencontainers.image.ref.name") != args.ref]
    with open(ipath + ".tmp", "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": existing + [top]}, f)
    os.rename(ipath + ".tmp", ipath)
    print("\n".join(diff_ids))


if __name__ == "__main__":
    main()
