"""What ``polygen serve`` prints once it listens: how to try the server from another shell.

The commands shown work as printed: the program is the one running (``.venv/bin/polygen`` under
``make run``), the phone is one the served build has, with its model as the inventory spells it,
and ``--allow-missing-firmware`` is there only when a dry run of that phone's boot against ``out/``
finds no firmware.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from polygen.catalog import Catalog
from polygen.errors import PolygenError
from polygen.logdb import describe_db

DEFAULT_DB = Path("polygen-logs.db")
DEFAULT_OUT = Path("out")


@dataclass(frozen=True)
class ExamplePhone:
    mac: str  # 00:04:f2:00:03:30
    model: str  # as the inventory writes it
    firmware_missing: bool  # a boot against out/ gets no firmware


def program(argv0: str | None = None, cwd: Path | None = None) -> str:
    """How to run this polygen from another shell in ``cwd``: ``polygen`` when that is the one
    on PATH, else the path it was started by, relative to ``cwd`` when inside it."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    cwd = Path.cwd() if cwd is None else cwd
    path = Path(argv0)
    if path.name == "__main__.py":  # python -m polygen
        return f"{shlex.quote(_shown(Path(sys.executable), cwd))} -m polygen"
    on_path = shutil.which("polygen")
    if on_path and path.is_file() and Path(on_path).resolve() == path.resolve():
        return "polygen"
    return shlex.quote(_shown(path, cwd))


def _shown(path: Path, cwd: Path) -> str:
    # not resolve(): a venv's python is a symlink, and the venv's path is the one to show
    path = path if path.is_absolute() else cwd / path
    try:
        rel = Path(os.path.normpath(path)).relative_to(cwd)
    except ValueError:
        return os.path.normpath(path)
    return rel.as_posix() if "/" in rel.as_posix() else f"./{rel.as_posix()}"


def example_phone(inventory: Path, out: Path) -> ExamplePhone | None:
    """The first phone of the inventory that the build in ``out`` has and the catalog knows.

    Reads inventory files in order and stops after the first one with a ``phones:`` list, so a
    large inventory costs one file. None when there is no such phone (or no build yet)."""
    from polygen.inventory import inventory_files, normalise_mac
    from polygen.simulate import TreeTransport, boot
    from polygen.yamlnodes import Map, Scalar, Seq, load_file

    catalog = Catalog()
    try:
        files = inventory_files(inventory)
    except PolygenError:
        return None
    for f in files:
        doc, _problems = load_file(f)
        phones = doc.get("phones") if isinstance(doc, Map) else None
        if not isinstance(phones, Seq):
            continue
        for entry in phones:
            if not isinstance(entry, Map):
                continue
            mac, model = entry.get("mac"), entry.get("model")
            if not (isinstance(mac, Scalar) and isinstance(model, Scalar)):
                continue
            norm, found = normalise_mac(mac.text), catalog.find(model.text)
            if norm is None or found is None or not (out / f"{norm}-phone.cfg").is_file():
                continue
            try:
                report = boot(TreeTransport(out), norm, found.user_agent)
                missing = any(r.note == "firmware" and not r.ok() for r in report.requests)
            except (OSError, ValueError):  # a build being swapped or damaged: the flag does no harm
                missing = True
            return ExamplePhone(":".join(norm[i:i + 2] for i in range(0, 12, 2)), model.text, missing)
        return None
    return None


def url_for(host: str, port: int) -> str:
    """The URL to reach a server listening on ``host`` from this machine."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def next_steps(*, host: str, port: int, out: Path, db: Path | str, inventory: Path, watch: bool,
               prog: str | None = None, cwd: Path | None = None) -> str:
    """The block ``polygen serve`` prints after ``listening on`` when it serves ``out`` itself."""
    cwd = Path.cwd() if cwd is None else cwd
    prog = program(cwd=cwd) if prog is None else prog
    url = url_for(host, port)
    if (out / ".htpasswd").is_file():  # provisioning auth: the phone needs the credentials too
        url = url.replace("http://", "http://USER:PASSWORD@", 1)
    phone = example_phone(inventory, out)
    if phone is None:
        simulate = f"{prog} simulate --url {url} --mac MAC --model MODEL"
    else:
        simulate = f"{prog} simulate --url {url} --mac {phone.mac} --model {shlex.quote(phone.model)}"
        if phone.firmware_missing:
            simulate += " --allow-missing-firmware"
    shown = describe_db(db)  # a PostgreSQL URL without its password
    db_arg = "" if db == DEFAULT_DB else f" --db {shlex.quote(shown)}"
    logs = f"{prog} logs{db_arg}"
    status = f"{prog} status{db_arg}" + ("" if out == DEFAULT_OUT else f" -o {shlex.quote(str(out))}")
    other = port + 1 if port < 65535 else port - 1
    served = f"serves {out}/" + (f", rebuilt when {inventory}/ changes" if watch else "")
    return "\n".join([
        f"Next steps, in another shell in {cwd} (Ctrl-C here stops the server):",
        f"  the server:     {url_for(host, port)} {served}",
        f"  boot a phone:   {simulate}",
        f"  read its logs:  {logs}   (the phones' uploads are stored in {shown})",
        f"  see the fleet:  {status}   (every phone's state; --html status.html writes a page)",
        f"  another port:   PORT={other} make run, or --port {other}",
    ])
