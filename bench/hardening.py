"""Hardening run: ``python -m bench.hardening [--trials 50] [--fuzz-seconds 60] [--out DIR]`` (``make hardening``).

Runs, each as its own pytest session with ``-s`` and a JUnit XML report:

* the build fault trials (tests/test_faults.py: kill -9 during builds, full disk, read-only fs);
* the serve fault trials (tests/test_serve_faults.py: kill -9 during uploads, watch under an
  editor's saves);
* the corpus of broken inventories (tests/test_corpus.py);
* the sidecar fuzzing and name properties (tests/test_fuzz_sidecar.py);
* the attacker tests (tests/test_sidecar_security.py, tests/test_auth.py);
* bad input (tests/test_sidecar_limits.py: a MAC flooding uploads next to a phone and /healthz,
  a thousand idle sockets next to a normal request; tests/test_safetext.py: terminal escapes and
  masked credentials).

Then prints the figures: trials, corpus cases, fuzz iterations, tests passed / failed / skipped,
and failures. Figures come from the tests' own ``FIGURE key=value ...`` lines (test_faults.py's
``kill -9 trials: ...`` line too) and from the JUnit reports. Exit status 1 on any failure.
The figures (hardening.md, hardening.json), each session's JUnit report and output go to ``--out``
(default: a new ``bench/runs/<UTC time>/``, git-ignored).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench import rundir

ROOT = Path(__file__).resolve().parent.parent

GROUPS = [
    ("build faults", ["tests/test_faults.py"]),
    ("serve faults", ["tests/test_serve_faults.py"]),
    ("inventory corpus", ["tests/test_corpus.py"]),
    ("fuzzing", ["tests/test_fuzz_sidecar.py"]),
    ("attackers", ["tests/test_sidecar_security.py", "tests/test_auth.py"]),
    ("bad input", ["tests/test_sidecar_limits.py", "tests/test_safetext.py"]),
]


def run_group(name: str, files: list[str], env: dict, out: Path) -> dict:
    stem = "hardening-" + re.sub(r"\W+", "-", name)
    report = out / (stem + ".xml")
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"--junitxml={report}", *files]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    (out / (stem + ".log")).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases: list[tuple[str, str]] = []  # (test id, outcome)
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    if child.tag == "skipped" and "xfail" in (child.get("type", "") + child.get("message", "")):
                        outcome = "xfailed"
            cases.append((f"{case.get('classname')}::{case.get('name')}", outcome))
        for suite in ET.parse(report).iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    figures = [dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv) | {"what": line.split()[1]}
               for line in proc.stdout.splitlines() if line.startswith("FIGURE ")]
    build_kill = re.search(r"kill -9 trials: (\d+), interrupted before the swap: (\d+), after: (\d+), failures: (\d+)",
                           proc.stdout)
    return {"name": name, "rc": proc.returncode, "elapsed": elapsed, "counts": counts, "cases": cases,
            "figures": figures, "build_kill": build_kill.groups() if build_kill else None,
            "output": proc.stdout + proc.stderr}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=int(os.environ.get("POLYGEN_FAULT_TRIALS", 50)),
                    help="kill -9 trials, for builds and for the server (default 50)")
    ap.add_argument("--fuzz-seconds", type=float, default=float(os.environ.get("POLYGEN_FUZZ_SECONDS", 60)),
                    help="time given to fuzzing the sidecar (default 60)")
    ap.add_argument("--out", type=Path, help="directory for the figures, JUnit reports and output "
                    "(default: a new bench/runs/<UTC time>/)")
    a = ap.parse_args(argv)
    env = dict(os.environ, POLYGEN_FAULT_TRIALS=str(a.trials), POLYGEN_FUZZ_SECONDS=str(a.fuzz_seconds))
    out = rundir.run_dir(a.out)
    results = []
    for name, files in GROUPS:
        print(f"running {name}: {' '.join(files)} ...", flush=True)
        r = run_group(name, files, env, out)
        outcomes = [o for _, o in r["cases"]]
        print(f"  {len(outcomes)} tests: " + ", ".join(f"{outcomes.count(o)} {o}" for o in
              ("passed", "failure", "error", "skipped", "xfailed") if outcomes.count(o))
              + f" in {r['elapsed']:.0f}s", flush=True)
        results.append(r)

    by = {r["name"]: r for r in results}
    lines = ["", "hardening figures"]

    def row(label: str, value: str) -> None:
        lines.append(f"  {label:<28}{value}")

    bk = by["build faults"]["build_kill"]
    row("build kill -9 trials", f"{bk[0]} (killed before the swap: {bk[1]}, after: {bk[2]})" if bk else "NOT RUN")
    build_cases = dict(by["build faults"]["cases"])
    for label, test in (("build full disk", "test_full_disk_gives_a_clear_error_and_keeps_the_old_tree"),
                        ("build read-only fs", "test_read_only_filesystem_gives_a_clear_error")):
        row(label, build_cases.get(f"tests.test_faults::{test}", "NOT RUN"))
    serve = [f for f in by["serve faults"]["figures"] if f["what"] == "serve-kill"]
    row("serve kill -9 trials", (f"{serve[0]['trials']} (acknowledged uploads: {serve[0]['acked_uploads']}, "
                                 f"cut off: {serve[0]['unacked_uploads']}, stored but unacknowledged: "
                                 f"{serve[0]['stored_but_unacked']})") if serve else "NOT RUN")
    watch = [o for t, o in by["serve faults"]["cases"] if "test_watch" in t]
    row("watch save patterns", f"{watch.count('passed')} passed, {watch.count('xfailed')} known limitation (xfail)")
    text = [o for t, o in by["inventory corpus"]["cases"] if "::test_case[" in t]
    json_ = [o for t, o in by["inventory corpus"]["cases"] if "::test_case_json[" in t]
    row("inventory corpus cases", f"{len(text)} (text output: {text.count('passed')} passed, "
                                  f"json output: {json_.count('passed')} passed)")
    fuzz = [f for f in by["fuzzing"]["figures"] if f["what"] == "fuzz"]
    if fuzz:
        total = sum(int(f["iterations"]) for f in fuzz)
        per_mode = ", ".join(f"{f['mode']}: {f['iterations']} in {f['seconds']}s, {f['uploads_stored']} stored, "
                             f"{f.get('overrides_stored', 0)} override files" for f in fuzz)
        row("fuzz iterations", f"{total} ({per_mode})")
    else:
        row("fuzz iterations", "NOT RUN")
    flood = [f for f in by["bad input"]["figures"] if f["what"] == "flood"]
    for f in flood:  # one per log database
        row(f"upload flood ({f['db']})", (f"{f['uploads']} uploads of 1 MiB from one MAC in {f['seconds']}s "
                                          f"({f.get('status_429', '0')} refused 429), {f['flooder_lines_stored']} "
                                          f"lines stored; meanwhile /healthz max {f['healthz_max_ms']} ms, another "
                                          f"phone's upload max {f['upload_max_ms']} ms"))
    if not flood:
        row("upload flood", "NOT RUN")
    slow = [f for f in by["bad input"]["figures"] if f["what"] == "slowloris"]
    row("slowloris", (f"{slow[0]['sockets']} idle sockets: /healthz {slow[0]['healthz_ms']} ms, upload "
                      f"{slow[0]['upload_ms']} ms; all closed after {slow[0]['closed_after_s_min']}-"
                      f"{slow[0]['closed_after_s_max']}s (--header-timeout {slow[0]['header_timeout_s']}s), "
                      f"{slow[0]['still_open']} left open") if slow else "NOT RUN")
    tests = sum(r["counts"]["tests"] for r in results)
    failed = sum(r["counts"]["failures"] + r["counts"]["errors"] for r in results)
    skipped = [t for r in results for t, o in r["cases"] if o == "skipped"]
    row("tests", f"{tests} run, {failed} failed, {len(skipped)} skipped")
    for t in skipped:
        row("  skipped", t)
    # a pytest session that failed without a failed test (collection error, crash) counts once;
    # so does a figure the tests did not print
    bad_rc = [r for r in results if r["rc"] != 0 and not r["counts"]["failures"] + r["counts"]["errors"]]
    missing = [label for label, ok in (("build kill", bk), ("serve kill", serve), ("fuzz", fuzz), ("flood", flood),
                                       ("slowloris", slow)) if not ok]
    failures = failed + len(bad_rc) + len(missing)
    row("failures", str(failures))
    print("\n".join(lines))
    saved = rundir.save(out, "hardening", "\n".join(lines[1:]), {
        "trials": a.trials, "fuzz_seconds": a.fuzz_seconds, "failures": failures,
        "groups": [{k: v for k, v in r.items() if k != "output"} for r in results]})
    print(f"raw results: {', '.join(rundir.shown(p) for p in saved)} (and each session's .xml and .log beside them)")
    if failures:
        for r in results:
            if r["rc"] != 0:
                print(f"\n===== {r['name']} (exit {r['rc']}) =====\n{r['output'][-6000:]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
