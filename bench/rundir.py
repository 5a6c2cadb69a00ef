"""Where a bench run's raw results go: ``bench/runs/<UTC time>/`` (git-ignored), or ``--out DIR``.

Each script writes its report as Markdown and its measurements as JSON there, and says where;
bench/RESULTS.md is edited by hand from these, so running the bench never changes a tracked file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench" / "runs"


def run_dir(out: Path | None = None, runs: Path = RUNS) -> Path:
    """``out`` (created if missing: the Makefile hands one directory to every script of a run), else
    a new ``runs/<UTC time>`` directory, never one an earlier run made."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out.resolve()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    runs.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        d = runs / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        return d.resolve()
    raise SystemExit(f"no free run directory under {runs} for {stamp}")


def save(out: Path, name: str, report: str, data) -> list[Path]:
    """``<name>.md`` (the report as printed) and ``<name>.json`` (every measurement) in ``out``."""
    paths = [out / f"{name}.md", out / f"{name}.json"]
    paths[0].write_text(report if report.endswith("\n") else report + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return paths


def shown(path: Path) -> str:
    """``path`` relative to the current directory when it is below it (what a user types), else absolute."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
