"""What stands between a client and the files: HTTP basic auth and rate limits (SECURITY.md).

* **Public names.** ``GET``/``HEAD`` of ``[/<prefix>]/000000000000.cfg``, ``/bootstrap/*`` and
  ``/firmware/*`` (and ``/healthz``): a phone fetches them before it has credentials, and they
  carry no secret. Everything else is *private*.
* **Auth.** When the current generation has ``.htpasswd`` (the build writes it with
  ``site.provisioning_auth``), a private request needs an ``Authorization: Basic`` header that
  matches one of its users, the current or a previous one (rotation overlap); else 401 with
  ``WWW-Authenticate: Basic realm="polygen"``. The header and the password are never logged.
* **Misses.** Each client address has a token bucket of ``miss_limit`` tokens, refilled over
  ``miss_window`` seconds; a 404, or a 401 for a wrong password, takes one. With the bucket empty,
  every private request from that address gets 429 before anything is looked up, so a MAC
  scanner learns nothing more, hits included, until tokens come back. Public names are never held
  back (a phone behind a busy NAT still boots), and a 401 without credentials takes no token (an
  HTTP client's first try). Nor does a 404 for ``<mac>.cfg``: every phone asks for it first at
  each boot, and it is never generated (DESIGN.md), so the answer tells nothing about the MAC;
  nor one for a public name (a phone asks for its split image ``<part>.sip.ld`` before the
  combined ``sip.ld`` at each boot; nginx does not count those either). A handler that knows
  better decides for its own 404s (``keys.MISS_FREE``): a known phone's override file it never
  uploaded is free, an unknown MAC's is a guess.
* **Uploads** of each MAC have a bucket of ``upload_limit`` tokens per ``upload_window``, and one
  of ``line_limit`` stored log lines per ``line_window``: an upload takes (at most
  ``max_upload_lines``) tokens before it is stored and gives back what it did not store. With
  that bucket empty, uploads are 429 before their body is read.

The client address is ``request.remote``, except that a request from one of ``real_ip_from``
(nginx in front, DESIGN.md) is judged by its ``X-Real-IP`` header. IPv6 clients are grouped by
their /64, the unit one host can pick addresses from.

**nginx in front** (``polygen nginx``) keeps no count of its own while the sidecar runs: before it
serves a private file it asks ``GET /_polygen/guard`` (204, or 429 while the client is held
back), and it hands its 404s and 401s to ``/_polygen/miss`` and ``/_polygen/unauthorized``, which
answer them here and take the tokens. So one bucket per client counts the misses of both servers.
These three names serve nothing and tell a client only what it would learn anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from polygen import htpasswd
from polygen.sidecar import keys
from polygen.sidecar.responses import NOT_FOUND, error_response

log = logging.getLogger("polygen.sidecar")

REALM = 'Basic realm="polygen"'
# Public names, judged on the raw path (check_raw_path refuses '..', '%' and the like before
# anything is served, so a match here never reaches a private file).
_PUBLIC_RE = re.compile(
    r"/(?:[A-Za-z0-9._-]+/)*000000000000\.cfg|/(?:bootstrap|firmware)/[A-Za-z0-9._/-]+", re.ASCII
)


# Asked for by every phone at every boot and never generated: their 404s are no information.
# <mac>.cfg, <mac>-license.cfg (000000000000-license.cfg too), the call list <mac>-calls.xml
# (docs/polycom.md §2, observed boot sequences), and the web-UI override <mac>-web.cfg at the
# root, where a phone still on a bootstrap from before OVERRIDES_DIRECTORY="overrides" asks.
_ALWAYS_MISSING_RE = re.compile(
    r"(?:/[A-Za-z0-9._-]+)*/[0-9A-Fa-f]{12}(?:(?:-web|-license)?\.cfg|-calls\.xml)", re.ASCII
)

# What nginx in front asks (module docstring; polygen.nginx writes these names into its config).
GUARD_PATH = "/_polygen/guard"
MISS_PATH = "/_polygen/miss"
UNAUTHORIZED_PATH = "/_polygen/unauthorized"


def is_public(method: str, raw_path: str) -> bool:
    return method in ("GET", "HEAD") and (raw_path == "/healthz" or bool(_PUBLIC_RE.fullmatch(raw_path)))


class TokenBuckets:
    """One token bucket per key: ``capacity`` tokens, refilled at ``capacity / window`` per second.

    ``capacity == 0`` turns the limit off. At most ``max_keys`` buckets are kept: when a new key
    comes and there is no room, full buckets (which carry no state) are dropped first, then the
    least recently used ones, so an attacker with many addresses costs bounded memory.
    """

    def __init__(self, capacity: int, window: float, *, max_keys: int = 65536,
                 clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.rate = capacity / window if capacity else 0.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def level(self, key: str) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, 0.0))
        if tokens >= self.capacity:
            return float(self.capacity)
        return min(float(self.capacity), tokens + (self.clock() - at) * self.rate)

    def allowed(self, key: str) -> bool:
        """Is there a token left (without taking it)?"""
        return not self.capacity or self.level(key) >= 1.0

    def take(self, key: str) -> bool:
        """Take a token if there is one; False (and nothing taken) when the bucket is empty."""
        return self.take_up_to(key, 1) == 1

    def take_up_to(self, key: str, n: int) -> int:
        """Take as many whole tokens as there are, at most ``n``; how many were taken."""
        if not self.capacity:
            return n
        tokens = self.level(key)
        got = min(n, int(tokens))
        if got <= 0:
            return 0
        self._buckets.pop(key, None)  # re-insert: the dict's order is least recently used first
        if len(self._buckets) >= self.max_keys:
            self._evict()
        self._buckets[key] = (tokens - got, self.clock())
        return got

    def give_back(self, key: str, n: int) -> None:
        """Return ``n`` tokens taken but not used (never above the capacity)."""
        if not self.capacity or n <= 0 or key not in self._buckets:
            return
        tokens = min(float(self.capacity), self.level(key) + n)
        self._buckets[key] = (tokens, self.clock())

    def retry_after(self, key: str) -> int:
        """Whole seconds until the next token."""
        if not self.capacity:
            return 0
        return max(1, math.ceil((1.0 - self.level(key)) / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self) -> None:
        for key in [k for k in self._buckets if self.level(k) >= self.capacity]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # still full: drop the least recent tenth at once
            for key in list(self._buckets)[: max(1, self.max_keys // 10)]:
                del self._buckets[key]


class Guard:
    """The sidecar's limits (one per app, used from the event loop thread only)."""

    def __init__(self, config):
        self.misses = TokenBuckets(config.miss_limit, config.miss_window)
        self.uploads = TokenBuckets(config.upload_limit, config.upload_window)
        self.lines = TokenBuckets(config.line_limit, config.line_window)
        self._writing: dict[str, tuple[asyncio.Lock, int]] = {}  # MAC -> (its lock, uploads holding or waiting)
        self.real_ip_from = frozenset(_ip_key(a) for a in config.real_ip_from)

    @contextlib.asynccontextmanager
    async def one_upload_at_a_time(self, mac: str):
        """Uploads of one MAC reach the database writers one after the other, so a MAC that floods
        has at most one upload queued ahead of every other phone's (and holds at most one of
        PostgreSQL's writers)."""
        lock, users = self._writing.get(mac) or (asyncio.Lock(), 0)
        self._writing[mac] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._writing[mac]
            if users == 1:
                del self._writing[mac]
            else:
                self._writing[mac] = (lock, users - 1)

    def address(self, request: web.Request) -> str | None:
        """The client's address as it is (``client`` groups IPv6 by /64), for sightings."""
        remote = request.remote or ""
        if _ip_key(remote) in self.real_ip_from:
            forwarded = request.headers.get("X-Real-IP", "").strip()
            if _ip_key(forwarded):
                return forwarded
        return remote or None

    def client(self, request: web.Request) -> str:
        remote = _ip_key(request.remote or "")
        if remote in self.real_ip_from:
            forwarded = _ip_key(request.headers.get("X-Real-IP", ""))
            if forwarded:
                return forwarded
        return remote or "unknown"


