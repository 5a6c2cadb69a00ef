"""Who can read the phones' SIP passwords: the warning ``check``, ``build`` and ``serve`` give
while provisioning auth is off, and the refusal of ``serve`` to listen beyond loopback without it.

Without ``site.provisioning_auth`` any host that knows a phone's MAC (printed on its box, seen in
ARP or LLDP) can fetch ``<mac>-phone.cfg`` and read its SIP passwords.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from polygen import htpasswd
from polygen.errors import InventoryError, PolygenError

INSECURE_ENVVAR = "POLYGEN_SERVE_INSECURE_NO_AUTH"
RISK = ("anyone who can reach the server and knows a phone's MAC address (printed on its box, seen "
        "on the network) can download its config, SIP passwords included")


def no_auth_warning(site_file: str) -> str:
    return (f"no provisioning auth: {RISK}; add site.provisioning_auth (a user and a password) to "
            f"{site_file} (README: Provisioning auth)")


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address ("" means every interface)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # the server cannot listen there either; no reason to call it private
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).partition("%")[0]).is_loopback for i in infos)


def serve_check(opts, host: str, watch: bool, insecure: bool, load_inventory: Callable) -> list[str]:
    """The warnings for ``polygen serve`` (without their ``warning: ``); raises PolygenError when it must not listen on ``host``.

    Auth counts as on when the inventory has it and the files served will too: the current
    build has ``.htpasswd``, or ``--watch`` is about to build it. A broken inventory leaves the
    current build to decide (it is what is served, and unattended rebuilds cannot take its auth away).
    ``load_inventory(opts)`` is ``polygen.build.load_inventory`` (build imports this module).
    """
    from polygen.write import current_generation

    gen = current_generation(Path(opts.out))
    built = gen is not None and (gen / htpasswd.FILENAME).is_file()
    try:
        inv = load_inventory(opts)
    except InventoryError:
        inv = None
    warnings, why = [], None
    if inv is None:
        why = None if built else f"Fix {opts.inventory} (polygen check), add site.provisioning_auth and build"
    elif inv.site.auth is None:
        warnings.append(no_auth_warning(inv.site_file))
        why = f"Add site.provisioning_auth to {inv.site_file} and build"
    elif not (built or watch):
        why = f"The build in {opts.out} predates site.provisioning_auth: run `polygen build` first"
    if why is not None and not insecure and not is_loopback(host):
        raise PolygenError(f"refusing to serve on {host or 'every interface'} without provisioning auth: "
                           f"{RISK}. {why}, or pass --insecure-no-auth ({INSECURE_ENVVAR}=1) to serve "
                           "without it")
    return warnings
