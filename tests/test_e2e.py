"""End to end with the real daemons: a build of the example inventory, the real sidecar
(``polygen serve`` in a subprocess), a real nginx on the config ``polygen nginx`` prints, and
``polygen simulate`` / ``polygen logs`` run as commands, the way an admin proves a deployment
before plugging a phone in (issue 4). Then the same with the sidecar stopped, and with
provisioning auth (issue 6, "Attackers": enforced by nginx, rotatable with an overlap).

Every process a test starts is stopped in a fixture finalizer, also when the test fails.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from polygen.simulate import HttpTransport, TreeTransport, boot
from tests.conftest import EXAMPLE, TEMPLATES, clean_env, make_firmware
from tests.daemons import Nginx, free_port, nginx_check, require_binary, wait_for_port, write_nginx_main_conf

PYTHON = sys.executable
# The console script a user runs; `python -m polygen` where the venv has none.
POLYGEN = [str(Path(sys.executable).with_name("polygen"))] if Path(sys.executable).with_name(
    "polygen").exists() else [PYTHON, "-m", "polygen"]

AUTH_CURRENT = ("phones-2026b", "new-pass")
AUTH_PREVIOUS = ("phones-2026a", "old-pass")
REQUEST_RE = re.compile(r"^  (GET|PUT|HEAD) +(/\S*) +(\d{3})  (.*)$")


# ---------------------------------------------------------------- helpers
def polygen(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*POLYGEN, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass(frozen=True)
class Phone:
    mac: str  # as the admin wrote it in the inventory
    model: str  # as written, e.g. IP330 or SPIP_331
    norm: str  # 12 lower-case hex digits
    lines: tuple[str, ...]


def example_phones(inventory: Path) -> list[Phone]:
    phones = []
    for entry in yaml.safe_load((inventory / "phones.yaml").read_text())["phones"]:
        mac = str(entry["mac"])
        phones.append(Phone(mac, str(entry["model"]), re.sub(r"[^0-9a-f]", "", mac.lower()),
                            tuple(str(x) for x in entry["lines"])))
    return phones


def secrets_of(inventory: Path) -> list[str]:
    return [str(e["secret"]) for e in yaml.safe_load((inventory / "extensions.yaml").read_text())["extensions"]]


def parse_requests(report: str) -> list[tuple[str, str, int, str]]:
    return [(m[1], m[2], int(m[3]), m[4]) for line in report.splitlines() if (m := REQUEST_RE.match(line))]


def get(host: str, port: int, path: str, *, ua: str | None = None, auth: tuple[str, str] | None = None
        ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        headers = {}
        if ua is not None:
            headers["User-Agent"] = ua
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def add_auth(inventory: Path, previous: bool = True, current: tuple[str, str] = AUTH_CURRENT) -> None:
    """Write site.provisioning_auth into the inventory's site.yaml (replacing any earlier one)."""
    site = inventory / "site.yaml"
    text = re.sub(r"  provisioning_auth:\n(?:    .*\n)*", "", site.read_text())
    block = f"  provisioning_auth:\n    user: {current[0]}\n    password: \"{current[1]}\"\n"
    if previous:
        block += f"    previous:\n      - {{user: {AUTH_PREVIOUS[0]}, password: \"{AUTH_PREVIOUS[1]}\"}}\n"
    site.write_text(text.replace("  settings:\n", block + "  settings:\n", 1))


class Site:
    """A deployment layout in a tmp dir: inventory (copy of the example), fake firmware, out/."""

    def __init__(self, root: Path):
        self.root = root
        self.inventory = root / "inventory"
        self.firmware = root / "firmware"
        self.out = root / "out"
        self.db = root / "logs.db"
        shutil.copytree(EXAMPLE, self.inventory, ignore=shutil.ignore_patterns("secrets.yaml"))
        make_firmware(self.firmware)

    def build(self) -> str:
        result = polygen("build", "-i", str(self.inventory), "-o", str(self.out), "-t", str(TEMPLATES),
                         "--firmware", str(self.firmware), cwd=self.root)
        assert result.returncode == 0, result.stderr
        return result.stdout


