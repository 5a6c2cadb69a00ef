"""An nginx config that serves out/ to phones (DESIGN.md "out/ layout").

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

import json
import logging
import os
import re
from pathlib import Path

from polygen import __version__, htpasswd, overrides
from polygen.errors import PolygenError
from polygen.useragent import TOKEN_RE, dispatch_pattern
from polygen.sidecar.guard import GUARD_PATH, MISS_PATH, UNAUTHORIZED_PATH

log = logging.getLogger("polygen.nginx")

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
    log_http = "" if access_log is None else _access_log(access_log, names[0])
    for label, p in (("auth file", auth_file), ("TLS certificate", tls_cert), ("TLS key", tls_key),
                     ("client CA file", client_ca)):
        if p is not None and not Path(p).exists():
            log.warning("%s %s does not exist here; nginx -t will fail unless it exists on the server", label, p)

    # the rule the sidecar applies too (polygen.useragent.dispatch): regexes are tried in order
    ua_lines = "".join(
        f'    "~*{dispatch_pattern(token)}" /{target};\n' for token, target in models.items()
    )
    ssl = " ssl" if tls_cert else ""
    tls_lines = ""
    if tls_cert:
        tls_lines = (
            f"    ssl_certificate {_quote(_abspath(tls_cert), 'TLS certificate')};\n"
            f"    ssl_certificate_key {_quote(_abspath(tls_key), 'TLS key')};\n"
            "    # SoundPoint IP phones on SIP 3.x may only speak TLS 1.0/1.1; UC 5+ handles TLS 1.2.\n"
        )
    mtls_http = mtls_lines = ""
    mac_check = verified = ""  # per-phone names; site files and the shared directory
    if client_ca is not None:
        mtls_http = f"""
# Mutual TLS: the MAC in the phone's device certificate (subject CN: 12 hex digits, either case,
# or pairs separated by ":" or "-"); empty when there is no certificate or no MAC in its CN.
map $ssl_client_s_dn $polygen_cert_mac {{
    default "";
    "~{CERT_MAC_RE}" {CERT_MAC_VALUE};
}}

# 1 when the certificate is verified and its MAC is the one in the requested name. The URI's MAC
# is lower-case (the locations accept nothing else); ~* makes the back-reference \\1 ignore case.
map "$ssl_client_verify:$polygen_cert_mac:$polygen_mac" $polygen_mac_ok {{
    default 0;
    "~*^SUCCESS:([0-9a-f]{{12}}):\\1$" 1;
}}
"""
        mode_note = (
            "every request needs a certificate signed by it (400 otherwise)" if client_verify == "on" else
            "without a certificate a phone gets the bootstraps and firmware only (403 otherwise)"
        )
        mtls_lines = (
            "    # Mutual TLS: phones present their factory device certificate, verified against this CA\n"
            f"    # file; {mode_note}.\n"
            "    # A certificate from another CA is refused (400).\n"
            f"    ssl_client_certificate {_quote(_abspath(client_ca), 'client CA file')};\n"
            f"    ssl_verify_client {client_verify};\n"
            f"    ssl_verify_depth {VERIFY_DEPTH};\n"
        )
        mac_check = "        if ($polygen_mac_ok != 1) { return 403; }   # the certificate's MAC only\n"
        verified = "        if ($ssl_client_verify != SUCCESS) { return 403; }   # any verified phone\n"
    auth_lines = ""
    if auth_file is not None:
        auth_lines = (
            "    # HTTP basic auth for everything but the bootstraps and firmware (open below). The site\n"
            "    # files carry the matching device.prov.user/password; the user file is re-read on every\n"
            "    # request, so a rebuild that rotates the credentials needs no reload.\n"
            '    auth_basic "polygen";\n'
            f"    auth_basic_user_file {_quote(_abspath(auth_file), 'auth file')};\n"
        )
    static = "        limit_except GET { deny all; }   # GET and HEAD only\n"
    guard_http, guard_server, guarded, refused = _guard(auth_file is not None, miss_limit)
    # fetched before the phone has credentials; they hold none
    open_ = "        auth_basic off;\n" if auth_file is not None else ""

    # With mutual TLS the shared directory itself needs a verified certificate, not a MAC.
    shared_dir = "" if client_ca is None else (
        f"\n    # Asked for by name only if a phone's own directory failed: no MAC to match.\n"
        f"    location = {SHARED_DIRECTORY} {{\n{verified}{static}{guarded}    }}\n"
    )

    return f"""\
