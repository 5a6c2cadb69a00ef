"""The sidecar: an aiohttp app that answers ``000000000000.cfg`` by User-Agent, stores the phones'
log uploads in SQLite, keeps and answers their override files (``polygen.overrides``) and, with
``static=True``, serves the current ``out/`` generation.

``create_app(config)`` is used by ``polygen serve`` and the tests; ``run(config, host, port)``
runs it. Nothing here imports aiohttp at import time of ``polygen.sidecar``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["SidecarConfig", "create_app", "run"]

if TYPE_CHECKING:
    from polygen.sidecar.app import SidecarConfig, create_app, run


def __getattr__(name: str):
    if name in __all__:
        from polygen.sidecar import app

        return getattr(app, name)
    raise AttributeError(name)