class Sidecar:
    """``python -m polygen serve`` as a subprocess on a loopback port (its output in a file)."""

    def __init__(self, site: Site, *extra: str):
        self.site = site
        self.port = free_port()
        self.log = site.root / "sidecar.log"
        self.proc: subprocess.Popen | None = None
        self.extra = extra or ("--no-static",)  # more options of `polygen serve`

    def start(self) -> Sidecar:
        s = self.site
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "polygen", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra,
                 "-o", str(s.out), "--db", str(s.db), "-i", str(s.inventory), "-t", str(TEMPLATES),
                 "--firmware", str(s.firmware)],
                cwd=s.root, env=clean_env(), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                wait_for_port("127.0.0.1", self.port, timeout=0.5, proc=self.proc)
                status, body = get("127.0.0.1", self.port, "/healthz")
                if status == 200:
                    health = json.loads(body)
                    assert health["status"] == "ok" and health["db"] is True, health
                    return self
            except (TimeoutError, OSError):
                pass
            except RuntimeError:
                raise RuntimeError(f"the sidecar exited:\n{self.log.read_text()}") from None
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sidecar's /healthz never answered 200:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        return proc.returncode


def start_nginx(site: Site, sidecar_port: int, *extra: str) -> Nginx:
    """Real nginx on a free loopback port with exactly the config `polygen nginx` prints."""
    require_binary("nginx")
    port = free_port()
    result = polygen("nginx", "-o", str(site.out), "--listen", f"127.0.0.1:{port}",
                     "--sidecar", f"127.0.0.1:{sidecar_port}", *extra, cwd=site.root)
    assert result.returncode == 0, result.stderr
    conf = site.root / "polygen.conf"
    conf.write_text(result.stdout)
    main = write_nginx_main_conf(site.root / "nginx", [conf])
    check = nginx_check(main)
    assert check.returncode == 0, check.stderr
    return Nginx(main, "127.0.0.1", port).start()


def simulate(url: str, phone: Phone, cwd: Path) -> subprocess.CompletedProcess:
    return polygen("simulate", "--url", url, "--mac", phone.mac, "--model", phone.model, cwd=cwd)


def expected_requests(site: Site, phone: Phone, ua: str) -> list[tuple[str, str, int]]:
    """The same boot against the built tree in-process (polygen.simulate.TreeTransport, the
    reference behaviour of a static server): nginx must answer every request alike."""
    report = boot(TreeTransport(site.out), phone.norm, ua)
    assert report.ok, report.failures
    return [(r.method, r.path, r.status) for r in report.requests]


def user_agent(report: str) -> str:
    return re.match(r"Simulating [0-9a-f]{12} \((.*)\)$", report.splitlines()[0])[1]


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def site(tmp_path) -> Site:
    s = Site(tmp_path / "srv")
    assert s.build().startswith("4 phones: ")
    return s


@pytest.fixture
def sidecar(site):
    sc = Sidecar(site).start()
    yield sc
    sc.stop()


@pytest.fixture
def nginx(site, sidecar):
    server = start_nginx(site, sidecar.port)
    yield server
    server.stop()


@pytest.fixture
def auth_site(tmp_path) -> Site:
    s = Site(tmp_path / "srv")
    add_auth(s.inventory)
    s.build()
    assert (s.out / ".htpasswd").is_file()
    return s


@pytest.fixture
def auth_sidecar(auth_site):
    sc = Sidecar(auth_site).start()
    yield sc
    sc.stop()


@pytest.fixture
def auth_nginx(auth_site, auth_sidecar):
    server = start_nginx(auth_site, auth_sidecar.port)
    yield server
    server.stop()


