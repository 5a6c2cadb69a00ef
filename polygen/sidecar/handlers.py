"""The request handlers (the view of ``out/`` is ``outtree``, errors ``responses`` and
``middleware``, the access log ``accesslog``).

Every request is judged on its **raw** path (``request.raw_path``, exactly as the client sent it,
before any decoding or dot-segment folding) against strict patterns, before it reaches SQL or the
filesystem:

* a query string, a ``%`` (percent-encoding), a ``.``/``..`` or empty segment, or any character
  outside ``[A-Za-z0-9._-]`` in a segment: **400**, nothing else is looked at;
* ``GET``/``HEAD`` ``[/<prefix>]/000000000000.cfg``: the bootstrap for the User-Agent's model;
* ``PUT`` ``/[logs/]<mac>-boot.log`` and ``/[logs/]<mac>-app.log``: a log upload. **MACs must be
  lower-case** (phones name their files with the lower-case MAC, DESIGN.md "out/ layout"); the same
  name with upper-case letters is a 400, so there is exactly one spelling per phone in the database;
* ``PUT`` ``/overrides/<mac>-phone.cfg`` and ``/overrides/<mac>-web.cfg``: a phone's override file
  (polygen.overrides), validated and kept in the overrides directory; ``GET``/``HEAD`` of the
  same names answer it back as ``site.overrides`` says (keep: the upload, or 404; discard: an
  empty override file);
* any other ``PUT`` (the generated files, directories, call lists): **403**;
* with ``static``: ``GET``/``HEAD`` of a file of the current generation; otherwise 404.

Before any of that is looked up, ``polygen.sidecar.guard`` asks for HTTP basic auth (when the
generation has ``.htpasswd``) on everything but the public names, and holds back clients that
collect too many 404s. Every 404 of a lookup has the same body, ``not found``: an unknown MAC's
files, hidden and forbidden names and missing files cannot be told apart (SECURITY.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from polygen import overrides
from polygen.logparse import count_lines
from polygen.sidecar import keys
from polygen.sidecar.guard import is_public, require_auth, too_many
from polygen.sidecar.guard import note as _note
from polygen.sidecar.outtree import safe_file
from polygen.sidecar.responses import NOT_FOUND, STORE_RETRY_AFTER
from polygen.useragent import parse_user_agent
from polygen.write import generation_commit

log = logging.getLogger("polygen.sidecar")

SHARED_DIRECTORY = "contacts/000000000000-directory.xml"

_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)
_BOOTSTRAP_RE = re.compile(r"/(?:[A-Za-z0-9._-]+/)*000000000000\.cfg", re.ASCII)
UPLOAD_RE = re.compile(r"^/(?:logs/)?([0-9a-f]{12})-(boot|app)\.log$", re.ASCII)
_UPLOAD_ANY_CASE_RE = re.compile(f"{UPLOAD_RE.pattern}|{overrides.PATH_RE.pattern}", re.ASCII | re.IGNORECASE)
_CONTACTS_RE = re.compile(r"contacts/([0-9a-f]{12})-directory\.xml", re.ASCII)
_CHUNK = 64 * 1024


def check_raw_path(raw: str) -> list[str]:
    """The path's segments, or 400 for anything that is not a plain path (see module docstring)."""
    if "?" in raw or "#" in raw:
        raise web.HTTPBadRequest(text="query strings are not accepted")
    if "%" in raw:
        raise web.HTTPBadRequest(text="percent-encoded paths are not accepted")
    if not raw.startswith("/"):
        raise web.HTTPBadRequest(text="the path must start with '/'")
    segments = raw[1:].split("/")
    for i, seg in enumerate(segments):
        if seg in (".", ".."):
            raise web.HTTPBadRequest(text="'.' and '..' path segments are not accepted")
        if seg == "":
            if i == len(segments) - 1:
                continue  # "/" or a trailing slash: a directory, answered 404 later
            raise web.HTTPBadRequest(text="empty path segments are not accepted")
        if not _SEGMENT_RE.fullmatch(seg):
            raise web.HTTPBadRequest(text="the path has characters outside [A-Za-z0-9._-]")
    return segments


