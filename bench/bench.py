#!/usr/bin/env python3
"""Speed benchmark of issue 4 item 5: GNU tar, containers-storage 1.43 and
stowage side by side in one run, on a fresh loop-mounted scratch file system.

Run it through bench/run.sh (which builds bin/stowage and bin/hashfloor).
Every scenario repeats its commands interleaved (tar, hash, stowage,
reference, tar, ...) so machine drift hits all tools alike, and compares
medians. It ends with a table of the item's targets, PASS or FAIL each.

Timings of imports are durable: each command is followed by `sync -f` of
the scratch file system, timed separately (so the reference is shown both
with and without it; the x-faster-than-reference target uses the
reference *without* the sync, its default and most favourable number).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20


def log(*a):
    print(*a, flush=True)


class Runner:
    def __init__(self, args):
        self.args = args
        self.repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.stowage = args.stowage or os.path.join(self.repo, "bin", "stowage")
        self.hashfloor = os.path.join(self.repo, "bin", "hashfloor")
        self.reference = None if args.no_reference else shutil.which("containers-storage")
        self.times = {}    # key -> [seconds]
        self.rss = {}      # key -> [KiB]
        self.holds = {}    # driver -> [(scenario, longest write hold, longest hold) ns] per import
        self.waits = []    # per parallel run: summed lock waits (ns)
        self.notes = []
        self.cpu = {}      # key -> [CPU seconds, user + system]
        self.last_cpu = 0.0
        self.seq = 0

    # ---- process helpers -------------------------------------------------
    def run(self, cmd, env=None, stdout=subprocess.DEVNULL, check=True, shell=False):
        """Runs cmd; returns (seconds, maxrss KiB, returncode, stderr text)."""
        err = tempfile.TemporaryFile()
        e = dict(os.environ)
        if env:
            e.update(env)
        cmd, rssf = self.with_rss(cmd, shell)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=stdout, stderr=err, env=e)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        etext = err.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise SystemExit(f"command failed ({p.returncode}): {cmd}\n{etext}")
        return dt, self.read_rss(rssf, ru), p.returncode, etext

    def with_rss(self, cmd, shell=False):
        """Wraps cmd in GNU time, which reports the peak RSS of the command
        itself: wait4's ru_maxrss of a child forked from this (big) Python
        process would start at Python's own size."""
        if shell:
            cmd = ["sh", "-c", cmd]
        if not os.path.exists("/usr/bin/time"):
            return cmd, None
        fd, path = tempfile.mkstemp(prefix="rss.", dir=self.work)
        os.close(fd)
        return ["/usr/bin/time", "-q", "-f", "%M %U %S", "-o", path] + cmd, path

    def read_rss(self, path, ru):
        """Returns the peak RSS in KiB; remembers the CPU seconds (user +
        system) in self.last_cpu."""
        self.last_cpu = ru.ru_utime + ru.ru_stime
        if path is None:
            return ru.ru_maxrss
        try:
            with open(path) as f:
                f = f.read().split()
            self.last_cpu = float(f[-2]) + float(f[-1])
            return int(f[-3])
        except (OSError, ValueError, IndexError):
            return ru.ru_maxrss
        finally:
            os.unlink(path)

    def spawn(self, cmd, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        err = tempfile.TemporaryFile()
        cmd, rssf = self.with_rss(cmd)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=e)
        p.rssf = rssf
        return p, err

    def syncfs(self):
        return self.run(["sync", "-f", self.mnt])[0]

    def rec(self, key, secs, rss=None, cpu=None):
        self.times.setdefault(key, []).append(secs)
        if cpu is not None:
            self.cpu.setdefault(key, []).append(cpu)
        if rss is not None:
            self.rss.setdefault(key, []).append(rss)

    def med(self, key):
        v = self.times.get(key)
        return statistics.median(v) if v else None

    # ---- stores ----------------------------------------------------------
    def store_args(self, d, driver):
        return ["--graph", f"{d}/root", "--run", f"{d}/run", "--storage-driver", driver]

    def drop(self, tool, d, driver):
        a = self.store_args(d, driver)
        self.run([tool] + a + ["wipe"], check=False)
        self.run([tool] + a + ["shutdown"], check=False)
        self.run(["umount", "-R", f"{d}/root/{driver}"], check=False)
        shutil.rmtree(d, ignore_errors=True)

    def lockstats(self, path):
        out = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    out.append(json.loads(line))
            os.unlink(path)
        return out

    def layers_hold(self, recs, key="longest_write_hold"):
        # A layer commit is a write hold of layers.lock; read holds (lookups,
        # planning, the commit's prepare) are reported apart (read_holds).
        h = 0
        for r in recs:
            for l in r["locks"]:
                if l["path"].endswith("/layers.lock"):
                    h = max(h, l.get(key, l["longest_hold"]))
        return h

    def fresh(self, name):
        self.seq += 1
        d = os.path.join(self.mnt, f"{name}-{self.seq}")
        os.makedirs(d)
        return d

    # ---- set-up ----------------------------------------------------------
    def setup(self):
        a = self.args
        self.work = tempfile.mkdtemp(prefix="stowage-bench.", dir="/var/tmp")
        self.mnt = os.path.join(self.work, "mnt")
        os.makedirs(self.mnt)
        img = os.path.join(self.work, "scratch.img")
        size = "3G" if a.quick else "24G"
        log(f"== scratch: {size} sparse {a.fs} image loop-mounted at {self.mnt}")
        self.run(["truncate", "-s", size, img])
        if a.fs == "ext4":
            self.run(["mkfs.ext4", "-q", "-F", img])
        else:
            self.run(["mkfs.xfs", "-q", "-f", img])
        self.run(["mount", "-o", "loop", img, self.mnt])
        self.layers = os.path.abspath(a.cache)
        os.makedirs(self.layers, exist_ok=True)

    def cleanup(self):
        if getattr(self, "mnt", None):
            subprocess.run(["umount", self.mnt], stderr=subprocess.DEVNULL)
            if subprocess.run(["mountpoint", "-q", self.mnt]).returncode == 0:
                subprocess.run(["umount", "-l", self.mnt])
            if self.args.keep:
                log(f"kept {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)

    def gen(self, name, size_mb, files, seed):
        """Generates (or takes from the cache) a layer; inputs live outside
        the scratch file system and are read from the page cache."""
        gen = os.path.join(self.repo, "bench", "gen_layer.py")
        with open(gen, "rb") as f:
            import hashlib
            v = hashlib.sha256(f.read()).hexdigest()[:8]
        out = os.path.join(self.layers, f"{name}-{size_mb}m-{files}f-s{seed}-g{v}.tar")
        if not os.path.exists(out):
            self.run([sys.executable, gen, "--size-mb", str(size_mb), "--files", str(files),
                      "--seed", str(seed), "-o", out + ".tmp"])
            os.rename(out + ".tmp", out)
        return out

    def gen_bighdr(self, mb):
        # One entry whose PAX extended header carries a single mb MiB record.
        import io
        import tarfile
        out = os.path.join(self.layers, f"bighdr-{mb}m.tar")
        if os.path.exists(out):
            return out
        with open(out, "wb") as f:
            tf = tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT)
            ti = tarfile.TarInfo("big")
            ti.size = 5
            ti.mtime = 1600000000
            ti.pax_headers = {"comment": "x" * (mb * MiB)}
            tf.addfile(ti, io.BytesIO(b"hello"))
            tf.close()
        return out

    def digest(self, path):
        out = subprocess.run(["sha256sum", path], capture_output=True, check=True, text=True).stdout
        return "sha256:" + out.split()[0]

    def prepare(self):
        a = self.args
        q = a.quick
        sz = (24, 1700) if q else (a.size_mb, a.files)
        log(f"== generating layers in {self.layers}")
        self.l_plain = self.gen("layer", sz[0], sz[1], 20240601)
        self.l_zstd = self.l_plain + ".zst"
        if not os.path.exists(self.l_zstd):
            self.run(["zstd", "-q", "-T0", "-3", self.l_plain, "-o", self.l_zstd + ".tmp"])
            os.rename(self.l_zstd + ".tmp", self.l_zstd)
        self.l_big = self.gen("big", 64 if q else a.big_mb, 8, 7)
        pm, pf = (6, 600) if q else (72, 8000)
        self.l_par = [self.gen(f"par{i}", pm, pf, 100 + i) for i in range(a.procs)]
        self.l_hdr = self.gen_bighdr(a.header_mb)
        for p in [self.l_plain, self.l_zstd, self.l_big] + self.l_par + [self.l_hdr]:
            log(f"   {os.path.basename(p):40} {os.path.getsize(p) / 1e6:9.1f} MB")
        self.expect = {self.l_plain: self.digest(self.l_plain), self.l_big: self.digest(self.l_big)}
        self.expect[self.l_zstd] = self.expect[self.l_plain]
        # Warm the page cache with every input: all tools read them from memory.
        for p in [self.l_plain, self.l_zstd, self.l_big] + self.l_par:
            self.run(["cat", p], stdout=subprocess.DEVNULL)
        self.syncfs()
        self.overlay = self.args.overlay and self.overlay_works()

    def overlay_works(self):
        d = self.fresh("ovl-probe")
        dt, rss, rc, err = self.run([self.stowage] + self.store_args(d, "overlay") + ["layers"], check=False)
        self.drop(self.stowage, d, "overlay")
        if rc != 0:
            self.notes.append(f"overlay driver unavailable here, its lock holds are not measured: {err.strip()[:200]}")
        return rc == 0

    # ---- one import ------------------------------------------------------
    def import_layer(self, tool, driver, layer, key, verify=False, after=None):
        d = self.fresh(key.replace("/", "-"))
        stats = os.path.join(self.mnt, f"lockstats-{self.seq}.json")
        env = {"STOWAGE_LOCK_STATS": stats}
        prof = self.args.cpuprofile
        if prof and tool == self.stowage:
            env["STOWAGE_CPUPROFILE"] = os.path.join(prof, f"{key.replace('/', '-')}-{self.seq}.prof")
        out = tempfile.TemporaryFile()
        # Create the store first: the timing (and the lock statistics) are
        # those of the import alone.
        self.run([tool] + self.store_args(d, driver) + ["layers"])
        self.syncfs()
        dt, rss, rc, err = self.run([tool] + self.store_args(d, driver) + ["import-layer", "-f", layer],
                                    env=env, stdout=out)
        cpu = self.last_cpu
        st = self.syncfs()
        self.rec(key, dt + st, rss, cpu)
        self.rec(key + "/nosync", dt)
        if tool == self.stowage:
            recs = self.lockstats(stats)
            self.holds.setdefault(driver, []).append(
                (key.split("/")[0], self.layers_hold(recs), self.layers_hold(recs, "longest_hold")))
        if verify:
            got = subprocess.run([tool] + self.store_args(d, driver) + ["layers", "--json"],
                                 capture_output=True, text=True).stdout
            want = self.expect[layer]
            if want not in got:
                self.notes.append(f"WARNING: {key}: layer record lacks diff digest {want}")
        if after:
            out.seek(0)
            lid = out.read().decode().split()[0]
            after(d, lid)
        self.drop(tool, d, driver)
        self.syncfs()

    def tar_x(self, layer, key, taropt):
        d = self.fresh("tar")
        dt = self.run(["tar"] + taropt + ["-xf", layer, "-C", d])[0]
        cpu = self.last_cpu
        st = self.syncfs()
        self.rec(key, dt + st, cpu=cpu)
        shutil.rmtree(d)
        self.syncfs()

    def hash_floor(self, files, key):
        out = subprocess.run([self.hashfloor] + files, capture_output=True, text=True, check=True).stdout
        self.rec(key, float(out.strip().splitlines()[-1].split()[1]))

    # ---- scenarios -------------------------------------------------------
    def scen_import(self, name, layer, taropt, hashfiles, with_diff=False, overlay=False):
        n = self.args.runs
        log(f"== import {name}: {n} runs, interleaved")
        for i in range(n):
            self.tar_x(layer, f"{name}/tar", taropt)
            self.hash_floor(hashfiles, f"{name}/hash")
            after = self.diff_bench if with_diff else None
            self.import_layer(self.stowage, "vfs", layer, f"{name}/stowage", verify=(i == 0), after=after)
            if self.reference:
                self.import_layer(self.reference, "vfs", layer, f"{name}/reference")
            if overlay and self.overlay:
                self.import_layer(self.stowage, "overlay", layer, f"{name}/stowage-overlay")
            log(f"   run {i + 1} done")

    def diff_bench(self, d, lid):
        tree = os.path.join(d, "root", "vfs", "dir", lid)
        a = self.store_args(d, "vfs")
        for _ in range(self.args.diff_reps):
            dt = self.run(f"'{self.stowage}' {' '.join(a)} diff {lid} | cat >/dev/null", shell=True)[0]
            self.rec("diff/stowage", dt, cpu=self.last_cpu)
            dt = self.run(f"tar -cf - -C '{tree}' . | cat >/dev/null", shell=True)[0]
            self.rec("diff/tar-c", dt, cpu=self.last_cpu)
        if "diff/checked" not in self.times:
            self.times["diff/checked"] = [0]
            got = subprocess.run(f"'{self.stowage}' {' '.join(a)} diff {lid} | sha256sum", shell=True,
                                 capture_output=True, text=True).stdout.split()[0]
            if "sha256:" + got != self.expect[self.l_plain]:
                self.notes.append("WARNING: diff re-export is not bit-identical to the imported tar")

    def scen_parallel(self):
        n = self.args.runs
        k = self.args.procs
        log(f"== {k} parallel imports of different layers into one store: {n} runs")
        for i in range(n):
            # Odd runs time stowage first: neither side always follows the
            # other's clean-up (64k unlinked files whose freeing the file
            # system finishes lazily).
            if i % 2:
                self.par_store(self.stowage, "par/stowage", stats=True)
                self.syncfs()
            self.par_tar()
            if i % 2 == 0:
                self.par_store(self.stowage, "par/stowage", stats=True)
                self.syncfs()
            if self.reference and i < self.args.ref_par_runs:
                self.par_store(self.reference, "par/reference", stats=False)
                self.syncfs()
            log(f"   run {i + 1} done ({'stowage' if i % 2 else 'tar+hash'} first): "
                f"tar+hash {self.times['par/tar+hash'][-1]:.2f} s, stowage {self.times['par/stowage'][-1]:.2f} s")

    def par_tar(self):
        """Baseline: per layer, tar -x and the hash floor side by side."""
        dirs = [self.fresh("ptar") for _ in range(self.args.procs)]
        t0 = time.perf_counter()
        procs = [self.spawn(["sh", "-c", f"tar -xf '{l}' -C '{d}' & '{self.hashfloor}' '{l}' >/dev/null; wait"])
                 for l, d in zip(self.l_par, dirs)]
        for p, _ in procs:
            p.wait()
            if p.rssf:
                os.unlink(p.rssf)
        self.syncfs()
        self.rec("par/tar+hash", time.perf_counter() - t0)
        for d in dirs:
            shutil.rmtree(d)
        self.syncfs()

    def par_store(self, tool, key, stats):
        d = self.fresh("pstore")
        a = self.store_args(d, "vfs")
        # Create the store first so the processes race on imports, not on
        # initialising the store.
        self.run([tool] + a + ["layers"])
        statf = os.path.join(self.mnt, f"plock-{self.seq}.json")
        env = {"STOWAGE_LOCK_STATS": statf} if stats else None
        t0 = time.perf_counter()
        procs = [self.spawn([tool] + a + ["import-layer", "-f", l], env=env) for l in self.l_par]
        rss = 0
        failed = []
        for p, err in procs:
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            rss = max(rss, self.read_rss(p.rssf, ru))
            if p.returncode != 0:
                err.seek(0)
                failed.append(err.read().decode(errors="replace").strip()[:300])
        self.syncfs()
        self.rec(key, time.perf_counter() - t0, rss)
        if failed:
            self.notes.append(f"WARNING: {key}: {len(failed)} imports failed: {failed[0]}")
        if stats:
            recs = self.lockstats(statf)
            self.waits.append(sum(l["waited"] for r in recs for l in r["locks"]))
            self.holds.setdefault("vfs", []).append(("par", self.layers_hold(recs), self.layers_hold(recs, "longest_hold")))
        self.drop(tool, d, "vfs")
        self.syncfs()

    def scen_header(self):
        log(f"== layer with a {self.args.header_mb} MiB PAX header")
        for tool, key in [(self.stowage, "hdr/stowage"), (self.reference, "hdr/reference")]:
            if not tool:
                continue
            d = self.fresh("hdr")
            dt, rss, rc, err = self.run([tool] + self.store_args(d, "vfs") + ["import-layer", "-f", self.l_hdr],
                                        check=False)
            self.rec(key, dt, rss)
            msg = err.strip().splitlines()[-1] if err.strip() else ""
            self.times[key + "/result"] = ["accepted" if rc == 0 else f"refused: {msg}"]
            self.drop(tool, d, "vfs")

    # ---- report ----------------------------------------------------------
    def report(self):
        a = self.args
        log("")
        log(f"== timings (seconds; durable = command + sync -f; {a.fs} scratch, {a.runs} runs)")
        log(f"   {'measurement':34} {'median':>8} {'min':>8} {'max':>8} {'spread':>7}  n   {'CPU s':>6}  peak RSS")
        for k, v in self.times.items():
            if not v or isinstance(v[0], str) or k.endswith("/checked"):
                continue
            m = statistics.median(v)
            spread = (max(v) - min(v)) / m * 100 if m else 0
            r = self.rss.get(k)
            rs = f"{max(r) / 1024:6.1f} MiB" if r else ""
            c = self.cpu.get(k)
            cs = f"{statistics.median(c):6.2f}" if c else " " * 6
            log(f"   {k:34} {m:8.3f} {min(v):8.3f} {max(v):8.3f} {spread:6.0f}%  {len(v):<3} {cs}  {rs}")
        for k, v in self.times.items():
            if v and isinstance(v[0], str):
                log(f"   {k}: {v[0]}")

        rows = []

        def target(name, value, limit, ok, fmt="{:.2f}x"):
            if value is None:
                rows.append((name, "not measured", limit, "SKIP"))
                return
            rows.append((name, fmt.format(value), limit, "PASS" if ok(value) else "FAIL"))

        for name, label in [("plain", "import 250MB/17k plain"), ("zstd", "import 250MB/17k zstd"),
                            ("big", "import 1GiB few-file")]:
            tar, h, s = self.med(f"{name}/tar"), self.med(f"{name}/hash"), self.med(f"{name}/stowage")
            if tar is None or s is None:
                target(label + " / floor", None, "<= 1.30x", None)
                continue
            floor = max(tar, h)
            which = "tar-x+sync" if tar >= h else "sha256"
            rows.append((f"  floor {name}", f"{floor:.2f}s ({which})", f"tar {tar:.2f}s, hash {h:.2f}s", ""))
            target(label + " / floor", s / floor, "<= 1.30x", lambda v: v <= 1.3)
        for name in ("plain", "zstd", "big"):
            c = {t: self.cpu.get(f"{name}/{t}") for t in ("tar", "stowage", "reference")}
            if c["stowage"] and c["tar"]:
                m = {t: statistics.median(v) for t, v in c.items() if v}
                txt = f"tar {m['tar']:.2f}, stowage {m['stowage']:.2f}"
                if "reference" in m:
                    txt += f", ref {m['reference']:.2f}"
                ratio = f"stowage/tar {m['stowage'] / m['tar']:.2f}x"
                if "reference" in m:
                    ratio += f", ref/stowage {m['reference'] / m['stowage']:.2f}x"
                rows.append((f"  CPU seconds {name}", txt, ratio, ""))
        # Durable against durable, as the floor counts tar -x + sync: the
        # reference's import followed by sync -f (it flushes nothing
        # itself) against stowage's import (which returns with the layer on
        # disk) followed by the same sync -f. The reference's command time
        # alone against stowage's durable time is printed beside it.
        for name in ("plain", "zstd"):
            s, r = self.med(f"{name}/stowage"), self.med(f"{name}/reference/nosync")
            rs = self.med(f"{name}/reference")
            if s is not None and r is not None:
                rows.append((f"  reference {name}", f"{r:.2f}s (+sync {rs:.2f}s)",
                             f"ref/tar {rs / self.med(name + '/tar'):.2f}x; "
                             f"ref without its sync / stowage {r / s:.2f}x", ""))
            target(f"ref 1.43 / stowage, {name} 250MB (both durable)", rs / s if (s and rs) else None, ">= 3.00x",
                   lambda v: v >= 3)
        d, t = self.med("diff/stowage"), self.med("diff/tar-c")
        if self.cpu.get("diff/stowage") and self.cpu.get("diff/tar-c"):
            cd, ct = statistics.median(self.cpu["diff/stowage"]), statistics.median(self.cpu["diff/tar-c"])
            rows.append(("  CPU seconds diff (with cat)", f"tar -c {ct:.2f}, stowage {cd:.2f}", f"{cd / ct:.2f}x", ""))
        target("diff re-export / tar -c", d / t if (d and t) else None, "<= 1.30x", lambda v: v <= 1.3)
        for drv in ("vfs", "overlay"):
            h = self.holds.get(drv)
            target(f"layers.lock hold per commit, {drv}", max(x for _, x, _ in h) / 1e6 if h else None, "<= 5 ms",
                   lambda v: v <= 5, "{:.2f} ms (max)")
            if h:
                per, anyh = {}, {}
                for sc, x, y in h:
                    per.setdefault(sc, []).append(x / 1e6)
                    anyh.setdefault(sc, []).append(y / 1e6)
                rows.append((f"  {drv} commit (write) holds", ", ".join(
                    f"{sc} {statistics.median(v):.1f}" for sc, v in per.items()), "median ms", ""))
                rows.append((f"  {drv} any hold incl. read", ", ".join(
                    f"{sc} {statistics.median(v):.1f}/{max(v):.1f}" for sc, v in anyh.items()), "median/max ms", ""))
        p, b = self.med("par/stowage"), self.med("par/tar+hash")
        target(f"{a.procs} parallel imports / tar+hash", p / b if (p and b) else None, "<= 1.30x",
               lambda v: v <= 1.3)
        pr = self.med("par/reference")
        if pr and b:
            rows.append(("  reference parallel", f"{pr:.2f}s", f"ref/(tar+hash) {pr / b:.2f}x", ""))
        target(f"{a.procs} parallel: summed lock wait", max(self.waits) / 1e9 if self.waits else None, "<= 1 s",
               lambda v: v <= 1, "{:.3f} s (max run)")
        srss = [x for k, v in self.rss.items() if k.split("/")[1] == "stowage" for x in v]
        target("peak RSS, every stowage import", max(srss) / 1024 if srss else None, "<= 64 MiB",
               lambda v: v <= 64, "{:.1f} MiB")
        hr = self.times.get("hdr/stowage/result")
        if hr:
            ok = hr[0].startswith("refused") and "header" in hr[0]
            rows.append((f"{a.header_mb} MiB PAX header", hr[0][:60], "clear refusal", "PASS" if ok else "FAIL"))
            rr = self.times.get("hdr/reference/result")
            if rr:
                rows.append(("  reference", rr[0][:60], f"RSS {max(self.rss['hdr/reference']) / 1024:.1f} MiB", ""))

        log("")
        log("== targets (issue 4 item 5)")
        w = max(len(r[0]) for r in rows)
        for r in rows:
            log(f"   {r[0]:{w}}  {r[1]:34} {r[2]:24} {r[3]}")
        for n in self.notes:
            log("   note: " + n)
        load = os.getloadavg()
        log(f"   load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} ({os.cpu_count()} CPUs)")
        return sum(1 for r in rows if r[3] == "FAIL")