# ---------------------------------------------------------------- the example, end to end
def test_every_example_phone_boots_through_nginx_and_its_log_lands(site, sidecar, nginx):
    phones = example_phones(site.inventory)
    assert len(phones) == 4
    url = f"http://127.0.0.1:{nginx.port}/"
    secrets = secrets_of(site.inventory)
    sip_server = yaml.safe_load((site.inventory / "site.yaml").read_text())["site"]["sip_server"]

    for phone in phones:
        result = simulate(url, phone, site.root)
        report = result.stdout
        assert result.returncode == 0, report + result.stderr
        assert result.stderr == ""
        lines = report.splitlines()
        assert lines[-1] == "  result: OK"
        ua = user_agent(report)
        requests = parse_requests(report)
        # each request with its status, exactly as a static server answers them ...
        assert [(m, p, s) for m, p, s, _ in requests] == expected_requests(site, phone, ua)
        # ... which is: the bootstrap by User-Agent, firmware, the phone's files, directories, the log
        notes = {(m, p): (s, n) for m, p, s, n in requests}
        assert notes[("GET", f"/{phone.norm}.cfg")] == (404, "per-phone master (optional)")
        assert notes[("GET", "/000000000000.cfg")] == (200, "master, chosen by User-Agent")
        assert notes[("GET", f"/{phone.norm}-phone.cfg")][0] == 200
        assert notes[("GET", f"/contacts/{phone.norm}-directory.xml")] == (200, "directory")
        assert notes[("PUT", f"/logs/{phone.norm}-boot.log")] == (201, "boot log")
        assert sum(1 for m, p, s, n in requests if n == "firmware" and s == 200) == 1
        # the effective registration, passwords masked
        regs = [ln for ln in lines if ln.startswith("  line ")]
        assert len(regs) == len(phone.lines)
        for i, (reg, ext) in enumerate(zip(regs, phone.lines), start=1):
            assert re.fullmatch(rf'  line {i}: {ext} ".+" label {ext} auth {ext}/\*{{8}} via {re.escape(sip_server)}',
                                reg), reg
        assert not any(secret in report for secret in secrets)

    # polygen logs finds each phone's uploaded boot log (asked with the MAC as the admin wrote it)
    for phone in phones:
        result = polygen("logs", "--db", str(site.db), "--mac", phone.mac, "--format", "json", cwd=site.root)
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert [(r["mac"], r["kind"], r["line_no"]) for r in rows] == [(phone.norm, "boot", 1), (phone.norm, "boot", 2)]
        assert rows[0]["text"] == f"polygen simulate: boot of {phone.norm}"
        assert rows[1]["text"].startswith(f"config files: {phone.norm}-phone.cfg, site")


def test_sidecar_down_bootstraps_still_served_uploads_fail(site, sidecar, nginx):
    phones = example_phones(site.inventory)
    url = f"http://127.0.0.1:{nginx.port}/"
    assert sidecar.stop() == 0  # SIGTERM: a clean stop
    with pytest.raises(OSError):
        get("127.0.0.1", sidecar.port, "/healthz")

    # simulate: everything served as before, only the boot-log PUT fails (502 from nginx) -> exit 1;
    # the override files, the sidecar's too, are missing (a warning: the phone boots without them)
    agents = {}
    for phone in phones:
        result = simulate(url, phone, site.root)
        report = result.stdout
        assert result.returncode == 1, report
        agents[phone.norm] = ua = user_agent(report)
        expected = [(m, p, 502 if m == "PUT" or p.startswith("/overrides/") else s)
                    for m, p, s in expected_requests(site, phone, ua)]
        assert [(m, p, s) for m, p, s, _ in parse_requests(report)] == expected
        assert f"  PUT  /logs/{phone.norm}-boot.log                      502  boot log" in report
        assert (f"  warning: override file overrides/{phone.norm}-web.cfg answered 502: the phone boots without "
                "its local changes") in report
        assert [ln for ln in report.splitlines() if "FAILED" in ln] == [
            "  FAILED: boot log upload answered 502", "  result: FAILED"]
        assert len([ln for ln in report.splitlines() if ln.startswith("  line ")]) == len(phone.lines)

    # nginx alone hands every model its own bootstrap, by User-Agent, and unknown phones the default
    index = json.loads((site.out / "ua-index.json").read_text())
    assert len(index["models"]) == 4
    for phone in phones:
        ua = agents[phone.norm]
        token = re.search(r"-([A-Za-z0-9_]+)-UA/", ua)[1]
        assert get("127.0.0.1", nginx.port, "/000000000000.cfg", ua=ua) == (
            200, (site.out / index["models"][token]).read_bytes())
    assert get("127.0.0.1", nginx.port, "/000000000000.cfg", ua="FileTransport PolycomVVX-VVX_999-UA/6.4.6.1 "
               "Type/Application") == (200, (site.out / "000000000000.cfg").read_bytes())
    assert len(set(index["models"].values())) == 4  # four different answers, not one default

