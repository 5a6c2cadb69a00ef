"""One exception tree. The CLI turns every PolygenError into ``Error: …`` and exit 1."""

from __future__ import annotations

import click


class PolygenError(click.ClickException):
    """An expected failure the user can act on (exit code 1)."""

    exit_code = 1


class InventoryError(PolygenError):
    """The inventory does not validate; ``problems`` holds every finding."""

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class TemplateError(PolygenError):
    """A template is missing or fails to render."""


class BuildError(PolygenError):
    """Writing out/ failed (disk full, permissions, a conflict)."""


class SidecarConfigError(PolygenError):
    """The sidecar cannot start with the given options."""


class LogStoreError(PolygenError):
    """The log database cannot be opened or queried."""


class LogStoreUnavailable(LogStoreError):
    """The log database cannot be reached just now (a PostgreSQL server down or unreachable);
    the sidecar answers 503 and the phone tries again later."""