def main():
    ap = argparse.ArgumentParser(description="stowage speed benchmark (issue 4 item 5)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 run: exercises the script")
    ap.add_argument("--fs", choices=["ext4", "xfs"], default="ext4")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-overlay", dest="overlay", action="store_false")
    ap.add_argument("--only", default="plain,zstd,big,par,hdr",
                    help="comma-separated scenarios: plain,zstd,big,par,hdr")
    ap.add_argument("--size-mb", type=int, default=250)
    ap.add_argument("--files", type=int, default=17000)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--header-mb", type=int, default=64)
    ap.add_argument("--diff-reps", type=int, default=2)
    ap.add_argument("--ref-par-runs", type=int, default=1, help="runs of the reference's parallel case")
    ap.add_argument("--cpuprofile", help="directory for STOWAGE_CPUPROFILE files of every stowage import")
    ap.add_argument("--stowage", help="stowage binary (default bin/stowage)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--cache", default="/var/tmp/stowage-bench-cache",
                    help="directory keeping the generated layers between runs")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    a = ap.parse_args()
    if a.quick:
        a.runs = 1
        a.diff_reps = 1
    if a.cpuprofile:
        a.cpuprofile = os.path.abspath(a.cpuprofile)
        os.makedirs(a.cpuprofile, exist_ok=True)
    if os.geteuid() != 0:
        log("bench: needs root (loop mount of the scratch file system)")
        return 1
    only = set(a.only.split(","))
    r = Runner(a)
    try:
        r.setup()
        r.prepare()
        if "plain" in only:
            r.scen_import("plain", r.l_plain, [], [r.l_plain], with_diff=True, overlay=True)
        if "zstd" in only:
            r.scen_import("zstd", r.l_zstd, ["-I", "zstd"], [r.l_zstd, r.l_plain])
        if "big" in only:
            r.scen_import("big", r.l_big, [], [r.l_big], overlay=True)
        if "par" in only:
            r.scen_parallel()
        if "hdr" in only:
            r.scen_header()
        fails = r.report()
    finally:
        r.cleanup()
    return 1 if (fails and a.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