# ---------------------------------------------------------------- provisioning auth, end to end
def test_simulate_with_provisioning_auth(auth_site, auth_sidecar, auth_nginx):
    phones = example_phones(auth_site.inventory)
    port = auth_nginx.port
    user, password = AUTH_CURRENT
    for phone in phones:
        ok = simulate(f"http://{user}:{password}@127.0.0.1:{port}/", phone, auth_site.root)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert ok.stdout.endswith("  result: OK\n")
        assert password not in ok.stdout  # the password in the URL is not echoed either
        statuses = {(m, p): s for m, p, s, _ in parse_requests(ok.stdout)}
        assert statuses[("PUT", f"/logs/{phone.norm}-boot.log")] == 201  # through nginx's auth to the sidecar

    # the previous credentials still work during the rotation overlap
    old = simulate(f"http://{AUTH_PREVIOUS[0]}:{AUTH_PREVIOUS[1]}@127.0.0.1:{port}/", phones[0], auth_site.root)
    assert old.returncode == 0, old.stdout
    assert ("PUT", f"/logs/{phones[0].norm}-boot.log") in {(m, p) for m, p, s, _ in parse_requests(old.stdout)
                                                          if s in (200, 201, 204)}

    # no credentials: the bootstrap and firmware come, everything with a secret or an upload is 401
    phone = phones[0]  # an IP 330 on UC Software 3.3.5
    bare = simulate(f"http://127.0.0.1:{port}/", phone, auth_site.root)
    assert bare.returncode == 1
    m = phone.norm
    assert bare.stdout.splitlines()[1:] == [
        f"  GET  /{m}.cfg                                404  per-phone master (optional)",
        "  GET  /000000000000.cfg                                200  master, chosen by User-Agent",
        "  GET  /firmware/3.3.5/2345-12200-001.sip.ld            404  firmware (split image, asked first)",
        "  GET  /firmware/3.3.5/sip.ld                           200  firmware",
        f"  GET  /{m}-phone.cfg                          401  CONFIG_FILES",
        "  GET  /site.cfg                                        401  CONFIG_FILES",
        f"  GET  /overrides/{m}-phone.cfg                401  override file",
        f"  GET  /overrides/{m}-web.cfg                  401  override file",
        f"  GET  /contacts/{m}-directory.xml             401  directory",
        "  GET  /contacts/000000000000-directory.xml             401  directory",
        f"  PUT  /logs/{m}-boot.log                      401  boot log",
        "  directory: 0 entries",
        f"  warning: override file overrides/{m}-phone.cfg answered 401: the phone boots without its local changes",
        f"  warning: override file overrides/{m}-web.cfg answered 401: the phone boots without its local changes",
        "  warning: no registration: the phone will boot without a line",
        f"  FAILED: {m}-phone.cfg (CONFIG_FILES) answered 401",
        "  FAILED: site.cfg (CONFIG_FILES) answered 401",
        f"  FAILED: contacts/{m}-directory.xml answered 401",
        "  FAILED: contacts/000000000000-directory.xml answered 401",
        "  FAILED: boot log upload answered 401",
        "  hint: 401: the server wants provisioning credentials; give them in the URL, "
        "e.g. --url http://user:password@host/",
        "  result: FAILED",
    ]
    wrong = simulate(f"http://{user}:wrong@127.0.0.1:{port}/", phone, auth_site.root)
    assert wrong.returncode == 1 and f"  FAILED: {m}-phone.cfg (CONFIG_FILES) answered 401" in wrong.stdout
    assert "  hint: 401: the server refused the user and password given in --url" in wrong.stdout
    assert "wrong" not in wrong.stdout

    # the sidecar saw only the authenticated uploads (4 with the current user, 1 with the previous)
    puts = re.findall(r"method=PUT path=/logs/([0-9a-f]{12})-boot\.log status=(\d+)", auth_sidecar.log.read_text())
    assert sorted(puts) == sorted([(p.norm, "201") for p in phones] + [(phones[0].norm, puts[-1][1])])
    rows = json.loads(polygen("logs", "--db", str(auth_site.db), "--format", "json", "--limit", "0",
                              cwd=auth_site.root).stdout)
    assert sorted({r["mac"] for r in rows}) == sorted(p.norm for p in phones)


