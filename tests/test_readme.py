"""The README's "Deployment guide", run command by command (issue 4: "each command in it run by
a test"), with its printed output compared to what the README shows.

What is run
    Every ``$ `` line of every ```console block in the guide section, in order, one pytest item
    each (``test_guide_command[L<line>-...]``); a command carries on over ``\\`` continuations
    and ``<<'EOF'`` here-documents. The lines after a command, up to the next ``$ ``, are its
    expected output: compared (stdout and stderr together, as a terminal shows them) after the
    normalisation below; a command shown without output is not compared, only its exit status
    (0, with ``pipefail``). An ``<!-- guide-edit: FILE -->`` comment before a ```yaml block is
    an edit the admin makes with an editor: the test sets the block's key in FILE the same way.
    Items share one layout and run in README order; selecting one with ``-k`` runs the ones
    before it first.

How it stays off the real system (the documented mapping)
    * Paths: ``/srv/polygen``, ``/etc/polygen``, ``/etc/nginx``, ``/etc/systemd/system``,
      ``/etc/dhcp``, ``/etc/dnsmasq.d``, ``/var/lib/polygen`` and ``/usr/local/bin`` become the
      same paths under a tmp dir (tmp ``/usr/local/bin`` first on PATH); ``/var/log/nginx`` is
      the log directory of the test's running nginx; ``~`` is a tmp home. Printed output has the
      tmp paths mapped back.
    * ``sudo`` and ``sudo -u polygen`` are dropped: everything runs as the test's user. The
      user/group ``polygen`` in ``install -o/-g`` and ``chown`` becomes the test's user/group;
      ``www-data`` stays when we are root (else: the test's own group).
    * ``apt-get install`` runs as ``apt-get install --simulate`` (nothing installed).
    * ``useradd`` runs for real with ``--prefix`` on copies of /etc/passwd, group, shadow and
      gshadow (root only).
    * ``git clone https://git.example.com/polygen.git`` clones this checkout (its committed
      HEAD); git's identity comes from GIT_AUTHOR_*/GIT_COMMITTER_* in the environment.
    * ``~/ucs-5.9.7-combined.zip`` is a fake release made here (``make_firmware``'s files).
    * ``nginx -t`` checks a main config shaped like Debian's (``include conf.d/*.conf`` in
      ``http {}``) under the tmp ``/etc/nginx``. ``systemctl reload nginx`` (re)starts a real
      nginx on that site config with ``listen 80`` on a free loopback port and the sidecar's
      ``127.0.0.1:8080`` on the test sidecar's port.
    * ``systemctl daemon-reload`` runs ``systemd-analyze verify`` on the installed unit (its
      paths mapped; any output fails); without systemd-analyze, a parse check of the unit.
      ``systemctl enable --now polygen`` starts the unit's ExecStart with its WorkingDirectory
      and EnvironmentFile (POLYGEN_SERVE_PORT set to a free port), not as User= and without
      the sandbox (no systemd as PID 1 here); ``systemctl status``/``restart`` act on that
      process, ``journalctl -u polygen`` prints its output.
    * ``systemctl restart isc-dhcp-server`` is skipped: it would start a DHCP server on this
      machine's network (tests/test_dhcp.py runs dhcpd on a private veth link instead).
    * ``http://prov.example.com/`` in ``polygen simulate`` and ``curl`` is the test nginx, and
      ``127.0.0.1:8080`` in ``curl`` the test sidecar. ``curl`` observes a service that rebuilds
      asynchronously (``--watch``), so a ``curl`` whose output differs is retried for 10 s.
    * Normalised before comparing: ISO times and the phones' 10-digit time stamps. A build's
      digest and a commit (git's time stamps make them differ on each run) stand in for the
      README's consistently: the same one shown twice is the same both times
      (tests/sessiontokens.py).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import make_firmware
from tests.daemons import Nginx, find_binary, free_port, is_root, require_binary, wait_for_port, write_nginx_main_conf
from tests.sessiontokens import Tokens

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE_HEADING = "## Deployment guide"
GIT_URL = "https://git.example.com/polygen.git"
ZIP = "~/ucs-5.9.7-combined.zip"
PROV_HOST = "prov.example.com"
SIDECAR = "127.0.0.1:8080"
# README path -> path under the tmp root (longest first when mapping)
MAPPED = ("/srv/polygen", "/etc/polygen", "/etc/nginx", "/etc/systemd/system", "/etc/dhcp", "/etc/dnsmasq.d",
          "/var/lib/polygen", "/usr/local/bin")
# absolute paths a command may name that are not mapped (read-only or harmless)
UNMAPPED_OK = ("/dev/null", "/usr/sbin/nologin")


# ---------------------------------------------------------------- reading the guide
@dataclass
class Step:
    line: int  # 1-based line in README.md
    section: str
    command: str = ""  # shell text, as in the README
    expected: list[str] = field(default_factory=list)
    edit: tuple[str, str] | None = None  # (file, yaml block) for a guide-edit

    @property
    def id(self) -> str:
        text = f"edit {self.edit[0]}" if self.edit else self.command.splitlines()[0]
        return f"L{self.line}-" + re.sub(r"[^A-Za-z0-9._/:=-]+", "_", text)[:60]


def guide_lines() -> tuple[int, list[str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(GUIDE_HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, lines[start:end]


def parse_guide() -> list[Step]:
    offset, lines = guide_lines()
    steps: list[Step] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
        m = re.fullmatch(r"<!-- guide-edit: (\S+) -->", line.strip())
        if m:
            j = i + 1
            while not lines[j].strip():
                j += 1
            assert lines[j] == "```yaml", f"README line {offset + j + 1}: a guide-edit needs a ```yaml block"
            k = lines.index("```", j + 1)
            steps.append(Step(offset + i + 1, section, edit=(m[1], "\n".join(lines[j + 1:k]) + "\n")))
            i = k + 1
            continue
        if line == "```console":
            i += 1
            current: Step | None = None
            while lines[i] != "```":
                text = lines[i]
                if text.startswith("$ "):
                    current = Step(offset + i + 1, section, text[2:])
                    steps.append(current)
                    heredoc = re.search(r"<<-?'?(\w+)'?", text)
                    while current.command.endswith("\\") or heredoc:
                        i += 1
                        current.command += "\n" + lines[i]
                        if heredoc and lines[i] == heredoc[1]:
                            heredoc = None
                else:
                    assert current is not None, f"README line {offset + i + 1}: output before any command"
                    current.expected.append(text)
                i += 1
        i += 1
    return steps


STEPS = parse_guide()


# ---------------------------------------------------------------- the tmp layout and the mapping
def _owner() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


class Guide:
    """The state the guide's commands share: tmp root, cwd, the nginx and sidecar started."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.home = tmp / "home"
        self.home.mkdir()
        self.bin = tmp / "usr/local/bin"
        self.bin.mkdir(parents=True)
        for d in MAPPED:
            (tmp / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp / "srv/polygen")  # the guide creates it (install -d)
        self.cwd = self.home
        self.nginx_port = free_port()
        self.sidecar_port = free_port()
        self.nginx: Nginx | None = None
        self.run_prefix = tmp / "run-nginx"
        self.sidecar: subprocess.Popen | None = None
        self.journal = tmp / "journal-polygen.log"
        self.done: dict[int, str | None] = {}  # step index -> None (ok) or the failure
        self.user, self.group = _owner()
        self.tokens = Tokens()  # the README's digests and commits -> this run's
        # fake release zip, Debian-like dhcpd.conf, nginx main config with conf.d/*.conf
        fw = make_firmware(tmp / "fw-src", releases=("5.9.7",)) / "5.9.7"
        with zipfile.ZipFile(self.home / Path(ZIP).name, "w") as z:
            for f in sorted(fw.iterdir()):
                z.write(f, f.name)
        debian_dhcpd = Path("/etc/dhcp/dhcpd.conf")
        (tmp / "etc/dhcp/dhcpd.conf").write_text(debian_dhcpd.read_text() if debian_dhcpd.is_file() else "")
        (tmp / "etc/nginx/conf.d").mkdir(parents=True)
        self.nginx_conf = write_nginx_main_conf(tmp / "etc/nginx", [tmp / "etc/nginx/conf.d/*.conf"])

    # -- mapping
    def map_paths(self, text: str) -> str:
        for p in sorted(MAPPED, key=len, reverse=True):
            text = re.sub(rf"(?<![\w/.]){re.escape(p)}(?=[/\s\"';]|$)", str(self.tmp) + p, text)
        text = text.replace("/var/log/nginx/", f"{self.run_prefix}/logs/")
        return re.sub(r"(?<![\w/])~/", f"{self.home}/", text)

    def unmap(self, text: str) -> str:
        text = text.replace(f"{self.run_prefix}/logs/", "/var/log/nginx/").replace(f"{self.home}/", "~/")
        return text.replace(str(self.tmp), "")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGEN_") or k == "POLYGEN_TZ_YEAR"}
        env.update(PATH=f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin", HOME=str(self.home),
                   USER=self.user, LOGNAME=self.user, PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   GIT_AUTHOR_NAME="Guide Test", GIT_AUTHOR_EMAIL="guide@example.com",
                   GIT_COMMITTER_NAME="Guide Test", GIT_COMMITTER_EMAIL="guide@example.com", LC_ALL="C.UTF-8")
        return env

    def translate(self, command: str) -> str:
        """The README command -> the command the test runs (module docstring)."""
        cmd = re.sub(r"(^|\|\s*|&&\s*)sudo (?:-u polygen )?", r"\1", command)
        cmd = cmd.replace(GIT_URL, str(ROOT))
        cmd = re.sub(r"(-[og]) polygen\b", lambda m: f"{m[1]} {self.user if m[1] == '-o' else self.group}", cmd)
        cmd = re.sub(r"\b(?:polygen|root):polygen\b", f"{self.user}:{self.group}", cmd)
        if not is_root():
            cmd = cmd.replace("www-data", self.group)
        if re.match(r"(polygen simulate|curl) ", cmd):
            cmd = re.sub(rf"(?<=[/@]){re.escape(PROV_HOST)}(?=/)", f"127.0.0.1:{self.nginx_port}", cmd)
            cmd = cmd.replace(SIDECAR, f"127.0.0.1:{self.sidecar_port}")
        cmd = re.sub(r"^apt-get install ", "apt-get install --simulate ", cmd)
        if cmd.startswith("useradd "):
            cmd = cmd.replace("useradd ", f"useradd --prefix {self.tmp / 'sysroot'} ", 1)
        if re.fullmatch(r"nginx -t", cmd):
            prefix = self.nginx_conf.parent
            cmd = f"nginx -p {prefix}/ -e {prefix}/logs/error.log -c {self.nginx_conf} -t"
        return self.map_paths(cmd)

    # -- running
    def shell(self, command: str, timeout: float = 300) -> tuple[int, str]:
        result = subprocess.run(["bash", "-c", "set -o pipefail\n" + command], cwd=self.cwd, env=self.env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=timeout, check=False)
        return result.returncode, result.stdout

    def run(self, step: Step) -> str:
        """Run one step; return its output (tmp paths mapped back). Fails the test on a wrong
        exit status or output; skips what cannot run here."""
        if step.edit:
            self.apply_edit(*step.edit)
            return ""
        cmd = step.command
        plain = re.sub(r"^sudo (?:-u polygen )?", "", cmd)
        if m := re.fullmatch(r"cd (\S+)", plain):
            target = Path(self.map_paths(m[1]))
            self.cwd = target if target.is_absolute() else self.cwd / target
            assert self.cwd.is_dir(), f"cd: no directory {self.cwd}"
            return ""
        special = self.systemd(plain)
        if special is not None:
            return special
        if plain.startswith("useradd ") and not is_root():
            pytest.skip("useradd --prefix needs root")
        if plain.startswith("apt-get ") and not shutil.which("apt-get"):
            pytest.skip("no apt-get here")
        for tool in ("nginx", "dhcpd", "dnsmasq"):
            if re.match(rf"{tool}\b", plain):
                require_binary(tool)
        if plain.startswith("useradd "):
            sysroot = self.tmp / "sysroot/etc"
            sysroot.mkdir(parents=True, exist_ok=True)
            for name in ("passwd", "group", "shadow", "gshadow"):
                if Path("/etc", name).exists():
                    shutil.copy2(Path("/etc", name), sysroot / name)
        translated = self.translate(cmd)
        deadline = time.monotonic() + (10 if plain.startswith("curl ") and step.expected else 0)
        while True:
            rc, out = self.shell(translated)
            out = self.unmap(out)
            if rc == 0 and (not step.expected or matches(step.expected, out, self.tokens)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rc == 0, f"README line {step.line}: `{cmd}` exited {rc}; ran `{translated}`:\n{out}"
        if step.expected and not os.environ.get("POLYGEN_README_SHOW"):
            assert matches(step.expected, out, self.tokens), (
                f"README line {step.line}: `{cmd}` printed\n{out}\nwhich is not what the README shows:\n"
                + "\n".join(step.expected))
        return out

    def apply_edit(self, path: str, block: str) -> None:
        """Set the key the yaml block shows (``site:`` then ``  key: ...``) in the mapped file."""
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert lines[0] == "site:", "a guide-edit block starts with `site:`"
        key_block = "\n".join(lines[1:]) + "\n"
        key = re.match(r"  (\w+):", lines[1])[1]
        target = Path(self.map_paths(path))
        text = target.read_text()
        existing = re.compile(rf"^  {key}:.*\n(?:(?:    .*|\s*)\n)*", re.M)
        if existing.search(text):
            text = existing.sub(key_block, text, count=1)
        else:
            assert re.match(r"(?s)(#.*\n)*site:\n", text) and not re.search(r"^\w", text.split("site:\n", 1)[1],
                                                                            re.M), "site: must be the file's only key"
            text = text.rstrip("\n") + "\n" + key_block
        target.write_text(text)

    # -- systemd and daemons: the test-safe forms
    def unit(self) -> Path:
        return self.tmp / "etc/systemd/system/polygen.service"

    def systemd(self, cmd: str) -> str | None:
        if cmd == "systemctl reload nginx":
            self.reload_nginx()
            return ""
        if cmd == "systemctl daemon-reload":
            verify_unit(self.unit(), self.map_paths)
            return ""
        if cmd == "systemctl enable --now polygen":
            self.start_sidecar()
            return ""
        if cmd == "systemctl restart polygen":
            self.stop_sidecar()
            self.start_sidecar()
            return ""
        if cmd == "systemctl status polygen":
            assert self.sidecar is not None and self.sidecar.poll() is None, "polygen.service is not running"
            return ""
        if m := re.fullmatch(r"journalctl -u polygen -n (\d+)", cmd):
            return "\n".join(self.journal.read_text().splitlines()[-int(m[1]):])
        if cmd.startswith("systemctl restart isc-dhcp-server"):
            pytest.skip("not run: it would start a DHCP server on this machine's network; "
                        "tests/test_dhcp.py runs dhcpd on a private veth link instead")
        assert not cmd.startswith(("systemctl", "journalctl")), f"no test-safe form for `{cmd}`"
        return None

    def reload_nginx(self) -> None:
        require_binary("nginx")
        site = (self.tmp / "etc/nginx/conf.d/polygen.conf").read_text()
        site = re.sub(r"^    listen 80;$", f"    listen 127.0.0.1:{self.nginx_port};", site, flags=re.M)
        site = site.replace(f"server {SIDECAR};", f"server 127.0.0.1:{self.sidecar_port};")
        running = self.tmp / "run-nginx.conf"
        running.write_text(site)
        if self.nginx is None:
            conf = write_nginx_main_conf(self.run_prefix, [running])
            self.nginx = Nginx(conf, "127.0.0.1", self.nginx_port).start()
        else:
            self.nginx.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)

    def start_sidecar(self) -> None:
        service = parse_unit(self.unit().read_text())["Service"]
        env = self.env()
        env.update({k: self.map_paths(v) for k, v in
                    read_env_file(Path(self.map_paths(service["EnvironmentFile"][0]))).items()})
        env["POLYGEN_SERVE_PORT"] = str(self.sidecar_port)
        argv = shlex.split(self.map_paths(service["ExecStart"][0]))
        with open(self.journal, "ab") as fh:
            self.sidecar = subprocess.Popen(argv, cwd=self.map_paths(service["WorkingDirectory"][0]), env=env,
                                            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.sidecar_port, timeout=20, proc=self.sidecar)
        except (RuntimeError, TimeoutError) as exc:
            self.stop_sidecar()
            raise AssertionError(f"polygen.service did not start: {exc}\n{self.journal.read_text()}") from None

    def stop_sidecar(self) -> None:
        proc, self.sidecar = self.sidecar, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)

    def close(self) -> None:
        self.stop_sidecar()
        if self.nginx is not None:
            self.nginx.stop()


