"""Boot storm: ``python -m bench.storm [--phones 10000] [--concurrency 200] [--out DIR] [--db URL]``.

A power cut reboots every phone at once. This builds a synthetic inventory (bench/gen.py), starts
``polygen serve`` on loopback and plays the phones, ``--concurrency`` at a time, with an aiohttp
client. Each phone, with its own User-Agent:

1. GET ``/000000000000.cfg`` (the bootstrap for its model, chosen by User-Agent);
2. GET ``/<mac>-phone.cfg``;
3. GET ``/contacts/<mac>-directory.xml`` (the shared directory, every extension: ~1.6 MB here);
4. PUT ``/logs/<mac>-boot.log``, 200 lines in the phones' ``time|module|level|missed|text`` form.

It prints requests/s, p50/p99 latency per kind of request, log lines stored per second, and checks
that every line landed: rows in the database = lines sent. Targets: zero errors, zero
lost lines, at least 20,000 log lines stored per second. The report is printed and saved with every
measurement in ``--out`` (default: a new ``bench/runs/<UTC time>/``, git-ignored) as storm.md and
storm.json; bench/RESULTS.md is curated by hand from such runs. The log store is a new SQLite
file, or with ``--db postgresql://...`` that PostgreSQL database (the rows it gains are counted).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import rundir
from bench.build_bench import TEMPLATES, fake_firmware, machine

ROOT = Path(__file__).resolve().parent.parent
T_LINES_PER_S = 20_000
KINDS = ("bootstrap", "config", "directory", "upload")


def boot_log(mac: str, lines: int) -> bytes:
    """A boot log as a phone writes it: ``time|module|level|missed|text`` lines."""
    mods = ("so", "sip", "cfg", "app1", "copy", "dns", "tls")
    out = []
    for i in range(lines):
        s = 11000 + i
        out.append(f"{s // 10000 % 24:02d}{s // 100 % 100:02d}{s % 100:02d}.{i % 1000:03d}|"
                   f"{mods[i % len(mods)]:<5}|{i % 5}|00|boot step {i} of {mac}: loading configuration")
    return ("\n".join(out) + "\n").encode()


def user_agent(model) -> str:
    return f"FileTransport {model.family}-{model.ua_token}-UA/{model.firmware}.0001"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def storm(base: str, phones: list[tuple[str, str]], concurrency: int, lines: int) -> dict:
    import aiohttp

    lat: dict[str, list[float]] = {k: [] for k in KINDS}
    errors: list[str] = []
    counts = {"requests": 0, "bytes_in": 0, "lines_sent": 0, "lines_stored": 0}
    sem = asyncio.Semaphore(concurrency)

    async def one(session, mac: str, ua: str) -> None:
        headers = {"User-Agent": ua}
        async with sem:
            for kind, path in (("bootstrap", "/000000000000.cfg"), ("config", f"/{mac}-phone.cfg"),
                               ("directory", f"/contacts/{mac}-directory.xml")):
                t = time.perf_counter()
                try:
                    async with session.get(base + path, headers=headers) as r:
                        n = 0
                        async for chunk in r.content.iter_chunked(1 << 16):
                            n += len(chunk)
                        counts["bytes_in"] += n
                        if r.status != 200:
                            errors.append(f"GET {path}: {r.status}")
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    errors.append(f"GET {path}: {type(exc).__name__}: {exc}")
                lat[kind].append(time.perf_counter() - t)
                counts["requests"] += 1
            body = boot_log(mac, lines)
            t = time.perf_counter()
            try:
                async with session.put(f"{base}/logs/{mac}-boot.log", data=body, headers=headers) as r:
                    data = await r.json() if r.status == 201 else None
                    if r.status != 201:
                        errors.append(f"PUT {mac}: {r.status} {await r.text()}")
                    else:
                        counts["lines_stored"] += data["lines"]
            except Exception as exc:  # noqa: BLE001
                errors.append(f"PUT {mac}: {type(exc).__name__}: {exc}")
            lat["upload"].append(time.perf_counter() - t)
            counts["requests"] += 1
            counts["lines_sent"] += lines

    conn = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(session, mac, ua) for mac, ua in phones))
        elapsed = time.perf_counter() - t0
    return {"elapsed": elapsed, "latency": lat, "errors": errors, **counts}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"polygen serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("polygen serve did not become healthy")


def run(phones: int, concurrency: int, lines: int, work: Path, log=print, db: str | None = None) -> dict:
    from bench.gen import generate
    from polygen.build import BuildOptions
    from polygen.build import run as build
    from polygen.inventory import load
    from polygen.logdb import describe_db, is_postgres_url, open_store

    base = work / "storm"
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    inv_dir, out = base / "inventory", base / "out"
    db = db if db is not None else base / "logs.db"
    with open_store(db) as store:  # creates the schema; the rows it gains are the storm's
        before = store.counts()
    generate(inv_dir, phones, seed=1)
    fw = fake_firmware(work / "firmware")
    build(BuildOptions(inv_dir, out, TEMPLATES, fw))
    inv = load(inv_dir)
    clients = [(p.mac, user_agent(inv.catalog.models[p.model])) for p in inv.phones]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "polygen", "-q", "serve", "--host", "127.0.0.1", "--port", str(port),
           "-i", str(inv_dir), "-o", str(out), "-t", str(TEMPLATES), "--firmware", str(fw), "--db", str(db)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_healthy(url, proc)
        log(f"[storm] {phones} phones, {concurrency} at a time, against {' '.join(cmd[2:5])} on {url}, "
            f"logs in {describe_db(db)}")
        r = asyncio.run(storm(url, clients, concurrency, lines))
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    with open_store(db) as store:
        uploads, rows = store.counts()
    r["uploads"], r["rows"] = uploads - before[0], rows - before[1]
    r["store"] = "PostgreSQL" if is_postgres_url(db) else "SQLite"
    r["phones"], r["concurrency"], r["lines_per_upload"] = phones, concurrency, lines
    r["server_stderr"] = err.decode(errors="replace")[-2000:]
    shutil.rmtree(base, ignore_errors=True)
    return r


def report(r: dict) -> str:
    el = r["elapsed"]
    lines_s = r["rows"] / el
    lost = r["lines_sent"] - r["rows"]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"## Boot storm, {now}", "", f"Machine: {machine()}", "",
           f"{r['phones']:,} phones, {r['concurrency']} at a time, aiohttp client and `polygen serve` "
           f"(static files, {r['store']} log store) on loopback, sharing the machine's cores. Each phone: "
           f"bootstrap by User-Agent, its config, the directory, a PUT of a {r['lines_per_upload']}-line boot log.",
           "", "| requests | time | requests/s | MiB received | lines sent | rows stored | lines stored/s | errors |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|",
           f"| {r['requests']:,} | {el:.1f} s | {r['requests'] / el:,.0f} | {r['bytes_in'] / 2**20:,.0f} "
           f"| {r['lines_sent']:,} | {r['rows']:,} | {lines_s:,.0f} | {len(r['errors'])} |", "",
           "| request | p50 | p99 |", "|---|---:|---:|"]
    for k in KINDS:
        v = r["latency"][k]
        out.append(f"| {k} | {percentile(v, 50) * 1000:.1f} ms | {percentile(v, 99) * 1000:.1f} ms |")
    out.append("")

    def verdict(ok: bool, text: str) -> str:
        return f"- {'PASS' if ok else 'MISS'}: {text}"

    out.append(verdict(not r["errors"], f"zero errors ({len(r['errors'])}"
                       + (f", e.g. {r['errors'][:3]})" if r["errors"] else ")")))
    out.append(verdict(lost == 0 and r["lines_stored"] == r["rows"],
                       f"zero lost lines (sent {r['lines_sent']:,}, acknowledged {r['lines_stored']:,}, "
                       f"rows in the database {r['rows']:,}, uploads {r['uploads']:,})"))
    ok = lines_s >= T_LINES_PER_S
    out.append(verdict(ok, f">= {T_LINES_PER_S:,} log lines stored/s: {lines_s:,.0f}/s"
                       + ("" if ok else f" (MISS by {T_LINES_PER_S / lines_s:.1f}x)")))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--lines", type=int, default=200, help="lines per boot log")
    ap.add_argument("--out", type=Path, help="directory for storm.md and storm.json "
                    "(default: a new bench/runs/<UTC time>/)")
    ap.add_argument("--work", type=Path, help="scratch directory, kept (default: <out>/work, removed)")
    ap.add_argument("--db", default=None, help="log database URL (postgresql://...); default: a new SQLite file")
    a = ap.parse_args(argv)
    out = rundir.run_dir(a.out)
    work = (a.work or out / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        r = run(a.phones, a.concurrency, a.lines, work, log=lambda m: print(m, flush=True), db=a.db)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = report(r)
    print(text)
    if r["errors"] and r["server_stderr"].strip():
        print("server stderr (tail):\n" + r["server_stderr"], file=sys.stderr)
    # per-request latencies are summarised (p50, p99): 40,000 floats are not worth keeping
    data = {k: v for k, v in r.items() if k != "latency"} | {
        "machine": machine(), "latency_ms": {k: {"n": len(v), "p50": percentile(v, 50) * 1000,
                                                 "p99": percentile(v, 99) * 1000,
                                                 "max": max(v, default=0) * 1000}
                                             for k, v in r["latency"].items()}}
    saved = rundir.save(out, "storm", text, data)
    print(f"raw results: {', '.join(rundir.shown(p) for p in saved)}")
    return 0 if not r["errors"] and r["rows"] == r["lines_sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