def test_a_change_on_the_phone_through_nginx(auth_site, auth_sidecar, auth_nginx):
    """A phone behind nginx (with provisioning auth) uploads its override file when its user
    changes a setting; nginx hands it to the sidecar, which keeps it and gives it back at the
    phone's next boot (site.overrides: keep, the default)."""
    phone = next(p for p in example_phones(auth_site.inventory) if p.model == "VVX410")
    url = f"http://{AUTH_CURRENT[0]}:{AUTH_CURRENT[1]}@127.0.0.1:{auth_nginx.port}/"
    changed = polygen("simulate", "--url", url, "--mac", phone.mac, "--model", phone.model,
                      "--change", "up.backlight.idleIntensity=3", cwd=auth_site.root)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    requests = {(m, p): s for m, p, s, _ in parse_requests(changed.stdout)}
    assert requests[("GET", f"/overrides/{phone.norm}-phone.cfg")] == 404
    assert requests[("PUT", f"/overrides/{phone.norm}-phone.cfg")] == 201
    report = boot(HttpTransport(url), phone.norm, model_user_agent(phone.model), firmware_required=False)
    assert report.ok, report.failures
    assert (report.params["up.backlight.idleIntensity"], report.sources["up.backlight.idleIntensity"]) == (
        "3", f"overrides/{phone.norm}-phone.cfg")
    shown = polygen("overrides", "--db", str(auth_site.db), "-o", str(auth_site.out), cwd=auth_site.root)
    assert shown.stdout.splitlines()[1:] == ['  up.backlight.idleIntensity = "3"'], shown.stdout + shown.stderr
    # without credentials nginx refuses both ways; a guessed MAC is the sidecar's plain 404
    assert get("127.0.0.1", auth_nginx.port, f"/overrides/{phone.norm}-phone.cfg")[0] == 401
    assert get("127.0.0.1", auth_nginx.port, "/overrides/0004f2999999-phone.cfg", auth=AUTH_CURRENT) == (
        404, b'{"error": {"status": 404, "message": "not found"}}')


# ---------------------------------------------------------------- a boot storm behind one address
def write_phones(inventory: Path, count: int) -> list[Phone]:
    """Replace the example's phones by ``count`` phones of its four models, one new line each."""
    models = [p.model for p in example_phones(inventory)]
    phones = [{"mac": f"0004f2{0x100 + i:06x}", "model": models[i % len(models)], "lines": [str(2000 + i)]}
              for i in range(count)]
    exts = yaml.safe_load((inventory / "extensions.yaml").read_text())
    exts["extensions"] += [{"ext": str(2000 + i), "first_name": "Desk", "last_name": str(i),
                            "secret": f"storm-{i}-pw"} for i in range(count)]
    (inventory / "phones.yaml").write_text(yaml.safe_dump({"phones": phones}))
    (inventory / "extensions.yaml").write_text(yaml.safe_dump(exts, allow_unicode=True))
    return example_phones(inventory)


def model_user_agent(model: str) -> str:
    from polygen.catalog import Catalog

    m = Catalog().find(model)
    return f"FileTransport {m.family}-{m.ua_token}-UA/{m.firmware}.0000 Type/Application"