class LastRebuild:
    """The outcome of the newest --watch rebuild, for /healthz. A failure is told while the
    generation served when that rebuild started is still the current one: a newer generation
    means a build (by hand: `polygen build` confirming a refused change) has succeeded since."""

    def __init__(self):
        self.error: str | None = None
        self.generation: str | None = None

    def record(self, error: str | None, served: Path | None) -> None:
        self.error, self.generation = error, served.name if served is not None else None

    def failure(self, current: Path | None) -> str | None:
        served = current.name if current is not None else None
        return self.error if self.error is not None and served == self.generation else None


async def handle_healthz(request: web.Request) -> web.Response:
    app = request.app
    tree = app[keys.TREE]
    gen = tree.generation()
    db_ok = await app[keys.STORE].ping()
    failure = app[keys.REBUILD].failure(gen)
    # 503 only when nothing can be served; a failed or refused rebuild while the last good
    # generation is served is 200 "degraded", with the error (README, SECURITY.md)
    serving = db_ok and gen is not None
    body = {
        "status": "unavailable" if not serving else "degraded" if failure else "ok",
        "generation": gen.name if gen is not None else None,
        "commit": generation_commit(gen),  # what it was built from (--git), or null
        "phones": len(tree.manifest(gen).macs) if gen is not None else 0,
        "db": db_ok,
    }
    if failure:
        body["error"] = failure
    return web.json_response(body, status=200 if serving else 503, headers={"Cache-Control": "no-store"})


async def handle_any(request: web.Request) -> web.StreamResponse:
    """The one catch-all route: dispatch on method and the raw path."""
    if request.method not in ("GET", "HEAD", "PUT"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD", "PUT"],
                                       text=f"method {request.method} is not allowed")
    raw = request.raw_path
    check_raw_path(raw)
    if not is_public(request.method, raw):
        require_auth(request, _generation(request))
    if m := overrides.PATH_RE.fullmatch(raw):
        if request.method == "PUT":
            return await handle_override_put(request, m[1], m[2])
        return handle_override_get(request, m[1], m[2])
    if request.method == "PUT":
        return await handle_upload(request, raw)
    if _BOOTSTRAP_RE.fullmatch(raw):
        return handle_bootstrap(request)
    if request.method == "HEAD" and (m := UPLOAD_RE.fullmatch(raw)):
        return handle_log_head(request, m[1])
    if request.app[keys.CONFIG].static:
        return handle_static(request, raw)
    raise web.HTTPNotFound(text=NOT_FOUND)


def _generation(request: web.Request) -> Path:
    """The current generation, resolved once per request."""
    gen = request.get(keys.GENERATION)
    if gen is None:
        gen = request.app[keys.TREE].generation()
        if gen is None:
            raise web.HTTPServiceUnavailable(text="no build yet: run 'polygen build'",
                                             headers={"Retry-After": "30"})
        request[keys.GENERATION] = gen
    return gen


def handle_bootstrap(request: web.Request) -> web.Response:
    gen = _generation(request)
    rel, body = request.app[keys.TREE].bootstrap_for(gen, request.headers.get("User-Agent"))
    _note(request, served=rel, generation=gen.name)
    return web.Response(
        body=body,
        content_type="text/xml",
        headers={"Vary": "User-Agent", "Cache-Control": "no-store"},
    )


def _known_mac(request: web.Request, gen: Path, mac: str) -> bool:
    if request.app[keys.CONFIG].unknown_mac == "accept":
        return True
    return mac in request.app[keys.TREE].manifest(gen).macs


def handle_log_head(request: web.Request, mac: str) -> web.Response:
    # Phones send HEAD <mac>-app.log before uploading the app log (docs/polycom.md §2, observed). Nothing
    # is kept on disk, so we answer "exists, empty": 200 with Content-Length 0. A phone that wants
    # to append then sends its whole file, and the store keeps only the part it has not seen
    # (polygen.logstore, append mode). A 404 here could make a phone skip the upload.
    gen = _generation(request)
    if not _known_mac(request, gen, mac):
        raise web.HTTPNotFound(text=NOT_FOUND)
    return web.Response(status=200, headers={"Content-Length": "0", "Cache-Control": "no-store"})


