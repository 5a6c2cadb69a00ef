"""Build benchmark: ``python -m bench.build_bench [--sizes 1000,10000,100000] [--out DIR]``.

For each size it generates a synthetic inventory (bench/gen.py) and measures, each build in a child
process (so the peak RSS is that build's own):

* full build: wall time of ``polygen build``'s work (interpreter start included), peak RSS, files
  and bytes written;
* no-op rebuild: must write 0 files and swap nothing;
* one phone changed: must write only that phone's file; checked by the build's written list and
  by the inode of every other file (hard links from the previous generation keep it);
* one extension renamed: must write only the directory and that extension's phone;
* the write floor: a minimal script writing the same bytes into the same number of files (read
  beforehand, not timed).

Targets (set for 100k phones on a 2-core machine): full <= 3x floor, peak RSS <= 1 GiB,
no-op <= 20% of full and writes nothing, one phone <= 10% of full and writes only that phone's
file. At the largest size cProfile shows where the time goes (top 10 functions by own time).
The report, with the machine's description, is printed and saved with every measurement in
``--out`` (default: a new ``bench/runs/<UTC time>/``, git-ignored) as build.md and build.json;
bench/RESULTS.md is curated by hand from such runs.

Child modes (used by the parent, and handy by hand):
``--child build INV OUT TEMPLATES FIRMWARE [--profile]`` and ``--child floor SRC DST``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import rundir

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
MANIFEST = ".polygen-manifest.json"
BUILD_RECORD = ".polygen-build.json"
DIRECTORY_FILE = "contacts/000000000000-directory.xml"

# the targets, set for 100k phones
T_FULL_FLOOR = 3.0
T_RSS_MIB = 1024
T_NOOP = 0.20
T_ONE = 0.10


# ------------------------------------------------------------------ child processes
def _child_build(inv: str, out: str, templates: str, firmware: str, profile: bool) -> dict:
    """One build in this process; returns what the parent needs as JSON-able data."""
    import resource

    import polygen.build as b

    phases: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    # phase split: load (parse + validate), plan (keys setup), write (keys, render, write, link)
    for name in ("load", "plan", "write"):
        if callable(getattr(b, name, None)):
            setattr(b, name, timed(name, getattr(b, name)))
    opts = b.BuildOptions(Path(inv), Path(out), Path(templates), Path(firmware))
    top = None
    t = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(b.run, opts)
        elapsed = time.perf_counter() - t
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(10)
        top = _trim_stats(s.getvalue())
    else:
        result = b.run(opts)
        elapsed = time.perf_counter() - t
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux: this build's peak
    gen = Path(out).parent / os.readlink(out)
    manifest = json.loads((gen / MANIFEST).read_text())["files"]
    written = list(result.paths)
    nbytes = sum(manifest[p][2] or 0 for p in written if p in manifest)
    return {"elapsed": elapsed, "rss_kib": rss_kib, "written": result.written, "unchanged": result.unchanged,
            "removed": result.removed, "changed": result.changed, "bytes": nbytes, "generation": gen.name,
            "paths": written if len(written) <= 20 else written[:20], "phases": phases, "profile": top}


def _trim_stats(text: str) -> str:
    """pstats output from the column header on, with paths shortened."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    out = []
    for line in lines[start:]:
        if not line.strip():
            continue
        for prefix in (str(ROOT) + "/", sys.prefix + "/lib/", sys.base_prefix + "/lib/"):
            line = line.replace(prefix, "")
        out.append(line.rstrip())
    return "\n".join(out)


