"""The one JSON error shape of the sidecar, and the one 404 text."""

from __future__ import annotations

from aiohttp import web

NOT_FOUND = "not found"  # the one 404 text of every lookup (MAC guessing: no hint why)


def error_response(status: int, message: str, headers=None) -> web.Response:
    """The one JSON error shape: ``{"error": {"status": 404, "message": "…"}}``."""
    return web.json_response({"error": {"status": status, "message": message}}, status=status,
                             headers=headers)