async def handle_upload(request: web.Request, raw: str) -> web.Response:
    m = UPLOAD_RE.fullmatch(raw)
    if m is None:
        if _UPLOAD_ANY_CASE_RE.fullmatch(raw):
            raise web.HTTPBadRequest(text="MAC addresses in upload names must be lower-case")
        raise web.HTTPForbidden(text="only <mac>-boot.log, <mac>-app.log and overrides/<mac>-phone.cfg, "
                                     "-web.cfg uploads are accepted")
    mac, kind = m[1], m[2]
    _note(request, mac=mac, kind=kind)
    config = request.app[keys.CONFIG]
    gen = _generation(request)
    if not _known_mac(request, gen, mac):
        # Not NOT_FOUND: the name already says it is an upload, and the text names only the MAC
        # the client sent; known and unknown MACs are told apart by 201 vs 404 either way.
        raise web.HTTPNotFound(text=f"unknown phone {mac}: not in the inventory")
    guard = request.app[keys.GUARD]
    if not guard.uploads.take(mac):
        _note(request, limited="uploads")
        raise too_many(guard.uploads.retry_after(mac), f"too many uploads for {mac}: slow down")
    if not guard.lines.allowed(mac):
        _note(request, limited="lines")
        raise too_many(guard.lines.retry_after(mac), f"too many log lines from {mac}: slow down")
    body = await _read_body(request, config)
    # Reserve the lines this upload may store before it waits for the writer, so that concurrent
    # uploads of one MAC cannot store more than its budget between them: at most max_upload_lines
    # and at most the lines the body has; what is not stored is given back.
    wanted = count_lines(body)
    if config.max_upload_lines:
        wanted = min(wanted, config.max_upload_lines)
    reserved = guard.lines.take_up_to(mac, wanted) if wanted else 0
    if wanted and reserved == 0:
        _note(request, limited="lines")
        raise too_many(guard.lines.retry_after(mac), f"too many log lines from {mac}: slow down")
    user_agent = request.headers.get("User-Agent")
    ua = parse_user_agent(user_agent)
    stored = None
    try:
        async with guard.one_upload_at_a_time(mac):
            stored = await request.app[keys.STORE].store_upload(
                mac, kind, body, ua.version if ua else None, user_agent, max_lines=reserved if wanted else None,
                extensions=request.app[keys.TREE].manifest(gen).lines.get(mac),
            )
    finally:
        guard.lines.give_back(mac, reserved - (stored.lines if stored else 0))
    _note(request, upload_id=stored.upload_id, lines=stored.lines, skipped=stored.skipped_bytes)
    answer = {"upload_id": stored.upload_id, "lines": stored.lines, "skipped_bytes": stored.skipped_bytes}
    if stored.cut_line is not None:
        # Over the limit: the lines after the cut are not stored, and a marker row says so. 201
        # all the same, so the phone does not retry at once; the append state ends at the cut,
        # so the next upload of its growing file brings the rest (see polygen.logstore).
        _note(request, cut_line=stored.cut_line, cut_bytes=stored.cut_bytes)
        answer.update(not_stored_from_line=stored.cut_line, not_stored_bytes=stored.cut_bytes)
    elif stored.lines == 0:
        return web.Response(status=204)  # nothing new (an empty body or one already stored)
    return web.json_response(answer, status=201)


