#!/usr/bin/env python3
"""Regenerate polygen/data/params-{uc,sip3}.txt.gz: the known Polycom parameter *names*.

A maintainer script, run by hand when the reference data changes; its output is committed and
`tests/test_params.py` checks the committed files are byte-identical to a fresh run.

Only names are written: no defaults, types or doc strings. The vendor files are reference data
(`../shared/polycom/FACTS.md`) and are never copied into the project; a list of parameter names
is all polygen ships.

Sources (relative to the shared reference directory, default `../shared/polycom`):

* UC dialect (`params-uc.txt.gz`):
  - `uc-params.tsv`, column 1: every attribute the UC `polycomConfig.xsd` declares (FACTS §8).
  - the attribute names of `vendor/uc-*/Config/*.cfg`. The XSD is UC 4.0-era and lacks names
    that Polycom's own later templates use, e.g. the per-model forms
    `call.callsPerLineKey.VVX101` (5.9.6 `reg-basic.cfg`) and `powerSaving.enable.VVX500`
    (6.3 `site.cfg`), FACTS §3. A name Polycom ships in a template is a name the firmware knows.
* SIP 3.x dialect (`params-sip3.txt.gz`): the attribute names of
  `vendor/sip-3.1.6/{sip,phone1}.cfg` and `vendor/sip-3.2.4B/{sip,phone1}.cfg`, where every
  attribute is a parameter (FACTS §3, §8).

Output: sorted, de-duplicated, one name per line (LF), gzip with mtime=0 and no file name in the
header, so every run produces the same bytes.

Usage: scripts/gen_params.py [--shared DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
from pathlib import Path

from polygen.params import cfg_attribute_names  # the same reading the build does

log = logging.getLogger("polygen.gen_params")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "polycom"
DEFAULT_OUT = ROOT / "polygen" / "data"

SIP3_RELEASES = ("sip-3.1.6", "sip-3.2.4B")
SIP3_FILES = ("sip.cfg", "phone1.cfg")


def uc_names(shared: Path) -> set[str]:
    names: set[str] = set()
    with open(shared / "uc-params.tsv", newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if row and row[0].strip():
                names.add(row[0].strip())
    for cfg in sorted((shared / "vendor").glob("uc-*/Config/*.cfg")):
        names |= cfg_attribute_names(cfg)
    return names


def sip3_names(shared: Path) -> set[str]:
    names: set[str] = set()
    for release in SIP3_RELEASES:
        for fname in SIP3_FILES:
            names |= cfg_attribute_names(shared / "vendor" / release / fname)
    return names


def write_names(path: Path, names: set[str]) -> None:
    data = "".join(f"{n}\n" for n in sorted(names)).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)


def generate(shared: Path = DEFAULT_SHARED, out: Path = DEFAULT_OUT) -> dict[str, int]:
    """Write both lists into ``out``; return name counts per file."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for fname, names in (
        ("params-uc.txt.gz", uc_names(shared)),
        ("params-sip3.txt.gz", sip3_names(shared)),
    ):
        write_names(out / fname, names)
        counts[fname] = len(names)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared/polycom directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for fname, count in generate(args.shared, args.out).items():
        log.info("%s: %d names", args.out / fname, count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