def test_fifty_phones_boot_at_once_behind_one_address(tmp_path):
    """A site behind NAT after a power cut: 50 phones boot at the same moment from one address,
    each fetching its own files with the right password (polygen.simulate's boot, all of it).
    Not one is refused. A guesser from that address is still held back after the sidecar's
    default 20 misses a minute, hits included."""
    s = Site(tmp_path / "srv")
    phones = write_phones(s.inventory, 50)
    add_auth(s.inventory, previous=False)
    assert s.build().startswith("50 phones: ")
    sidecar = Sidecar(s).start()
    try:
        server = start_nginx(s, sidecar.port)
        try:
            url = f"http://{AUTH_CURRENT[0]}:{AUTH_CURRENT[1]}@127.0.0.1:{server.port}/"
            start = threading.Barrier(len(phones))

            def one_boot(phone: Phone):
                start.wait(30)
                return boot(HttpTransport(url), phone.norm, model_user_agent(phone.model))

            with concurrent.futures.ThreadPoolExecutor(len(phones)) as pool:
                reports = list(pool.map(one_boot, phones))
            requests = [(r.method, r.path, r.status) for report in reports for r in report.requests]
            assert [r for r in requests if r[2] in (429, 503)] == []
            assert [report.failures for report in reports] == [[]] * len(phones)
            assert all(report.lines for report in reports)  # each got its own registration
            assert len(requests) >= 50 * 10

            # the same address guessing: 20 misses (polygen serve's default), then held back
            guesses = [get("127.0.0.1", server.port, f"/0004f2{0xf000 + n:06x}-phone.cfg", auth=AUTH_CURRENT)[0]
                       for n in range(25)]
            assert guesses == [404] * 20 + [429] * 5
            assert get("127.0.0.1", server.port, f"/{phones[0].norm}-phone.cfg", auth=AUTH_CURRENT)[0] == 429
        finally:
            server.stop()
    finally:
        sidecar.stop()


# ---------------------------------------------------------------- nginx + auth, file by file
@pytest.fixture
def auth_only_nginx(auth_site):
    """nginx on the auth build, with nothing on the sidecar port (auth is nginx's job)."""
    server = start_nginx(auth_site, free_port())
    yield server
    server.stop()


def test_nginx_uses_the_builds_htpasswd(auth_site, auth_only_nginx):
    conf = (auth_site.root / "polygen.conf").read_text()
    # through the out symlink, never a generation: a rebuild's rotation needs no reload
    assert f'    auth_basic_user_file "{auth_site.out}/.htpasswd";\n' in conf and ".gens" not in conf
    port = auth_only_nginx.port
    mac = example_phones(auth_site.inventory)[0].norm
    ua = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247"

    def status(path, auth=None, agent=None):
        return get("127.0.0.1", port, path, auth=auth, ua=agent)[0]

    assert status(f"/{mac}-phone.cfg") == 401
    assert status(f"/{mac}-phone.cfg", AUTH_CURRENT) == 200
    assert status(f"/{mac}-phone.cfg", AUTH_PREVIOUS) == 200  # the rotation overlap
    assert status(f"/{mac}-phone.cfg", (AUTH_CURRENT[0], "wrong")) == 401
    assert status(f"/{mac}-phone.cfg", (AUTH_CURRENT[0], AUTH_PREVIOUS[1])) == 401  # passwords are per user
    assert status(f"/{mac}-phone.cfg", ("nobody", AUTH_CURRENT[1])) == 401
    # a guessed MAC learns nothing without credentials: the same 401 as a known one
    assert status("/0004f2999999-phone.cfg") == 401
    assert status("/0004f2999999-phone.cfg", AUTH_CURRENT) == 404
    for path in ("/site.cfg", f"/contacts/{mac}-directory.xml"):
        assert (status(path), status(path, AUTH_CURRENT)) == (401, 200), path
    # open: what a phone fetches before it has credentials
    assert get("127.0.0.1", port, "/000000000000.cfg", ua=ua) == (
        200, (auth_site.out / "bootstrap" / "SPIP330.cfg").read_bytes())
    assert status("/000000000000.cfg") == 200
    assert status("/bootstrap/VVX410.cfg") == 200
    assert status("/firmware/5.9.7/sip.ld") == 200
    # never served, with or without credentials
    assert status("/.htpasswd") == 404 and status("/.htpasswd", AUTH_CURRENT) == 404