# polygen {__version__}: nginx config serving {_abspath(out_dir)} to Polycom/Poly phones.
# Generated by `polygen nginx`; regenerate it after `polygen build` adds a phone model or
# turns site.provisioning_auth on or off.
# Install: save as /etc/nginx/conf.d/polygen.conf (Debian's nginx.conf includes conf.d/*.conf
# inside http {{}}, where the map/limit_req_zone/upstream lines below must be), then
# `nginx -t && systemctl reload nginx`. If this server is not the only one on its port,
# give it --server-name or its own --listen address: nginx hands requests whose Host matches
# no server_name to the port's default server (Debian's sites-enabled/default).
# The nginx workers (www-data) must be able to read out/, including <mac>-phone.cfg (0640).
# One polygen site per nginx: the maps, zone polygen and upstream polygen_sidecar are
# global to the http context.

# User-Agent model token -> bootstrap, from out/{UA_INDEX}; unknown phones get the default.
map $http_user_agent $polygen_bootstrap {{
    default /{DEFAULT_BOOTSTRAP};
{ua_lines}}}
{guard_http}{log_http}
upstream {UPSTREAM} {{
    server {sidecar};
}}
{mtls_http}
server {{
    listen {listen}{ssl};
    server_name {" ".join(names)};
{tls_lines}{mtls_lines}{auth_lines}
    # `out` is a symlink swapped atomically by each build: use the link, resolve per request.
    root {root};
    open_file_cache off;
    autoindex off;
    server_tokens off;
    client_max_body_size 1m;

    # Anything not listed below (dotfiles, directories, <mac>.cfg) is not served.
    location / {{
        return 404;
    }}

    # The bootstrap chosen by User-Agent, even while the sidecar is down.
    location = /{DEFAULT_BOOTSTRAP} {{
{static}{open_}        try_files $polygen_bootstrap /{DEFAULT_BOOTSTRAP} =404;
    }}

    # Regex locations are tried in order: dotfiles first (.polygen-manifest.json).
    location ~ /\\. {{
        return 404;
    }}

    location ~ "{PHONE_CFG_RE}" {{
{mac_check}{static}{guarded}    }}

    location ~ "{SITE_CFG_RE}" {{
{verified}{static}{guarded}    }}

    location ~ "{BOOTSTRAP_RE}" {{
{static}{open_}    }}

    location ~ "{FIRMWARE_RE}" {{
{static}{open_}    }}

    # A phone's own directory if the build made one, else the shared one (DESIGN.md); the
    # phone's own upload is refused.
    location ~ "{CONTACTS_RE}" {{
{mac_check}{static}{guarded}        try_files $uri {SHARED_DIRECTORY} =404;
    }}
{shared_dir}
    # Log uploads go to the sidecar (which counts their misses itself); the URI is rebuilt from
    # the strict captures.
    location ~ "{LOG_RE}" {{
        # PUT uploads; HEAD (sent before an app-log upload) is the sidecar's to answer too.
        limit_except PUT HEAD {{ deny all; }}
{mac_check}{refused}        client_max_body_size 1m;
{_to_sidecar("/logs/$polygen_mac-$polygen_log.log")}    }}

    # The phones' override files: uploaded when a user changes a setting, fetched at boot. The
    # sidecar keeps them outside out/ and answers them as site.overrides says.
    location ~ "{OVERRIDES_RE}" {{
        limit_except GET PUT {{ deny all; }}   # GET covers HEAD
{mac_check}{refused}        client_max_body_size {overrides.MAX_BYTES // 1024}k;
{_to_sidecar(f"/{overrides.DIRECTORY}/$polygen_mac-$polygen_override.cfg")}    }}
{guard_server}}}
"""


def _access_log(path: Path, server_name: str) -> str:
    """http-context lines: this server's requests as JSON lines in ``path`` (module docstring)."""
    from polygen.accesslog import LOG_FORMAT, LOG_FORMAT_NAME

    key = "\\" + server_name if server_name.startswith("~") else server_name  # "~" would start a regex
    return (
        "\n# Every request to this server as one JSON line, for `polygen serve --nginx-log` (which phones\n"
        "# asked for what, and the answer). An access_log here, beside nginx.conf's own, adds to it.\n"
        f"log_format {LOG_FORMAT_NAME} escape=json '{LOG_FORMAT}';\n"
        "map $server_name $polygen_logged {\n"
        "    default 0;\n"
        f'    "{key}" 1;\n'
        "}\n"
        f"access_log {_quote(_abspath(path), 'access log')} {LOG_FORMAT_NAME} if=$polygen_logged;\n"
    )


def _to_sidecar(uri: str) -> str:
    """Location lines that hand the request, body and all, to the sidecar as ``uri``."""
    return (
        f"        proxy_pass http://{UPSTREAM}{uri};\n"
        "        proxy_http_version 1.1;\n"
        "        proxy_set_header Host $host;\n"
        "        proxy_set_header X-Real-IP $remote_addr;\n"
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
    )


# The sidecar's answers nginx relays; any other one (none at all, an error, an older sidecar
# without these names) makes nginx do without it: phones must boot while it is down.
_ELSE = "400 401 403 404 405 500 501 502 503 504"


def _ask_sidecar(path: str, *, relay: str, fallback: str, credentials: bool = False) -> str:
    """Location lines that send a bodiless GET ``path`` to the sidecar, with the client's address.

    The sidecar's 204 and the statuses in ``relay`` pass; any other answer goes to ``fallback``.
    """
    others = " ".join(code for code in _ELSE.split() if code not in relay.split())
    return (
        f"        rewrite ^ {path} break;\n"
        f"        proxy_pass http://{UPSTREAM};\n"
        "        proxy_method GET;\n"
        "        proxy_pass_request_body off;\n"
        '        proxy_set_header Content-Length "";\n'
        + ("" if credentials else '        proxy_set_header Authorization "";\n')
        + "        proxy_set_header X-Real-IP $remote_addr;\n"
        "        proxy_connect_timeout 2s;\n"
        "        proxy_read_timeout 10s;\n"
        "        proxy_intercept_errors on;\n"
        f"        error_page {others} = {fallback};\n"
    )


def _guard(auth: bool, miss_limit: int) -> tuple[str, str, str, str]:
    """The guessing limit (module docstring): http-context lines, the server's guard locations,
    the lines of a guarded location, and the lines of the upload location (401s only)."""
    counted = miss_limit > 0
    http = ""
    if counted:
        http = (
            "\n# 404s and wrong passwords per client address that nginx allows by itself while the sidecar\n"
            "# is down (the sidecar's miss limiter counts them otherwise): the same rate, the same burst.\n"
            f"limit_req_zone $polygen_failure zone={ZONE}:10m rate={miss_limit}r/m;\n"
        )
        if auth:
            http += (
                "# A 401 without credentials (an HTTP client's first try) is not a guess.\n"
                "map $http_authorization $polygen_bad_credentials {\n"
                '    "" "";\n'
                "    default $binary_remote_addr;\n"
                "}\n"
            )
    local_limit = f"        limit_req zone={ZONE} burst={miss_limit - 1} nodelay;\n" if counted else ""
    unauthorized = "        error_page 401 = @polygen_unauthorized;\n" if auth else ""
    proxied = "        auth_basic off;\n" if auth else ""  # the sidecar answers, not a second 401
    guarded = (
        f"        auth_request {GUARD_PATH};   # the sidecar's miss limiter: held back? (below)\n"
        "        auth_request_set $polygen_guard $upstream_status;\n"
        "        auth_request_set $polygen_retry_after $upstream_http_retry_after;\n"
        "        error_page 403 = @polygen_forbidden;\n"
        "        error_page 404 = @polygen_miss;\n"
        f"{unauthorized}"
    )
    server = f"""
    # The guessing limit (SECURITY.md): nginx asks the sidecar before serving a private file
    # and lets it answer the 404s and 401s, so both count in the sidecar's one bucket per client.
    # Only with recursive error pages can a sidecar that is down hand them back to nginx.
    recursive_error_pages on;
    limit_req_status 429;

    location = {GUARD_PATH} {{
        internal;
{_ask_sidecar(GUARD_PATH, relay="", fallback="@polygen_guard_open")}        error_page 429 = @polygen_guard_held;
    }}

    # auth_request passes 2xx and refuses 403: a held-back client becomes 429 below.
    location @polygen_guard_held {{
        return 403;
    }}

    location @polygen_guard_open {{
        return 204;
    }}

    location @polygen_forbidden {{
        if ($polygen_guard = 429) {{
            add_header Retry-After $polygen_retry_after always;
            return 429;
        }}
        return 403;
    }}

    # A name the build could have written is missing: the sidecar answers 404 and takes a token.
    location @polygen_miss {{
{proxied}{_ask_sidecar(MISS_PATH, relay="404", fallback="@polygen_miss_local")}    }}

    location @polygen_miss_local {{
        set $polygen_failure $binary_remote_addr;
{local_limit}        try_files "" =404;
    }}
"""
    if auth:
        server += f"""
    # Credentials missing or wrong: the sidecar answers 401 and takes a token if there were some.
    location @polygen_unauthorized {{
{proxied}        proxy_hide_header WWW-Authenticate;   # nginx's own is already set
{_ask_sidecar(UNAUTHORIZED_PATH, relay="401", fallback="@polygen_unauthorized_local", credentials=True)}    }}

    location @polygen_unauthorized_local {{
        set $polygen_failure $polygen_bad_credentials;
{local_limit}        auth_basic off;
        try_files "" =401;
    }}
"""
    return http, server, guarded, unauthorized