# ---------------------------------------------------------------- helpers
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def normalise(text: str) -> str:
    text = _TIME_RE.sub("<time>", text)
    text = re.sub(r"(?<= )\d{10}(?= )", "<stamp>", text)
    return "\n".join(line.rstrip() for line in text.rstrip("\n").splitlines())


def matches(expected: list[str], out: str, tokens: Tokens | None = None) -> bool:
    """Exact after normalise(); a README line ``...`` stands for any number of lines; hashes
    stand in for the README's consistently (``tokens``, remembered on a match)."""
    tokens = tokens if tokens is not None else Tokens()
    pattern, shown = "", []
    for ln in expected:
        if ln == "...":
            pattern += r"(?:.*\n)*?"
            continue
        line, hashes = tokens.pattern(normalise(ln))
        pattern += line + r"\n"
        shown += hashes
    m = re.fullmatch(pattern, normalise(out) + "\n")
    return m is not None and tokens.bind(shown, list(m.groups()))


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values...]}} (comments and blank lines skipped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            current = sections.setdefault(m[1], {})
            continue
        m = re.fullmatch(r"([A-Za-z]+)=(.*)", line)
        assert m and current is not None, f"unit line {n}: not a [Section] or Key=value: {raw!r}"
        current.setdefault(m[1], []).append(m[2])
    return sections


def read_env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile= as systemd reads the simple form: NAME=value, '...' or "..." quoted."""
    env = {}
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        assert m, f"{path}:{n}: not NAME=value: {raw!r}"
        value = m[2]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[m[1]] = value
    return env


SERVICE_KEYS = {
    "Unit": {"Description", "Documentation", "After", "Before", "Wants", "Requires"},
    "Service": {"Type", "User", "Group", "SupplementaryGroups", "WorkingDirectory", "EnvironmentFile",
                "ExecStart", "TimeoutStopSec", "Restart", "RestartSec", "StateDirectory", "StateDirectoryMode",
                "NoNewPrivileges", "ProtectSystem", "ReadWritePaths", "ReadOnlyPaths", "ProtectHome",
                "PrivateTmp", "PrivateDevices", "ProtectHostname", "ProtectClock", "ProtectKernelTunables",
                "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
                "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
                "LockPersonality", "CapabilityBoundingSet", "SystemCallArchitectures", "SystemCallFilter"},
    "Install": {"WantedBy"},
}


def verify_unit(unit: Path, map_paths) -> None:
    """``systemd-analyze verify`` on a copy with the paths mapped (any output fails); without
    systemd-analyze, parse it and check the keys and the ExecStart binary."""
    mapped = unit.with_name("mapped-" + unit.name)
    mapped.write_text(map_paths(unit.read_text()))
    analyze = find_binary("systemd-analyze")
    if analyze:
        result = subprocess.run([analyze, "verify", str(mapped)], capture_output=True, text=True, timeout=60,
                                check=False)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), result.stdout + result.stderr
        return
    units = parse_unit(mapped.read_text())
    for section, keys in units.items():
        assert set(keys) <= SERVICE_KEYS.get(section, set()), f"unknown keys in [{section}]"
    exe = shlex.split(units["Service"]["ExecStart"][0])[0]
    assert os.access(exe, os.X_OK), f"ExecStart {exe} is not executable"


# ---------------------------------------------------------------- the guide, step by step
@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    g = Guide(tmp_path_factory.mktemp("guide"))
    yield g
    g.close()


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[s.id for s in STEPS])
def test_guide_command(guide, index):
    for i in range(index):
        if i not in guide.done:
            _run_recorded(guide, i)
        if guide.done[i] is not None:
            pytest.skip(f"an earlier step failed: README line {STEPS[i].line} ({guide.done[i]})")
    _run_recorded(guide, index, reraise=True)


def _run_recorded(guide: Guide, i: int, reraise: bool = False) -> None:
    try:
        out = guide.run(STEPS[i])
        guide.done[i] = None
        if os.environ.get("POLYGEN_README_SHOW"):  # print the real outputs (to paste), compare none
            print(f"\n--- README line {STEPS[i].line}: $ {STEPS[i].command}\n{out}")
    except pytest.skip.Exception:
        guide.done[i] = None  # a step with no test-safe form does not block the ones after it
        if reraise:
            raise
    except BaseException as exc:
        guide.done[i] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if reraise:
            raise


# ---------------------------------------------------------------- the guide's shape
def test_guide_exists_and_the_set_up_links_to_it():
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    assert "(#deployment-guide)" in setup
    assert len([s for s in STEPS if not s.edit]) >= 30


def test_every_command_is_mapped_off_the_real_system(tmp_path):
    """No command of the guide may touch a real system path in the test: every absolute path it
    names is mapped or harmless, and every systemctl/journalctl form has a test-safe form."""
    g = Guide.__new__(Guide)
    g.tmp, g.home, g.run_prefix = tmp_path, tmp_path / "home", tmp_path / "run-nginx"
    g.user, g.group, g.nginx_port, g.sidecar_port = *_owner(), 1, 2
    g.nginx_conf = tmp_path / "etc/nginx/nginx.conf"
    for step in STEPS:
        if step.edit:
            assert step.edit[0].startswith("/srv/polygen/"), step.edit
            continue
        translated = g.translate(step.command)
        for path in re.findall(r"(?<![\w.:/~-])/[A-Za-z][\w./-]*", translated):
            assert path.startswith(str(tmp_path)) or path.startswith(UNMAPPED_OK) or path == str(ROOT), (
                f"README line {step.line}: `{step.command}` names {path}, which the test does not map")
        plain = re.sub(r"^sudo (?:-u polygen )?", "", step.command)
        if plain.startswith(("systemctl", "journalctl")):
            assert re.fullmatch(r"systemctl (reload nginx|daemon-reload|enable --now polygen|restart polygen|"
                                r"status polygen|restart isc-dhcp-server)|journalctl -u polygen -n \d+", plain), plain


def test_parse_guide_handles_continuations_and_heredocs(monkeypatch, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n## Deployment guide\n### A\n```console\n$ echo a \\\n  b\na b\n$ cat <<'EOF'\nx\nEOF\n"
                      "x\n```\n<!-- guide-edit: /srv/polygen/inventory/site.yaml -->\n\n```yaml\nsite:\n  k: 1\n```\n"
                      "## Next\n```console\n$ not-this\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "README", readme)
    steps = parse_guide()
    assert [(s.command, s.expected, s.edit) for s in steps] == [
        ("echo a \\\n  b", ["a b"], None), ("cat <<'EOF'\nx\nEOF", ["x"], None),
        ("", [], ("/srv/polygen/inventory/site.yaml", "site:\n  k: 1\n"))]
    assert matches(["a", "...", "z"], "a\nb\nc\nz\n") and not matches(["a", "z"], "a\nb\nz")


def test_hashes_stand_in_for_the_readmes_consistently():
    tokens = Tokens()
    c1, c2 = "1" * 40, "2" * 40
    assert matches([f'{{"commit": "{c1}"}}', f"(commit {c1[:12]}, digest {'a' * 16})"],
                    f'{{"commit": "{"e" * 40}"}}\n(commit {"e" * 12}, digest {"f" * 16})\n', tokens)
    assert not matches([f"commit {c1[:12]}"], f"commit {'d' * 12}\n", tokens)  # the same one shown: the same
    assert not matches([f"commit {c2[:12]}"], f"commit {'e' * 12}\n", tokens)  # another one shown: another
    assert matches([f"commit {c2[:12]}", "digest 0123456789abcdef"], f"commit {'d' * 12}\ndigest {'9' * 16}\n",
                   tokens)
    assert not matches(["digest 0123456789abcdef"], "digest 0123456789abcdeg\n")  # hex only, and elsewhere exact
    assert not matches(["commit 0123456789ab"], "commit: 0123456789ab\n")


# ---------------------------------------------------------------- deploy/
def test_unit_file(tmp_path):
    """deploy/polygen.service: what the guide says it is, and systemd accepts it."""
    unit = ROOT / "deploy" / "polygen.service"
    service = parse_unit(unit.read_text())["Service"]
    assert service["ExecStart"] == ["/srv/polygen/.venv/bin/polygen serve --watch --no-static"]
    assert service["EnvironmentFile"] == ["/etc/polygen/polygen.env"]
    assert service["User"] == ["polygen"] and service["WorkingDirectory"] == ["/srv/polygen"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("ReadWritePaths", "/srv/polygen"), ("ProtectHome", "yes")):
        assert service[key] == [value], key
    # a layout for the paths the unit names, then systemd-analyze verify (or the parse check)
    for d in ("srv/polygen/src", "srv/polygen/.venv/bin", "srv/polygen/inventory", "srv/polygen/firmware",
              "etc/polygen"):
        (tmp_path / d).mkdir(parents=True)
    exe = tmp_path / "srv/polygen/.venv/bin/polygen"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / "etc/polygen/polygen.env").write_text("")
    installed = tmp_path / "polygen.service"
    shutil.copy(unit, installed)

    def mapping(text):
        return text.replace("/srv/polygen", f"{tmp_path}/srv/polygen").replace("/etc/polygen", f"{tmp_path}/etc/polygen")

    verify_unit(installed, mapping)
    if not find_binary("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: only the parse check ran")


def test_unit_file_check_catches_a_typo(tmp_path):
    if not find_binary("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    exe = tmp_path / "polygen"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "x.service"
    unit.write_text(f"[Service]\nExecStart={exe}\nProtectSystm=strict\n")
    with pytest.raises(AssertionError, match="Unknown key 'ProtectSystm'"):
        verify_unit(unit, lambda t: t)


def test_env_example_names_real_options():
    """Every variable in deploy/polygen.env.example (commented ones too) is an option of
    `polygen serve`, a POLYGEN_SECRET_<EXT>, POLYGEN_PROVISIONING_PASSWORD or POLYGEN_ADMIN_PASSWORD."""
    import click

    from polygen.cli import cli

    example = ROOT / "deploy" / "polygen.env.example"
    env = read_env_file(example)
    commented = dict(re.findall(r"^#(POLYGEN_\w+)=(.*)$", example.read_text(), re.M))
    assert env and commented
    serve = {p.envvar for p in cli.commands["serve"].params if isinstance(p, click.Option)}
    for name in {**env, **commented}:
        assert name in serve or re.fullmatch(r"POLYGEN_SECRET_[A-Za-z0-9_]+", name) or \
            name in ("POLYGEN_PROVISIONING_PASSWORD", "POLYGEN_ADMIN_PASSWORD"), name
    assert env["POLYGEN_SERVE_HOST"] == "127.0.0.1" and env["POLYGEN_GROUP"] == "www-data"