def test_rotation_takes_effect_without_reload(tmp_path):
    """Three builds while one nginx keeps running: A only; B current with A previous; B only."""
    s = Site(tmp_path / "srv")
    a = AUTH_PREVIOUS
    add_auth(s.inventory, previous=False, current=a)
    s.build()
    server = start_nginx(s, free_port())
    try:
        mac = example_phones(s.inventory)[0].norm
        pid = server.proc.pid

        def status(auth):
            return get("127.0.0.1", server.port, f"/{mac}-phone.cfg", auth=auth)[0]

        assert (status(a), status(AUTH_CURRENT)) == (200, 401)
        add_auth(s.inventory, previous=True)  # rotate: B current, A kept for the overlap
        s.build()
        assert (status(a), status(AUTH_CURRENT)) == (200, 200)
        site_cfg = get("127.0.0.1", server.port, "/site.cfg", auth=a)[1].decode()
        assert f'device.prov.user="{AUTH_CURRENT[0]}"' in site_cfg  # phones polling now learn B
        add_auth(s.inventory, previous=False)  # every phone has polled: drop A
        s.build()
        assert (status(a), status(AUTH_CURRENT)) == (401, 200)
        assert server.proc.pid == pid and server.proc.poll() is None  # same nginx, never reloaded
        assert "reconfiguring" not in server.error_log.read_text()
    finally:
        server.stop()


def test_no_auth_and_auth_file_options(auth_site, tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    base = ("nginx", "-o", str(auth_site.out), "--listen", listen)
    off = polygen(*base, "--no-auth", cwd=auth_site.root)
    assert off.returncode == 0, off.stderr
    assert "auth_basic" not in off.stdout
    other = tmp_path / "users"
    other.write_text("someone:{PLAIN}pw\n")
    override = polygen(*base, "--auth-file", str(other), cwd=auth_site.root)
    assert override.returncode == 0, override.stderr
    assert f'auth_basic_user_file "{other}";' in override.stdout and ".htpasswd" not in override.stdout
    # bootstrap, bootstrap/, firmware/, and the three that hand 404s and 401s to the sidecar
    assert override.stdout.count("        auth_basic off;\n") == 6
    both = polygen(*base, "--no-auth", "--auth-file", str(other), cwd=auth_site.root)
    assert (both.returncode, both.stderr) == (
        1, "Error: --no-auth and --auth-file contradict each other: give one of them\n")
    for text in (off.stdout, override.stdout):
        conf = tmp_path / "polygen.conf"
        conf.write_text(text)
        check = nginx_check(write_nginx_main_conf(tmp_path / "nginx", [conf]))
        assert check.returncode == 0, check.stderr


def test_no_htpasswd_no_auth(site):
    result = polygen("nginx", "-o", str(site.out), cwd=site.root)
    assert result.returncode == 0 and "auth_basic" not in result.stdout


def test_turning_auth_off_needs_a_new_nginx_config(tmp_path):
    """README "When something fails": after a build drops provisioning_auth, the old config names a
    user file that is gone: nginx answers 403 to credentials for the protected files (never serves
    them without auth) and logs why, until the config is regenerated; the bootstraps stay served meanwhile."""
    s = Site(tmp_path / "srv")
    add_auth(s.inventory, previous=False)
    s.build()
    server = start_nginx(s, free_port())
    try:
        mac = example_phones(s.inventory)[0].norm
        assert get("127.0.0.1", server.port, f"/{mac}-phone.cfg", auth=AUTH_CURRENT)[0] == 200
        site_yaml = s.inventory / "site.yaml"
        site_yaml.write_text(re.sub(r"  provisioning_auth:\n(?:    .*\n)*", "", site_yaml.read_text()))
        s.build()
        assert not (s.out / ".htpasswd").exists()
        assert get("127.0.0.1", server.port, f"/{mac}-phone.cfg", auth=AUTH_CURRENT)[0] == 403
        assert get("127.0.0.1", server.port, f"/{mac}-phone.cfg")[0] == 401  # asked for credentials first
        assert f'open() "{s.out}/.htpasswd" failed (2: No such file or directory)' in server.error_log.read_text()
        assert get("127.0.0.1", server.port, "/000000000000.cfg")[0] == 200
        # regenerate (no .htpasswd: no auth) and reload
        result = polygen("nginx", "-o", str(s.out), "--listen", f"127.0.0.1:{server.port}",
                         "--sidecar", f"127.0.0.1:{free_port()}", cwd=s.root)
        assert result.returncode == 0 and "auth_basic" not in result.stdout
        (s.root / "polygen.conf").write_text(result.stdout)
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while get("127.0.0.1", server.port, f"/{mac}-phone.cfg")[0] != 200:
            assert time.monotonic() < deadline, "nginx did not pick up the new config"
            time.sleep(0.1)
    finally:
        server.stop()
