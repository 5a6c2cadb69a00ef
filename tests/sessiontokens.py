"""Hashes in the README's sessions: a build's digest and a commit depend on bytes the README does
not fix (git's time stamps, the templates of the day), so a session shows real ones from a run,
and its replay accepts others in their place, as long as they stand in consistently: the same
hash shown twice must be the same hash both times, and two different ones must differ."""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r'(?<=digest )[0-9a-f]{16}(?![0-9a-f])|(?<=commit )[0-9a-f]{12}(?![0-9a-f])'
                      r'|(?<="commit": ")[0-9a-f]{40}(?=")')


class Tokens:
    """The hashes seen so far in one replay: README's (first 12 characters) -> the run's."""

    def __init__(self):
        self.bound: dict[str, str] = {}

    @staticmethod
    def pattern(text: str) -> tuple[str, list[str]]:
        """A regular expression for ``text`` with each hash a group, and the hashes in order."""
        parts, hashes, pos = [], [], 0
        for m in TOKEN_RE.finditer(text):
            parts += [re.escape(text[pos:m.start()]), f"([0-9a-f]{{{len(m.group())}}})"]
            hashes.append(m.group())
            pos = m.end()
        parts.append(re.escape(text[pos:]))
        return "".join(parts), hashes

    def bind(self, shown: list[str], got: list[str]) -> bool:
        """Remember that each hash of ``shown`` stands for the one of ``got`` at its place; False
        (and nothing remembered) when that contradicts what was seen before."""
        bound = dict(self.bound)
        for readme, real in zip(shown, got):
            if bound.setdefault(readme[:12], real[:12]) != real[:12]:
                return False
        if len(set(bound.values())) != len(bound):
            return False
        self.bound = bound
        return True

    def expected(self, shown: list[str], got: list[str]) -> list[str]:
        """``got`` when it is ``shown`` with its hashes standing in consistently, else ``shown``
        (so that ``assert got == tokens.expected(shown, got)`` shows the difference)."""
        if len(shown) != len(got):
            return shown
        readme, real = [], []
        for s, g in zip(shown, got):
            pattern, hashes = self.pattern(s)
            m = re.fullmatch(pattern, g)
            if m is None:
                return shown
            readme += hashes
            real += m.groups()
        return got if self.bind(readme, real) else shown