def _child_floor(src: str, dst: str) -> dict:
    """Write the same bytes into the same number of files: os.open/os.write/os.close, nothing else."""
    data = []
    for root, _dirs, files in os.walk(src):
        for name in files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, src)
            if rel.startswith("firmware" + os.sep):  # links in the build, not written bytes
                continue
            with open(p, "rb") as fh:
                data.append((rel, fh.read(), os.stat(p).st_mode & 0o777))
    made = set()
    t = time.perf_counter()
    os.mkdir(dst)
    for rel, b, mode in data:
        d = os.path.dirname(rel)
        if d and d not in made:
            os.makedirs(os.path.join(dst, d), exist_ok=True)
            made.add(d)
        fd = os.open(os.path.join(dst, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.write(fd, b)
        os.close(fd)
    elapsed = time.perf_counter() - t
    return {"elapsed": elapsed, "files": len(data), "bytes": sum(len(b) for _, b, _ in data)}


def _run_child(args: list[str]) -> dict:
    # Start each measurement with no dirty pages from the previous one: on this VM's disk a
    # writeback in progress made the same write take 2 s or 24 s.
    os.sync()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.build_bench", "--child", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"bench child failed ({' '.join(args[:1])}): exit {proc.returncode}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["wall"] = wall
    return data


# ------------------------------------------------------------------ helpers
def inodes(gen: Path) -> dict[str, int]:
    """relative path -> inode for every file of a generation (scandir: no stat per file)."""
    out: dict[str, int] = {}
    stack = [("", gen)]
    while stack:
        prefix, d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                rel = prefix + e.name
                if e.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", Path(e.path)))
                elif rel not in (MANIFEST, BUILD_RECORD):  # polygen's own, new in each generation
                    out[rel] = e.inode()
    return out


def current_gen(out: Path) -> Path:
    return out.parent / os.readlink(out)


def fake_firmware(dest: Path) -> Path:
    """A tiny release directory for every release the generator's models run (links are cheap)."""
    from bench.gen import MODELS
    from polygen.catalog import Catalog, dialect_of

    cat = Catalog()
    for name, _, _ in MODELS:
        rel = cat.find(name).firmware
        d = dest / rel
        d.mkdir(parents=True, exist_ok=True)
        files = ["sip.ld", "sip.ver"] + (["sip.cfg", "phone1.cfg"] if dialect_of(rel) == "sip3" else [])
        for f in files:
            p = d / f
            if p.exists():
                continue
            if f in ("sip.cfg", "phone1.cfg"):  # SIP 3.x: parameter names are read from these
                root = f.split(".")[0]
                p.write_text(f'<?xml version="1.0"?>\n<{root}><up {FAKE_SIP3_PARAMS}/></{root}>\n')
            else:
                p.write_text(f"fake {rel} {f}\n")
    return dest


FAKE_SIP3_PARAMS = " ".join(f'{n}=""' for n in ("up.backlight.idleIntensity", "up.headsetMode",
                                                    "up.screenSaver.enabled"))


@dataclass
class Check:
    ok: bool
    note: str


def check_written(result: dict, before: dict[str, int], after: dict[str, int], expect: set[str]) -> Check:
    """The build wrote exactly ``expect`` and every other file kept its inode."""
    wrote = set(result["paths"]) if result["written"] <= 20 else None
    if result["written"] != len(expect) or wrote != expect:
        return Check(False, f"wrote {result['written']} files {sorted(wrote or [])[:5]}, expected {sorted(expect)}")
    moved = [p for p, ino in before.items() if p not in expect and after.get(p) != ino]
    if moved:
        return Check(False, f"{len(moved)} other files changed inode, e.g. {moved[:3]}")
    if set(after) != set(before):
        return Check(False, "the set of files changed")
    return Check(True, f"wrote {sorted(expect)}; {len(before) - len(expect)} other inodes kept")


# ------------------------------------------------------------------ one size
def bench_size(n: int, work: Path, firmware: Path, profile: bool, log=print) -> dict:
    from bench.gen import change_phone, generate, rename_extension

    base = work / str(n)
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    inv, out = base / "inventory", base / "out"
    t = time.perf_counter()
    g = generate(inv, n)
    gen_s = time.perf_counter() - t
    log(f"[{n}] generated {g.phones} phones, {g.extensions} extensions, {len(g.files)} files in {gen_s:.2f}s")
    args = [str(inv), str(out), str(TEMPLATES), str(firmware)]
    r: dict = {"phones": n, "extensions": g.extensions, "inventory_files": len(g.files), "gen_s": gen_s}

    full = _run_child(["build", *args])
    r["full"] = full
    log(f"[{n}] full build {full['wall']:.2f}s ({full['written']} files, {full['bytes'] / 2**20:.1f} MiB, "
        f"peak RSS {full['rss_kib'] / 1024:.0f} MiB)")

    floor_dir = base / "floor"
    floors = []
    for _ in range(3):  # the median of three: this disk's file creation time varies run to run
        floors.append(_run_child(["floor", str(current_gen(out)), str(floor_dir)]))
        shutil.rmtree(floor_dir)
    floors.sort(key=lambda f: f["elapsed"])
    r["floor"] = dict(floors[1], min=floors[0]["elapsed"], max=floors[2]["elapsed"])
    runs = ", ".join(f"{f['elapsed']:.2f}" for f in floors)
    log(f"[{n}] write floor {r['floor']['elapsed']:.2f}s ({r['floor']['files']} files; runs {runs})")

    before = inodes(current_gen(out))
    noop = _run_child(["build", *args])
    after = inodes(current_gen(out))
    r["noop"] = noop
    r["noop_check"] = Check(noop["written"] == 0 and not noop["changed"] and before == after,
                            f"wrote {noop['written']}, swapped {'yes' if noop['changed'] else 'no'}").__dict__
    log(f"[{n}] no-op rebuild {noop['wall']:.2f}s: {r['noop_check']['note']}")

    mac = change_phone(inv)
    before = after
    one = _run_child(["build", *args])
    after = inodes(current_gen(out))
    r["one"] = one
    r["one_check"] = check_written(one, before, after, {f"{mac}-phone.cfg"}).__dict__
    log(f"[{n}] one phone changed {one['wall']:.2f}s: {r['one_check']['note']}")

    ext, emac = rename_extension(inv)
    before = after
    ren = _run_child(["build", *args])
    after = inodes(current_gen(out))
    r["rename"] = ren
    r["rename_check"] = check_written(ren, before, after, {DIRECTORY_FILE, f"{emac}-phone.cfg"}).__dict__
    log(f"[{n}] extension {ext} renamed {ren['wall']:.2f}s: {r['rename_check']['note']}")

    if profile:
        prof_out = base / "prof-out"
        r["profile"] = {}
        p_full = _run_child(["build", str(inv), str(prof_out), str(TEMPLATES), str(firmware), "--profile"])
        r["profile"]["full build"] = p_full["profile"]
        p_noop = _run_child(["build", str(inv), str(prof_out), str(TEMPLATES), str(firmware), "--profile"])
        r["profile"]["no-op rebuild"] = p_noop["profile"]
        change_phone(inv)  # a second edit of the same phone: a one-phone change again
        p_one = _run_child(["build", str(inv), str(prof_out), str(TEMPLATES), str(firmware), "--profile"])
        r["profile"]["one-phone rebuild"] = p_one["profile"]
        log(f"[{n}] profiled (full {p_full['elapsed']:.1f}s, no-op {p_noop['elapsed']:.1f}s, "
            f"one phone {p_one['elapsed']:.1f}s under cProfile)")
    shutil.rmtree(base, ignore_errors=True)  # 100k phones is ~0.5 GB of generations
    return r


# ------------------------------------------------------------------ report
def _verdict(value: float, limit: float, fmt) -> str:
    if value <= limit:
        return f"PASS ({fmt(value)} <= {fmt(limit)})"
    return f"MISS by {value / limit:.1f}x ({fmt(value)} > {fmt(limit)})"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def table(results: list[dict]) -> str:
    rows = ["| phones | full build | floor | full / floor | peak RSS | no-op | no-op / full | "
            "one phone | one / full | rename ext | rename / full |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        full = r["full"]["wall"]
        rows.append(
            f"| {r['phones']:,} | {full:.2f} s ({r['full']['written']:,} files, {r['full']['bytes'] / 2**20:.1f} MiB) "
            f"| {r['floor']['elapsed']:.2f} s ({r['floor'].get('min', 0):.2f}-{r['floor'].get('max', 0):.2f}) "
            f"| {full / r['floor']['elapsed']:.1f}x "
            f"| {r['full']['rss_kib'] / 1024:.0f} MiB "
            f"| {r['noop']['wall']:.2f} s ({r['noop']['written']} written) | {_pct(r['noop']['wall'] / full)} "
            f"| {r['one']['wall']:.2f} s ({r['one']['written']} written) | {_pct(r['one']['wall'] / full)} "
            f"| {r['rename']['wall']:.2f} s ({r['rename']['written']} written) | {_pct(r['rename']['wall'] / full)} |")
    return "\n".join(rows)


def verdicts(r: dict) -> list[str]:
    full = r["full"]["wall"]
    floor = r["floor"]["elapsed"]
    out = [
        f"- full build <= 3x floor: {_verdict(full / floor, T_FULL_FLOOR, lambda x: f'{x:.1f}x')}",
        f"- peak RSS <= 1 GiB: {_verdict(r['full']['rss_kib'] / 1024, T_RSS_MIB, lambda x: f'{x:.0f} MiB')}",
        f"- no-op <= 20% of full: {_verdict(r['noop']['wall'] / full, T_NOOP, _pct)}; writes nothing: "
        f"{'PASS' if r['noop_check']['ok'] else 'MISS'} ({r['noop_check']['note']})",
        f"- one phone <= 10% of full: {_verdict(r['one']['wall'] / full, T_ONE, _pct)}; writes only that phone: "
        f"{'PASS' if r['one_check']['ok'] else 'MISS'} ({r['one_check']['note']})",
        f"- rename one extension (no target; touches the directory and one phone): "
        f"{_pct(r['rename']['wall'] / full)} of full; {'PASS' if r['rename_check']['ok'] else 'MISS'} "
        f"({r['rename_check']['note']})",
    ]
    return out


def phases(r: dict) -> str:
    parts = []
    for name in ("full", "noop", "one", "rename"):
        ph = r[name].get("phases") or {}
        startup = r[name]["wall"] - r[name]["elapsed"]
        parts.append(f"{name}: start {startup:.2f}s + " + " + ".join(f"{k} {v:.2f}s" for k, v in ph.items()))
    return "; ".join(parts)


def machine() -> str:
    def first(path, key):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    mem_kib = first("/proc/meminfo", "MemTotal").split()[0]
    mem = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "?"
    disk = "?"
    try:
        df = subprocess.run(["df", "-hT", str(ROOT)], capture_output=True, text=True).stdout.splitlines()[-1].split()
        dev = Path(df[0]).name
        rot = Path(f"/sys/block/{dev}/queue/rotational")
        kind = {"0": "non-rotational", "1": "rotational"}.get(rot.read_text().strip(), "") if rot.exists() else ""
        disk = f"{df[0]} {df[1]} {df[2]} ({kind})" if kind else f"{df[0]} {df[1]} {df[2]}"
    except (OSError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "polygen", "templates"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        commit += " (with uncommitted changes in polygen/)" if dirty else ""
    except OSError:
        commit = "?"
    return (f"CPU {first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores "
            f"({len(os.sched_getaffinity(0))} usable), RAM {mem}, disk {disk}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}, polygen {commit}")


def report(results: list[dict]) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Build bench, {now}", "", f"Machine: {machine()}", "",
             "Times are wall clock of a `polygen build` child process (interpreter start included); "
             "the floor is a minimal script's os.open/os.write/os.close of the same bytes into the same "
             "number of files (median of 3 runs, range in brackets). Targets are set for 100k phones; smaller "
             "sizes are shown for scale.", "",
             table(results), ""]
    for r in results:
        lines.append(f"**{r['phones']:,} phones** ({r['extensions']:,} extensions in {r['inventory_files']} "
                     f"inventory files, generated in {r['gen_s']:.1f} s)")
        lines += verdicts(r)
        lines.append(f"- phases: {phases(r)}")
        lines.append("")
    for r in results:
        for what, text in (r.get("profile") or {}).items():
            lines += [f"Profile, {what}, {r['phones']:,} phones (cProfile, top 10 by own time):", "", "```",
                      text, "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.build_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated phone counts")
    ap.add_argument("--out", type=Path, help="directory for build.md and build.json "
                    "(default: a new bench/runs/<UTC time>/)")
    ap.add_argument("--work", type=Path, help="scratch directory, kept (default: <out>/work, removed)")
    ap.add_argument("--no-profile", action="store_true", help="skip cProfile at the largest size")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        data = _child_build(*rest, profile=a.profile) if kind == "build" else _child_floor(*rest)
        sys.stdout.write(json.dumps(data) + "\n")
        return 0

    sizes = [int(s.replace("_", "").replace("k", "000")) for s in a.sizes.split(",") if s]
    out = rundir.run_dir(a.out)
    work = (a.work or out / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        firmware = fake_firmware(work / "firmware")
        results = []
        for n in sizes:
            results.append(bench_size(n, work, firmware, profile=not a.no_profile and n == max(sizes),
                                      log=lambda m: print(m, flush=True)))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)  # 100k phones is ~0.5 GB
    text = report(results)
    print()
    print(text)
    saved = rundir.save(out, "build", text, {"machine": machine(), "sizes": results})
    print(f"raw results: {', '.join(rundir.shown(p) for p in saved)}")
    ok = all(r["noop_check"]["ok"] and r["one_check"]["ok"] and r["rename_check"]["ok"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
