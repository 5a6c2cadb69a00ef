"""Two effective configurations of one phone, compared parameter by parameter.

What counts is what the phone ends up with: a parameter's value when a file sets it, else the
firmware's default for the parameters polygen always writes (``defaults``). So a tree that never
set ``log.render.file`` and an import whose build writes ``log.render.file="1"`` agree (the
default is 1), while ``prov.polling.enabled="1"`` against an unset one (default 0) is a
difference. Every other parameter must be present on both sides with the same text, or absent on
both: values are compared as written (``"1"`` is not ``"01"``), passwords included.
"""

from __future__ import annotations

from dataclasses import dataclass

from polygen.importing.defaults import default


@dataclass(frozen=True)
class Difference:
    name: str
    before: str | None  # None: not set and no known default
    after: str | None

    def __str__(self) -> str:
        show = lambda v: "(unset)" if v is None else repr(v)  # noqa: E731
        return f"{self.name}: {show(self.before)} -> {show(self.after)}"


def effective(params: dict[str, str], name: str, dialect: str, base: dict[str, str] | None = None) -> str | None:
    """What the phone has for ``name``: as set, else from ``base`` (release files), else the default."""
    if name in params:
        return params[name]
    if base and name in base:
        return base[name]
    return default(name, dialect)


def differences(before: dict[str, str], after: dict[str, str], dialect: str,
                base: dict[str, str] | None = None) -> list[Difference]:
    """Every parameter whose effective value differs, sorted by name."""
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = effective(before, name, dialect, base), effective(after, name, dialect, base)
        if a != b:
            out.append(Difference(name, a, b))
    return out
