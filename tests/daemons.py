"""Helpers for tests that drive real daemons (nginx, dhcpd, kea-dhcp4, dnsmasq) on loopback.

Plain functions and classes, for any test module: ``from tests.daemons import Nginx, ...``.

* ``require_binary(name)``: the daemon's path. Missing binaries are installed once per session
  with ``scripts/system-deps.sh`` when running as root; not root and missing -> ``pytest.skip``
  with the reason.
* ``free_port()`` / ``wait_for_port()``.
* ``write_nginx_main_conf()`` / ``nginx_check()`` / ``Nginx`` (start/stop a real nginx with
  ``daemon off;``, everything — pid, logs, temp dirs — under a temporary prefix).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DEPS = ROOT / "scripts" / "system-deps.sh"
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("nginx", "dhcpd", "kea-dhcp4", "dnsmasq")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_binary(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories (often not on a user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which(name, path=path)


@functools.cache
def _install_system_deps() -> subprocess.CompletedProcess:
    """Run scripts/system-deps.sh once per session (it is idempotent anyway)."""
    return subprocess.run(
        ["sh", str(SYSTEM_DEPS)], capture_output=True, text=True, timeout=900, check=False
    )


def require_binary(name: str) -> str:
    """Return the path of daemon ``name``; install the system deps as root; skip if impossible."""
    found = find_binary(name)
    if found:
        return found
    if not is_root():
        pytest.skip(f"{name} is not installed and we are not root: run `sudo {SYSTEM_DEPS}`")
    result = _install_system_deps()
    found = find_binary(name)
    if not found:
        pytest.fail(
            f"{name} still missing after {SYSTEM_DEPS} (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the usual bind-to-0 trick; racy but fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts TCP connections on host:port; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


# ---------------------------------------------------------------- nginx
def write_nginx_main_conf(prefix: Path, includes: list[Path] | tuple[Path, ...]) -> Path:
    """Write ``prefix/nginx.conf``: a complete main config whose ``http {}`` includes ``includes``.

    pid, logs and every temp path live under ``prefix``, so nginx touches nothing of the system.
    As root the workers run as root (pytest's tmp dirs are 0700 root); otherwise ``user`` is
    left out (nginx ignores it for non-root masters anyway).
    """
    prefix = Path(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(exist_ok=True)
    mime = Path("/etc/nginx/mime.types")
    lines = [
        "user root;" if is_root() else "",
        "worker_processes 1;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/logs/error.log info;",
        "events { worker_connections 1024; }",  # a boot storm: each private request also asks the sidecar
        "http {",
        f"    include {mime};" if mime.exists() else "",
        "    default_type application/octet-stream;",
        f"    access_log {prefix}/logs/access.log;",
        f"    client_body_temp_path {prefix}/tmp/body;",
        f"    proxy_temp_path {prefix}/tmp/proxy;",
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;",
        f"    uwsgi_temp_path {prefix}/tmp/uwsgi;",
        f"    scgi_temp_path {prefix}/tmp/scgi;",
        *(f"    include {Path(p).resolve()};" for p in includes),
        "}",
    ]
    conf = prefix / "nginx.conf"
    conf.write_text("\n".join(line for line in lines if line) + "\n")
    return conf


def _nginx_args(nginx: str, conf: Path) -> list[str]:
    prefix = conf.parent
    return [nginx, "-p", f"{prefix}/", "-e", f"{prefix}/logs/error.log", "-c", str(conf)]


def nginx_check(conf: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on a main config written by write_nginx_main_conf (output in .stderr)."""
    nginx = require_binary("nginx")
    return subprocess.run(
        [*_nginx_args(nginx, conf), "-t"], capture_output=True, text=True, timeout=30, check=False
    )


class Nginx:
    """A real nginx in the foreground (``daemon off;``) on a config from write_nginx_main_conf.

    Use as a context manager, or call start()/stop() (a fixture finalizer must call stop()).
    """

    def __init__(self, conf: Path, host: str, port: int):
        self.conf = Path(conf)
        self.host = host
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def error_log(self) -> Path:
        return self.conf.parent / "logs" / "error.log"

    def start(self, timeout: float = 10.0) -> Nginx:
        nginx = require_binary("nginx")
        self.proc = subprocess.Popen(
            [*_nginx_args(nginx, self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() can reap the workers too
        )
        try:
            wait_for_port(self.host, self.port, timeout=timeout, proc=self.proc)
        except Exception as exc:
            self.stop()
            log = self.error_log.read_text() if self.error_log.exists() else "(no error log)"
            raise RuntimeError(f"nginx did not start: {exc}\n{log}") from exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- DHCP on a private veth link
class VethLink:
    """Two network namespaces joined by a veth pair: ``server`` (192.0.2.1/24 on ``server_if``)
    and ``client`` (192.0.2.99/24 on ``client_if``). Nothing touches the host's own interfaces;
    a DHCP daemon started with ``exec_in(server, ...)`` can only ever answer the probe.
    Root only: ``VethLink.create()`` skips the test when namespaces cannot be made.
    """

    def __init__(self, tag: str):
        self.server = f"pgs{tag}"
        self.client = f"pgc{tag}"
        self.server_if = f"pgs{tag}"[:15]
        self.client_if = f"pgc{tag}"[:15]

    @classmethod
    def create(cls) -> VethLink:
        if not is_root():
            pytest.skip("DHCP exchange tests need root (network namespaces)")
        ip = find_binary("ip")
        if ip is None:
            pytest.skip("iproute2 (ip) is not installed")
        link = cls(f"{os.getpid() % 100000}{free_port() % 1000}")
        cmds = [
            ["netns", "add", link.server],
            ["netns", "add", link.client],
            ["link", "add", link.server_if, "netns", link.server, "type", "veth",
             "peer", "name", link.client_if, "netns", link.client],
            ["-n", link.server, "addr", "add", "192.0.2.1/24", "dev", link.server_if],
            ["-n", link.client, "addr", "add", "192.0.2.99/24", "dev", link.client_if],
            ["-n", link.server, "link", "set", link.server_if, "up"],
            ["-n", link.client, "link", "set", link.client_if, "up"],
            ["-n", link.server, "link", "set", "lo", "up"],
            ["-n", link.client, "link", "set", "lo", "up"],
        ]
        for cmd in cmds:
            result = subprocess.run([ip, *cmd], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                link.destroy()
                pytest.skip(f"cannot build a veth test link (ip {' '.join(cmd)}): {result.stderr.strip()}")
        return link

    def exec_in(self, netns: str, argv: list[str]) -> list[str]:
        return [find_binary("ip") or "ip", "netns", "exec", netns, *argv]

    def destroy(self) -> None:
        ip = find_binary("ip") or "ip"
        for ns in (self.server, self.client):
            subprocess.run([ip, "netns", "del", ns], capture_output=True, check=False)


def dhcp_discover_packet(mac: str, xid: int, request_list: bytes = bytes([1, 3, 6, 15])) -> bytes:
    """A DHCPDISCOVER (broadcast flag set) whose parameter request list omits 66 and 160."""
    import struct

    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                         b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, chaddr, b"\0" * 64, b"\0" * 128)
    options = (b"\x63\x82\x53\x63" + bytes([53, 1, 1]) + bytes([55, len(request_list)]) + request_list
               + bytes([255]))
    return header + options


def parse_dhcp_options(packet: bytes) -> dict[int, bytes]:
    opts: dict[int, bytes] = {}
    i = 240
    while i < len(packet):
        code = packet[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        length = packet[i + 1]
        opts[code] = opts.get(code, b"") + packet[i + 2:i + 2 + length]
        i += 2 + length
    return opts


def dhcp_probe(interface: str, mac: str, timeout: float = 15.0) -> dict[int, str]:
    """Broadcast DISCOVERs from ``interface`` until an OFFER for ``mac`` comes back.

    Returns the OFFER's options as {code: hex}. Meant to run inside the client namespace:
    ``ip netns exec NS python -c "import tests.daemons as d; d.main_probe()" IFACE MAC``.
    """
    import random

    xid = random.getrandbits(32)
    packet = dhcp_discover_packet(mac, xid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.bind(("0.0.0.0", 68))
        s.settimeout(0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.sendto(packet, ("255.255.255.255", 67))
            try:
                reply, _ = s.recvfrom(4096)
            except TimeoutError:
                continue
            if len(reply) > 240 and reply[0] == 2 and int.from_bytes(reply[4:8], "big") == xid:
                opts = parse_dhcp_options(reply)
                if opts.get(53) == b"\x02":  # OFFER
                    return {code: value.hex() for code, value in opts.items()}
    raise TimeoutError(f"no DHCPOFFER for {mac} on {interface} within {timeout}s")


def main_probe() -> None:
    import json
    import sys

    print(json.dumps(dhcp_probe(sys.argv[1], sys.argv[2])))