def handle_override_get(request: web.Request, mac: str, kind: str) -> web.Response:
    # A known phone asks for both override files at every boot; with none stored (keep) that is
    # the usual 404, which takes no miss token. An unknown MAC's 404 does: under discard a known
    # MAC gets 200, so these names would otherwise tell MACs apart for free.
    gen = _generation(request)
    _note(request, mac=mac, kind=f"override-{kind}")
    if not _known_mac(request, gen, mac):
        request[keys.MISS_FREE] = False
        raise web.HTTPNotFound(text=NOT_FOUND)
    policy = request.app[keys.TREE].overrides_policy(gen)
    store = request.app[keys.OVERRIDES]
    try:
        body = overrides.answer(policy, store.read(mac, kind))
    except OSError as exc:
        log.error("cannot read %s in %s: %s", overrides.file_name(mac, kind), store.root, exc.strerror or exc)
        raise web.HTTPServiceUnavailable(text="the override file cannot be read: try again later",
                                         headers={"Retry-After": str(STORE_RETRY_AFTER)}) from None
    _note(request, overrides=policy)
    if body is None:
        request[keys.MISS_FREE] = True
        raise web.HTTPNotFound(text=NOT_FOUND)
    # as the other .cfg files are served: bytes for the phone, never a document a browser renders
    return web.Response(body=body, content_type="application/octet-stream",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


async def handle_override_put(request: web.Request, mac: str, kind: str) -> web.Response:
    """Keep a phone's override file (whatever the policy: `polygen overrides` shows it)."""
    name = overrides.file_name(mac, kind)
    _note(request, mac=mac, kind=f"override-{kind}")
    config = request.app[keys.CONFIG]
    gen = _generation(request)
    if not _known_mac(request, gen, mac):
        raise web.HTTPNotFound(text=f"unknown phone {mac}: not in the inventory")
    guard = request.app[keys.GUARD]
    if not guard.uploads.take(mac):  # one budget per phone for its logs and its override files
        _note(request, limited="uploads")
        raise too_many(guard.uploads.retry_after(mac), f"too many uploads for {mac}: slow down")
    body = await _read_body(request, config, min(config.max_upload_bytes, overrides.MAX_BYTES))
    try:
        params = overrides.parse(body)
    except overrides.OverrideError as exc:
        _note(request, refused="body")
        raise web.HTTPBadRequest(text=f"{name}: {exc}") from None
    store = request.app[keys.OVERRIDES]
    existed = store.path(mac, kind).exists()
    try:
        await asyncio.to_thread(store.write, mac, kind, body)
    except OSError as exc:
        log.error("cannot store %s in %s: %s", name, store.root, exc.strerror or exc)
        raise web.HTTPServiceUnavailable(text="the override file could not be stored: try again later",
                                         headers={"Retry-After": str(STORE_RETRY_AFTER)}) from None
    _note(request, params=len(params), overrides=request.app[keys.TREE].overrides_policy(gen))
    return web.Response(status=204 if existed else 201)


async def _read_body(request: web.Request, config, cap: int | None = None) -> bytes:
    """The upload's body: at most ``cap`` bytes (``max_upload_bytes`` by default; 413), complete
    within ``body_timeout`` (408)."""
    cap = cap or config.max_upload_bytes
    too_big = f"upload larger than {cap} bytes"
    if request.content_length is not None and request.content_length > cap:
        raise web.HTTPRequestEntityTooLarge(cap, request.content_length, text=too_big)
    # client_max_size does not cover streaming reads: count the bytes ourselves.
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(config.body_timeout):
            async for chunk in request.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise web.HTTPRequestEntityTooLarge(cap, size, text=too_big)
                chunks.append(chunk)
    except TimeoutError:
        # A body that trickles in holds a connection and memory: nothing is stored. (aiohttp then
        # discards what still comes for a few seconds and closes the connection.)
        _note(request, cut_off="timeout")
        raise web.HTTPRequestTimeout(text=f"the upload took longer than {config.body_timeout:g}s") from None
    except (ConnectionError, HttpProcessingError, ClientPayloadError) as exc:
        # The client went away mid-body or lied about its length: nothing is stored. Not a
        # server error (no 500, no traceback in the log); the client is usually gone anyway.
        _note(request, cut_off=type(exc).__name__)
        raise web.HTTPBadRequest(text="the upload ended before its declared end") from None
    return b"".join(chunks)


def handle_static(request: web.Request, raw: str) -> web.StreamResponse:
    rel = raw[1:]
    not_found = web.HTTPNotFound(text=NOT_FOUND)
    if rel == "" or rel.endswith("/"):
        raise not_found  # directories are never listed
    if any(seg.startswith(".") for seg in rel.split("/")):
        raise not_found  # the manifest, staging and other hidden files are never served
    gen = _generation(request)
    tree = request.app[keys.TREE]
    if (m := _CONTACTS_RE.fullmatch(rel)) and m[1] != "000000000000":
        # A known phone's own directory if the build made one (speed dials), else the shared
        # directory (DESIGN.md).
        if not _known_mac(request, gen, m[1]):
            raise not_found
        if safe_file(gen, rel) is None:
            rel = SHARED_DIRECTORY
    path = safe_file(gen, rel)
    if path is None:
        # Firmware entries may be symlinks out of the generation into the firmware directory:
        # allowed only for names the build's manifest lists.
        if not rel.startswith("firmware/") or rel not in tree.manifest(gen).files:
            raise not_found
        try:
            path = (gen / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            raise not_found from None
        if not path.is_file():
            raise not_found
    _note(request, served=rel, generation=gen.name)
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
