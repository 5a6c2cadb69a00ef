"""An nginx config that serves out/ to phones (DESIGN.md "out/ layout").

The config is the packaged template ``polygen/data/nginx.conf.j2``; this module validates and
quotes what goes into it.

One file for ``/etc/nginx/conf.d/`` (Debian's nginx.conf includes that directory inside
``http {}``): http-context lines first (the User-Agent ``map``, the ``limit_req_zone``, the
sidecar ``upstream``), then one ``server {}``.

What the server does, and why:

* ``/000000000000.cfg`` is answered from ``bootstrap/<TOKEN>.cfg`` chosen by User-Agent through a
  ``map`` generated from ``out/ua-index.json`` (the sidecar's rule, ``polygen.useragent.dispatch``,
  so both answer alike), falling back to the default bootstrap. nginx needs
  no sidecar for this, so phones boot while the sidecar is down. Regenerate the config after a
  build adds a model (the default bootstrap carries every model's element anyway, docs/polycom.md §1).
* ``root`` is the ``out`` symlink itself, never its target: a build swaps the symlink atomically
  and nginx resolves it per request. ``open_file_cache`` stays off so no stale generation is
  served.
* Only the file names out/ can contain are served (an allow-list of regex locations); everything
  else, dotfiles (``.polygen-manifest.json``) and directory URLs included, is 404. No autoindex.
* ``contacts/<mac>-directory.xml`` is the phone's own directory when the build made one (a phone
  with speed dials), else ``contacts/000000000000-directory.xml``.
* ``PUT`` of ``[logs/]<mac>-{boot,app}.log`` goes to the sidecar with the URI rebuilt from the
  strict captures (never ``$request_uri``), 1 MiB at most; so does ``HEAD``, which phones send
  before an app-log upload and the sidecar answers. Other methods are refused (403), so
  uploaded logs are never readable over HTTP.
* The phones' override files, ``overrides/<mac>-{phone,web}.cfg`` (PUT when a user changes a
  setting, GET and HEAD at boot), go to the sidecar the same way, 64 KiB at most: it keeps them
  outside out/ and answers them as ``site.overrides`` says (polygen.overrides). A ``PUT`` of the
  generated ``<mac>-phone.cfg`` at the root is refused (403).
* Guessing (MACs, and passwords with auth) is slowed by the **sidecar's miss limiter**, the same
  bucket per client address that ``polygen serve --miss-limit`` keeps (SECURITY.md), so nginx
  and the sidecar allow exactly the same guess rate. nginx's own ``limit_req`` cannot do it: it
  counts every request it checks, so it cannot refuse a held-back client's hits without also
  counting the hits of phones that boot together behind one address. Instead, before serving
  a private file nginx asks the sidecar (``auth_request``): 204 goes on, 429 is passed on with
  its ``Retry-After``. Its 404s (a name the build could have written: phone files, site files,
  directories) and 401s are answered by the sidecar, which takes a token for each 404 and each
  401 that carried credentials. A phone that exists and gives the right password is therefore
  never refused, however many boot at once; only an address that has guessed gets 429, for
  everything private, until tokens come back. Names nginx never serves are a plain 404, and
  uploads go to the sidecar anyway.
* While the sidecar is down (or answers anything else), nginx serves the private files as if
  allowed, answers its 404s and 401s itself and counts them in its own ``limit_req`` zone at the
  same rate (``miss_limit``); 429 then goes only to the failures themselves.
* HTTP basic auth when the build made ``out/.htpasswd`` (``site.provisioning_auth``): the
  user file is named through the ``out`` symlink, and nginx reads it on every request, so a
  rebuild's rotation (new user, previous users kept for the overlap) takes effect without a
  reload. ``000000000000.cfg``, ``bootstrap/`` and ``firmware/`` stay open: a phone fetches its
  bootstrap and firmware before it has credentials (they carry none; a factory phone gets its
  first credentials from ``user:password@`` in the DHCP URL). Everything else, log uploads
  included, needs them. ``auth_file`` names another user file; ``auth=False`` turns auth off.
* Optional TLS (``listen ... ssl``).
* Optional mutual TLS (``client_ca``): nginx verifies the phone's factory device certificate
  against the CA file (Poly's root and intermediate CAs; chains up to ``VERIFY_DEPTH``). The MAC
  is read from the certificate's subject CN: 12 hex digits in either case, optionally as pairs
  separated by ``:`` or ``-``, and must be the CN's whole value. Per-phone names
  (``<mac>-phone.cfg``, ``contacts/<mac>-directory.xml``, ``[logs/]<mac>-{boot,app}.log``) are
  403 unless that MAC equals the one in the name (compared case-insensitively: a PCRE
  back-reference in a ``~*`` map); the site files and the shared directory need a verified
  certificate only. ``client_verify="on"`` makes nginx itself refuse (400) every request without
  a valid certificate; ``"optional"`` still gives phones without one the bootstraps and firmware
  (public anyway) and nothing else. A certificate from another CA is a 400 in both modes.
  The checks are ``if (...) { return 403; }``, the one safe use of ``if`` in a location; they run
  in the rewrite phase, before basic auth and the sidecar's guard.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from importlib import resources
from pathlib import Path

from polygen import __version__, htpasswd, overrides
from polygen.accesslog import LOG_FORMAT, LOG_FORMAT_NAME
from polygen.errors import PolygenError
from polygen.sidecar.guard import GUARD_PATH, MISS_PATH, UNAUTHORIZED_PATH
from polygen.useragent import TOKEN_RE, dispatch_pattern

log = logging.getLogger("polygen.nginx")

TEMPLATE = "nginx.conf.j2"
UA_INDEX = "ua-index.json"
DEFAULT_BOOTSTRAP = "000000000000.cfg"
UPSTREAM = "polygen_sidecar"
ZONE = "polygen"
MISS_LIMIT = 20  # the sidecar's default --miss-limit (polygen.sidecar.app.DEFAULT_MISS_LIMIT)

_BOOTSTRAP_RE = re.compile(r"^bootstrap/[A-Za-z0-9_][A-Za-z0-9_.-]*\.cfg$")
_LISTEN_RE = re.compile(r"^(?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?[0-9]{1,5}$")
_HOSTPORT_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")
_SERVER_NAME_RE = re.compile(r"^(?:_|[A-Za-z0-9*~^.-][A-Za-z0-9*.-]*)$")
# A path is written inside double quotes; nginx would still expand "$name" in it and has no
# escape for "$", so refuse the characters that cannot be written safely.
_UNSAFE_PATH = re.compile(r'["\\$\x00-\x1f\x7f]')

# Allow-list of what out/ may contain (DESIGN.md); written in double quotes because of the braces. Each segment must start with an
# alphanumeric or "_", which also keeps "." and ".." out.
_SEG = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"
PHONE_CFG_RE = r"^/(?<polygen_mac>[0-9a-f]{12})-phone\.cfg$"
SITE_CFG_RE = r"^/site(?:-[A-Za-z0-9_]+)?\.cfg$"
BOOTSTRAP_RE = rf"^/bootstrap/{_SEG}\.cfg$"
FIRMWARE_RE = rf"^/firmware(?:/{_SEG})+$"
CONTACTS_RE = r"^/contacts/(?<polygen_mac>[0-9a-f]{12})-directory\.xml$"
SHARED_DIRECTORY = "/contacts/000000000000-directory.xml"

# Mutual TLS. $ssl_client_s_dn is RFC 2253 (nginx >= 1.11.6), e.g. "CN=0004f2a1b2c3,O=Example",
# a comma inside a value escaped as "\,". CN must start the DN or follow an unescaped comma (\x5c
# is the backslash), and the MAC must be its whole value (then the end, "," or a "+" RDN).
CLIENT_VERIFY_MODES = ("on", "optional")
VERIFY_DEPTH = 3
_HEX2 = "[0-9A-Fa-f]{2}"
CERT_MAC_RE = (
    r"(?:^|(?<!\x5c),)CN="
    + "[:-]?".join(f"(?<polygen_cm{i}>{_HEX2})" for i in range(1, 7))
    + r"(?:$|,|\+)"
)
CERT_MAC_VALUE = "".join(f"$polygen_cm{i}" for i in range(1, 7))
LOG_RE = r"^/(?:logs/)?(?<polygen_mac>[0-9a-f]{12})-(?<polygen_log>boot|app)\.log$"
OVERRIDES_RE = rf"^/{overrides.DIRECTORY}/(?<polygen_mac>[0-9a-f]{{12}})-(?<polygen_override>phone|web)\.cfg$"


def read_ua_index(out_dir: Path) -> dict[str, str]:
    """Return ``{ua_token: "bootstrap/<TOKEN>.cfg"}`` from ``out/ua-index.json``, validated."""
    path = Path(out_dir) / UA_INDEX
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolygenError(
            f"{path} not found: run `polygen build` first (nginx serves the built out/ tree)"
        ) from None
    except OSError as exc:
        raise PolygenError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        index = json.loads(raw)
    except ValueError as exc:
        raise PolygenError(f"{path}: not valid JSON ({exc}); rebuild with `polygen build`") from exc
    if not isinstance(index, dict) or index.get("version") != 1:
        raise PolygenError(f"{path}: unsupported format (expected version 1); rebuild with `polygen build`")
    if index.get("default", DEFAULT_BOOTSTRAP) != DEFAULT_BOOTSTRAP:
        raise PolygenError(f"{path}: default must be {DEFAULT_BOOTSTRAP!r}, not {index.get('default')!r}")
    models = index.get("models", {})
    if not isinstance(models, dict):
        raise PolygenError(f"{path}: 'models' must be an object of UA token -> bootstrap path")
    for token, target in models.items():
        if not TOKEN_RE.fullmatch(str(token)):
            raise PolygenError(f"{path}: invalid User-Agent model token {token!r}")
        if not isinstance(target, str) or not _BOOTSTRAP_RE.fullmatch(target):
            raise PolygenError(
                f"{path}: models.{token}: expected a path like bootstrap/<TOKEN>.cfg, got {target!r}"
            )
    return dict(sorted(models.items()))


def _quote(value: str, what: str) -> str:
    if _UNSAFE_PATH.search(value):
        raise PolygenError(f"{what} {value!r} contains a character nginx cannot quote (\", \\, $ or a control character)")
    return f'"{value}"'


def _abspath(path: Path | str) -> str:
    # abspath normalises without resolving symlinks: `out` must stay the symlink (DESIGN.md).
    return os.path.abspath(os.fspath(path))


def _quoted_path(path: Path | str | None, what: str) -> str | None:
    return None if path is None else _quote(_abspath(path), what)


def render_nginx(
    out_dir: Path,
    *,
    server_name: str = "_",
    listen: str = "80",
    sidecar: str = "127.0.0.1:8080",
    auth_file: Path | None = None,
    auth: bool = True,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    client_ca: Path | None = None,
    client_verify: str | None = None,
    miss_limit: int = MISS_LIMIT,
    access_log: Path | None = None,
) -> str:
    """Render the nginx config (http-context lines + one ``server {}``) for ``out_dir``.

    ``access_log``: a file where nginx logs every request of this server as one JSON object a
    line (``polygen.accesslog``), for ``polygen serve --nginx-log``.

    Basic auth: ``auth_file`` if given, else ``out_dir/.htpasswd`` when the build wrote one (named
    through the symlink); ``auth=False`` disables it.

    Mutual TLS: ``client_ca`` (PEM file of the CAs that sign the phones' device certificates,
    needs TLS) with ``client_verify`` ``"on"`` (the default) or ``"optional"``.

    ``miss_limit``: 404s and wrong passwords per client address per minute that nginx allows on
    its own while the sidecar is down (the sidecar's ``--miss-limit`` applies otherwise); 0: none.

    Raises PolygenError if out/ has not been built or an argument cannot be written safely.
    """
    models = read_ua_index(out_dir)
    if not auth and auth_file is not None:
        raise PolygenError("--no-auth and --auth-file contradict each other: give one of them")
    if auth and auth_file is None and (Path(out_dir) / htpasswd.FILENAME).is_file():
        auth_file = Path(out_dir) / htpasswd.FILENAME
    listen = str(listen).strip()
    if not _LISTEN_RE.fullmatch(listen):
        raise PolygenError(f"invalid --listen {listen!r}: expected PORT or ADDRESS:PORT, e.g. 80 or 192.0.2.1:80")
    if not _HOSTPORT_RE.fullmatch(str(sidecar)):
        raise PolygenError(f"invalid --sidecar {sidecar!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    names = str(server_name).split()
    if not names or not all(_SERVER_NAME_RE.fullmatch(n) for n in names):
        raise PolygenError(f"invalid --server-name {server_name!r}: expected host names separated by spaces, or _")
    if isinstance(miss_limit, bool) or not isinstance(miss_limit, int) or miss_limit < 0:
        raise PolygenError(f"invalid --miss-limit {miss_limit!r}: expected 0 (no limit) or a positive number")
    if (tls_cert is None) != (tls_key is None):
        raise PolygenError("TLS needs both --tls-cert and --tls-key")
    if client_ca is None and client_verify is not None:
        raise PolygenError("--client-verify needs --client-ca (the CA file that signs the phones' certificates)")
    if client_ca is not None:
        if tls_cert is None:
            raise PolygenError("mutual TLS (--client-ca) needs TLS: give --tls-cert and --tls-key too")
        client_verify = client_verify or "on"
        if client_verify not in CLIENT_VERIFY_MODES:
            raise PolygenError(f"invalid --client-verify {client_verify!r}: expected on or optional")
    root = _quote(_abspath(out_dir), "out directory")
    access_log = _quoted_path(access_log, "access log")
    for label, p in (("auth file", auth_file), ("TLS certificate", tls_cert), ("TLS key", tls_key),
                     ("client CA file", client_ca)):
        if p is not None and not Path(p).exists():
            log.warning("%s %s does not exist here; nginx -t will fail unless it exists on the server", label, p)

    return _template().render(
        version=__version__,
        out_dir=_abspath(out_dir),
        ua_index=UA_INDEX,
        default_bootstrap=DEFAULT_BOOTSTRAP,
        # the rule the sidecar applies too (polygen.useragent.dispatch): regexes are tried in order
        ua_map=[(dispatch_pattern(token), target) for token, target in models.items()],
        miss_limit=miss_limit,
        zone=ZONE,
        upstream=UPSTREAM,
        sidecar=sidecar,
        listen=listen,
        server_names=" ".join(names),
        root=root,
        tls_cert=_quoted_path(tls_cert, "TLS certificate"),
        tls_key=_quoted_path(tls_key, "TLS key"),
        client_ca=_quoted_path(client_ca, "client CA file"),
        client_verify=client_verify,
        verify_depth=VERIFY_DEPTH,
        cert_mac_re=CERT_MAC_RE,
        cert_mac_value=CERT_MAC_VALUE,
        auth_file=_quoted_path(auth_file, "auth file"),
        phone_cfg_re=PHONE_CFG_RE,
        site_cfg_re=SITE_CFG_RE,
        bootstrap_re=BOOTSTRAP_RE,
        firmware_re=FIRMWARE_RE,
        contacts_re=CONTACTS_RE,
        shared_directory=SHARED_DIRECTORY,
        log_re=LOG_RE,
        overrides_re=OVERRIDES_RE,
        overrides_directory=overrides.DIRECTORY,
        overrides_max_kib=overrides.MAX_BYTES // 1024,
        access_log=access_log,
        log_format=LOG_FORMAT,
        log_format_name=LOG_FORMAT_NAME,
        # "~" would start a regex in the map of logged server names
        logged_name="\\" + names[0] if names[0].startswith("~") else names[0],
        guard_path=GUARD_PATH,
        miss_path=MISS_PATH,
        unauthorized_path=UNAUTHORIZED_PATH,
        sidecar_errors=SIDECAR_ERRORS,
    )


# The sidecar's answers nginx relays; any other one (none at all, an error, an older sidecar
# without these names) makes nginx do without it: phones must boot while it is down.
SIDECAR_ERRORS = ("400", "401", "403", "404", "405", "500", "501", "502", "503", "504")


@functools.cache
def _template():
    """The packaged template (polygen/data/nginx.conf.j2), loaded once. Nothing in it is escaped:
    every value is validated and quoted before it is rendered."""
    import jinja2

    env = jinja2.Environment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    return env.from_string((resources.files("polygen") / "data" / TEMPLATE).read_text(encoding="utf-8"))