def _ip_key(text: str) -> str:
    """A canonical key for an address: the IPv4 address, or the IPv6 /64; '' if not an address."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip.is_loopback:
            return str(ip)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def note(request: web.Request, **fields) -> None:
    """Extra key=value fields for this request's access log line."""
    notes = request.get(keys.NOTES)
    if notes is None:
        notes = request[keys.NOTES] = {}
    notes.update(fields)


# ---------------------------------------------------------------------------- auth
class Htpasswd:
    """The users of ``<generation>/.htpasswd``, re-read when the file changes (a new generation)."""

    def __init__(self):
        self._cache: tuple[tuple, dict[str, str]] | None = None

    def users(self, gen: Path) -> dict[str, str] | None:
        """None when the generation has no ``.htpasswd`` (no auth); {} (nobody) when it is unreadable."""
        path = gen / htpasswd.FILENAME
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read %s: %s; refusing every private request", path, exc.strerror)
            return {}
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            users = htpasswd.parse(path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            log.error("cannot read %s: %s; refusing every private request", path, exc.strerror)
            return {}
        self._cache = (key, users)
        return users


def require_auth(request: web.Request, gen: Path) -> None:
    """401 unless the generation asks for no auth or the request carries a valid user."""
    users = request.app[keys.HTPASSWD].users(gen)
    if users is None:
        return
    header = request.headers.get("Authorization")
    # Only whether it matched goes to the log: never the header, the user name or the password.
    if header is not None and htpasswd.check_header(users, header):
        note(request, auth="ok")
        return
    note(request, auth="bad" if header is not None else "missing")
    raise web.HTTPUnauthorized(text="authentication required", headers={"WWW-Authenticate": REALM})


# ---------------------------------------------------------------------------- the middleware
def too_many(retry_after: int, message: str) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(text=message, headers={"Retry-After": str(retry_after)})


@web.middleware
async def guard_middleware(request: web.Request, handler):
    """The miss limiter around every request (inside it, errors are already JSON responses)."""
    guard = request.app[keys.GUARD]
    client = guard.client(request)
    public = is_public(request.method, request.raw_path)
    if not public and not guard.misses.allowed(client):
        note(request, limited="misses")
        retry = guard.misses.retry_after(client)
        return error_response(429, "too many requests: slow down", {"Retry-After": str(retry)})
    response = await handler(request)
    status = response.status
    free = request.get(keys.MISS_FREE)
    if free is None:
        free = public or bool(_ALWAYS_MISSING_RE.fullmatch(request.raw_path))
    if status == 404 and not free:
        guard.misses.take(client)
    elif status == 401 and request.get(keys.NOTES, {}).get("auth") == "bad":
        guard.misses.take(client)
    return response


# ---------------------------------------------------------------------------- nginx's questions
# The middleware does the work: it answers 429 before these handlers while the client is held
# back, and takes a token for the 404 and for a 401 with credentials.
async def handle_guard(request: web.Request) -> web.Response:
    """nginx may serve this client's private request."""
    return web.Response(status=204)


async def handle_miss(request: web.Request) -> web.Response:
    """nginx found no file for a name the build could have written."""
    raise web.HTTPNotFound(text=NOT_FOUND)


async def handle_unauthorized(request: web.Request) -> web.Response:
    """nginx refused the request's credentials (or it had none)."""
    note(request, auth="bad" if "Authorization" in request.headers else "missing")
    raise web.HTTPUnauthorized(text="authentication required", headers={"WWW-Authenticate": REALM})
