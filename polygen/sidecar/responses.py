"""The one JSON error shape of the sidecar, the one 404 text and the Retry-After of a 503."""

from __future__ import annotations

from aiohttp import web

STORE_RETRY_AFTER = 30  # seconds, in the 503 of an upload while the log database is unavailable
NOT_FOUND = "not found"  # the one 404 text of every lookup (MAC guessing: no hint why)


def error_response(status: int, message: str, headers=None) -> web.Response:
    """The one JSON error shape: ``{"error": {"status": 404, "message": "…"}}``."""
    return web.json_response({"error": {"status": status, "message": message}}, status=status,
                             headers=headers)
