"""Polycom digit maps (``dialplan.digitmap``): parse, simulate dialling, generate, check.

Syntax (docs/polycom.md §10, after RFC 3435 §2.1.5): rules separated by ``|``; in a rule ``0``-``9``,
``*``, ``#`` match themselves, ``x`` any digit, ``[135]``/``[2-9]`` a set, ``.`` repeats the
element before it zero or more times, a final ``T`` completes the rule once
``dialplan.digitmap.timeOut`` seconds pass without a key (one value per rule, ``3|3|…``),
``R<match>R<replacement>R`` rewrites the digits ``<match>`` matched, and ``,`` (dial tone back
on) matches nothing. The phone ignores a rule that breaks the syntax; we raise `DigitMapError`.

How the phone dials (`dial`): after each key every rule is tried on the digits so far, and
1. a rule without ``T`` matches them all: they are sent at once (the shortest match wins, so
   ``[2-9]11`` sends 911 although ``[2-9]xxxxxxxxx`` could go on), rewritten by that rule;
2. otherwise, when some rule can still match after more keys, or a ``T`` rule matches, the phone
   waits; when the keys stop, the first complete ``T`` rule sends them after its timeout, and
   without one the user has to press Send;
3. otherwise the match is impossible: ``dialplan.impossibleMatchHandling`` 0 sends the digits
   typed so far at once, 1 plays the reorder tone and drops them, 2 lets the user go on and
   press Send.
When several rules match, the first in the map decides the rewrite and the timeout; when a rule
can match one way or another (``x.x``) the earliest ``.`` takes as many keys as it can.
An empty map is read as no digit map: every number waits for Send.

A number *dials correctly* (verdict ``ok``) when typing all of its digits makes the phone send
exactly those digits, by itself, after the last key: at once, after a ``T`` timeout, or through
an impossible match on the last key (handling 0). Otherwise the verdict is ``sent-early`` (sent
before the last key: cut short), ``rewritten`` (sent after the last key, other digits) or
``never-sent`` (reorder tone, or the user has to press Send). `generate_digitmap` builds maps in
which every extension is sent at once and checks that by dialling them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

DEFAULT_DIGITMAP = "[2-9]11|0T|011xxx.T|[0-1][2-9]xxxxxxxxx|[2-9]xxxxxxxxx|[2-9]xxxT|**x.T"
DEFAULT_TIMEOUT = 3  # seconds; the firmware's dialplan.digitmap.timeOut is "3|3|3|3|3|3|3"
MAX_DIGITMAP = 2560  # dialplan.digitmap is String_0_2560
MAX_TIMEOUTS = 768  # dialplan.digitmap.timeOut is String_0_768
DIGITS = frozenset("0123456789")
KEYS = DIGITS | {"*", "#"}
REPLACEMENT = KEYS | {"+"}  # all the guide allows between the second and the third R

When = Literal["immediately", "after-timeout", "on-send", "rejected"]
Verdict = Literal["ok", "sent-early", "rewritten", "never-sent"]


class DigitMapError(ValueError):
    """A digit map or timeout list the phone would not use as written."""

    def __init__(self, field: str, position: int, reason: str):
        self.field, self.position, self.reason = field, position, reason  # position: 0-based
        super().__init__(f"{field}: character {position + 1}: {reason}")


class DialPlanError(ValueError):
    """The input to `generate_digitmap` is not a set of dialable numbers."""


class DialPlanConflict(DialPlanError):
    """No digit map can dial every number given; ``conflicts`` has one line per problem."""

    def __init__(self, conflicts: list[str]):
        self.conflicts = conflicts
        super().__init__("the dial plan has conflicts:\n  " + "\n  ".join(conflicts))


@dataclass(frozen=True)
class Element:
    chars: frozenset[str]
    star: bool  # followed by "." : zero or more
    segment: int  # index into Rule.segments


@dataclass(frozen=True)
class Rule:
    text: str
    elements: tuple[Element, ...]
    segments: tuple[str | None, ...]  # per segment: None keeps the keys, else the replacement
    timer: bool  # ends in T
    timeout: int  # seconds, from the timeOut list

    def output(self, keys: str, path: tuple[int, ...]) -> str:
        """What the phone sends for ``keys``, matched element by element as ``path`` says."""
        out = []
        for s, replacement in enumerate(self.segments):
            if replacement is not None:
                out.append(replacement)
            else:
                out.extend(k for k, e in zip(keys, path) if self.elements[e].segment == s)
        return "".join(out)


@dataclass(frozen=True)
class DigitMap:
    text: str
    rules: tuple[Rule, ...]


def _parse_set(text: str, i: int, fail) -> tuple[frozenset[str], int]:
    """``[...]`` starting at ``text[i]``; returns the set and the index after ``]``."""
    end = text.find("]", i)
    if end < 0:
        fail(i, "'[' is never closed by ']'")
    chars: set[str] = set()
    j = i + 1
    while j < end:
        c = text[j]
        if c not in KEYS:
            fail(j, f"{c!r} in a set; a set holds digits, * and # (e.g. [2-9] or [135])")
        if j + 2 < end and text[j + 1] == "-":
            hi = text[j + 2]
            if c not in DIGITS or hi not in DIGITS or hi < c:
                fail(j, f"range {c}-{hi}: a range goes from a lower to a higher digit (e.g. 2-9)")
            chars.update(chr(o) for o in range(ord(c), ord(hi) + 1))
            j += 3
        else:
            chars.add(c)
            j += 1
    if not chars:
        fail(i, "empty set []")
    return frozenset(chars), end + 1


def _parse_rule(text: str, offset: int, number: int, timeout: int) -> Rule:
    def fail(i: int, reason: str):
        raise DigitMapError("dialplan.digitmap", offset + i,
                            f"{reason} (rule {number} {text!r}; the phone ignores it)")

    elements: list[Element] = []
    segments: list[str | None] = [None]
    mode = "plain"  # then "match" after the first R, "replace" after the second
    timer = False
    i = 0
    while i < len(text):
        c = text[i]
        if timer:
            fail(i, "'T' must end the rule")
        if c == "R":
            mode = {"plain": "match", "match": "replace", "replace": "plain"}[mode]
            if mode == "match":
                segments.append("")
            elif mode == "plain":
                segments.append(None)
            i += 1
            continue
        if mode == "replace":
            if c not in REPLACEMENT:
                fail(i, f"{c!r} in a rewrite; between the second and third R only 0-9 * # + fit")
            segments[-1] += c
            i += 1
            continue
        if c in KEYS or c == "x":
            elements.append(Element(frozenset(c) if c != "x" else DIGITS, False, len(segments) - 1))
        elif c == "[":
            chars, i = _parse_set(text, i, fail)
            elements.append(Element(chars, False, len(segments) - 1))
            continue
        elif c == ".":
            last = elements[-1] if elements else None
            if last is None or last.star or last.segment != len(segments) - 1 or text[i - 1] == ",":
                fail(i, "'.' must follow a digit, x or a set")
            elements[-1] = Element(last.chars, True, last.segment)
        elif c == "T":
            if mode != "plain":
                fail(i, "'T' cannot be inside a rewrite")
            timer = True
        elif c != ",":
            hint = {"X": "x is lower case", "t": "T is upper case", "r": "R is upper case",
                    "S": "protocol letters are not supported", "H": "protocol letters are not supported"}
            fail(i, f"unexpected {c!r}" + (f" ({hint[c]})" if c in hint else ""))
        i += 1
    if mode != "plain":
        fail(len(text), "a rewrite needs three R's: R<digits>R<replacement>R")
    if not elements:
        fail(0, "the rule matches no digits")
    return Rule(text, tuple(elements), tuple(segments), timer, timeout)


def parse_timeouts(text: str) -> list[int]:
    """``dialplan.digitmap.timeOut`` ("3|3|3"): seconds per rule."""
    field = "dialplan.digitmap.timeOut"
    if len(text) > MAX_TIMEOUTS:
        raise DigitMapError(field, MAX_TIMEOUTS, f"longer than {MAX_TIMEOUTS} characters")
    seconds, pos = [], 0
    for part in text.split("|"):
        if not part.isascii() or not part.isdigit():
            raise DigitMapError(field, pos, f"{part!r} is not a whole number of seconds")
        seconds.append(int(part))
        pos += len(part) + 1
    return seconds


def parse_digitmap(text: str, timeouts: str | None = None) -> DigitMap:
    """Rules of a digit map; a timeout missing from ``timeouts`` is taken as 3 seconds."""
    if len(text) > MAX_DIGITMAP:
        raise DigitMapError("dialplan.digitmap", MAX_DIGITMAP, f"longer than {MAX_DIGITMAP} characters")
    seconds = parse_timeouts(timeouts) if timeouts else []
    rules: list[Rule] = []
    if text:
        pos = 0
        for n, part in enumerate(text.split("|")):
            if not part:
                raise DigitMapError("dialplan.digitmap", pos,
                                    f"rule {n + 1} is empty ('||' or a '|' at an end)")
            rules.append(_parse_rule(part, pos, n + 1, seconds[n] if n < len(seconds) else DEFAULT_TIMEOUT))
            pos += len(part) + 1
    return DigitMap(text, tuple(rules))


def _close(rule: Rule, states: dict[int, tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
    """Add the states reachable by letting starred elements match nothing."""
    out: dict[int, tuple[int, ...]] = {}
    for i, path in states.items():
        out.setdefault(i, path)
        while i < len(rule.elements) and rule.elements[i].star:
            i += 1
            out.setdefault(i, path)
    return out


def _step(rule: Rule, states: dict[int, tuple[int, ...]], key: str) -> dict[int, tuple[int, ...]]:
    """NFA step: state i = next element to match; the path says which element took each key."""
    nxt: dict[int, tuple[int, ...]] = {}
    for i, path in states.items():
        if i < len(rule.elements) and key in rule.elements[i].chars:
            nxt.setdefault(i if rule.elements[i].star else i + 1, path + (i,))
    return _close(rule, nxt)


def _count(k: int) -> str:
    return f"{k} digit" + ("" if k == 1 else "s")


@dataclass(frozen=True)
class DialResult:
    dialled: str
    sent: str  # what reaches the server ("" when rejected)
    when: When
    after_digits: int  # keys typed when the phone sent (or rejected)
    rule: int | None = None  # 0-based index of the rule that completed
    rule_text: str = ""
    timeout: int | None = None  # seconds waited, for "after-timeout"
    impossible_at: int | None = None  # keys typed when the match became impossible

    @property
    def verdict(self) -> Verdict:
        if self.when in ("rejected", "on-send"):
            return "never-sent"
        if self.after_digits < len(self.dialled):
            return "sent-early"
        return "ok" if self.sent == self.dialled else "rewritten"

    def describe(self) -> str:
        """One line for a person: what the phone does with these keys."""
        d, k = self.dialled, self.after_digits
        keys = _count(k)
        rule = f'rule {self.rule + 1} "{self.rule_text}"' if self.rule is not None else ""
        if self.when == "rejected":
            return f"dialled {d}, the phone plays the reorder tone after {keys} (impossible match)"
        if self.when == "on-send":
            if self.impossible_at is not None:
                return (f"dialled {d}, the phone waits for Send "
                        f"(impossible match after {_count(self.impossible_at)})")
            return f"dialled {d}, no rule completes: the phone waits for more digits or Send"
        how = f"{self.timeout} s after the last digit" if self.when == "after-timeout" else f"after {keys}"
        why = "impossible match" if self.rule is None else f"{rule} matches"
        if self.verdict == "rewritten":
            why = f"{rule} rewrites it"
        return f'dialled {d}, the phone sends "{self.sent}" {how} ({why})'


def dial(digitmap: str | DigitMap, digits: str, impossible_handling: int = 0, *,
         timeouts: str | None = None) -> DialResult:
    """Type ``digits`` key by key, then wait; see the module docstring for the rules."""
    dm = digitmap if isinstance(digitmap, DigitMap) else parse_digitmap(digitmap, timeouts)
    if not digits or not set(digits) <= KEYS:
        raise ValueError(f"cannot dial {digits!r}: only 0-9, * and # are keys")
    if impossible_handling not in (0, 1, 2):
        raise ValueError(f"impossible_handling must be 0, 1 or 2, not {impossible_handling!r}")
    n = len(digits)
    if not dm.rules:
        return DialResult(digits, digits, "on-send", n)
    states = [_close(r, {0: ()}) for r in dm.rules]
    for k, key in enumerate(digits, 1):
        states = [_step(r, s, key) for r, s in zip(dm.rules, states)]
        for i, (r, s) in enumerate(zip(dm.rules, states)):
            if not r.timer and len(r.elements) in s:
                return DialResult(digits, r.output(digits[:k], s[len(r.elements)]), "immediately",
                                  k, i, r.text)
        if not any(states):
            if impossible_handling == 0:
                return DialResult(digits, digits[:k], "immediately", k, impossible_at=k)
            if impossible_handling == 1:
                return DialResult(digits, "", "rejected", k, impossible_at=k)
            return DialResult(digits, digits, "on-send", n, impossible_at=k)
    for i, (r, s) in enumerate(zip(dm.rules, states)):
        if len(r.elements) in s:  # only T rules are left complete here
            return DialResult(digits, r.output(digits, s[len(r.elements)]), "after-timeout", n,
                              i, r.text, r.timeout)
    return DialResult(digits, digits, "on-send", n)


@dataclass(frozen=True)
class Finding:
    index: int  # position in the extensions given
    ext: str
    verdict: Verdict
    message: str
    result: DialResult


def check_extensions(digitmap: str | DigitMap, extensions: Iterable[str], impossible_handling: int = 0,
                     *, timeouts: str | None = None) -> list[Finding]:
    """Dial every extension; one `Finding` for each that does not dial correctly."""
    dm = digitmap if isinstance(digitmap, DigitMap) else parse_digitmap(digitmap, timeouts)
    findings = []
    for index, ext in enumerate(extensions):
        r = dial(dm, ext, impossible_handling)
        if r.verdict != "ok":
            findings.append(Finding(index, ext, r.verdict, r.describe(), r))
    return findings


def _atom(chars: frozenset[str]) -> str:
    """A set of digits as digit-map text: ``x``, ``5``, ``[13]``, ``[2-9]``."""
    if chars == DIGITS:
        return "x"
    ds = sorted(chars)
    if len(ds) == 1:
        return ds[0]
    runs: list[list[str]] = []
    for d in ds:
        if runs and ord(d) == ord(runs[-1][-1]) + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return "[" + "".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else "".join(r) for r in runs) + "]"


def _cover(exts: list[str], length: int, blocked: set[str], outside: str | None) -> list[str]:
    """Patterns of ``length`` digits matching every ext in ``exts`` and nothing in ``blocked``
    (prefixes of longer numbers) or under the outside-line prefix. Each first digit in use gets
    its own branch; below it a branch becomes ``x`` as soon as nothing blocked lies under it, and
    branches with the same tail share a set (``1xxx|2xxx`` -> ``[12]xxx``)."""

    def walk(q: str, members: list[str]) -> list[tuple[frozenset[str], ...]]:
        rest = length - len(q)
        if rest == 0:
            return [()]
        free = q not in blocked and not (outside and (outside.startswith(q) or q.startswith(outside)))
        if q and free:
            return [(DIGITS,) * rest]
        tails: dict[tuple[frozenset[str], ...], set[str]] = {}
        for d in sorted({m[len(q)] for m in members}):
            for tail in walk(q + d, [m for m in members if m[len(q)] == d]):
                tails.setdefault(tail, set()).add(d)
        return [(frozenset(ds),) + tail for tail, ds in tails.items()]

    return ["".join(_atom(a) for a in p) for p in walk("", exts)]


def _digits(what: str, value: str) -> str:
    if not isinstance(value, str) or not value or not set(value) <= DIGITS:
        raise DialPlanError(f"{what} {value!r} must be digits 0-9")
    return value


def _sample(rule: Rule) -> str:
    """The shortest keys a rule matches, lowest key first: what we dial to test a pattern."""
    return "".join(min(e.chars) for e in rule.elements if not e.star)


def generate_digitmap(extensions: Iterable[str], *, emergency: Iterable[str] = (),
                      outside_prefix: str | None = None, feature_codes: Iterable[str] = ()) -> str:
    """A digit map that sends every extension, emergency number and feature code the moment it is
    complete, and outside numbers (``outside_prefix`` then at least one digit) after the timeout.

    ``feature_codes`` are digit-map rules starting with * or # (``*97``, ``*xx``, ``*72x.T``).
    Raises `DialPlanConflict` when some number cannot be dialled next to the others: one is a
    prefix of another (extension 91 and 911), an extension is an emergency number, or an
    extension begins with the outside-line prefix (or is a beginning of it). An emergency number
    beginning with the prefix is allowed: it goes out at once, and outside numbers beginning
    with the rest of it cannot be dialled (9 and 911 in North America cost nothing).
    Write `timeout_list` of the result as ``dialplan.digitmap.timeOut``.
    """
    exts = sorted({_digits("extension", e) for e in extensions}, key=lambda e: (len(e), e))
    sos = list(dict.fromkeys(_digits("emergency number", e) for e in emergency))
    prefix = _digits("outside-line prefix", outside_prefix) if outside_prefix is not None else None
    codes = list(dict.fromkeys(feature_codes))
    for code in codes:
        if not isinstance(code, str) or code[:1] not in ("*", "#") or "|" in code:
            raise DialPlanError(f"feature code {code!r} must be one rule starting with * or #")
        try:
            parse_digitmap(code)
        except DigitMapError as e:
            raise DialPlanError(f"feature code {code!r}: {e.reason}") from None

    conflicts = [f"extension {e} is also the emergency number {e}" for e in exts if e in sos]
    if prefix:
        conflicts += [f"extension {e} " + ("begins with" if e.startswith(prefix) else "is the start of")
                      + f" the outside-line prefix {prefix}: outside numbers would be cut short"
                      for e in exts if e.startswith(prefix) or prefix.startswith(e)]
    numbers = exts + sos
    patterns = []
    for length in sorted({len(e) for e in exts}):
        blocked = {n[:i] for n in numbers if len(n) > length for i in range(length + 1)}
        patterns += _cover([e for e in exts if len(e) == length], length, blocked, prefix)
    rules = sos + codes + patterns + ([f"{prefix}xx.T"] if prefix else [])
    text = "|".join(rules)
    if len(text) > MAX_DIGITMAP:
        raise DialPlanError(f"the digit map would be {len(text)} characters; phones take {MAX_DIGITMAP}")
    dm = parse_digitmap(text)
    tests = [(f"extension {e}", e, True) for e in exts] + [(f"emergency number {e}", e, True) for e in sos]
    for code, rule in zip(codes, dm.rules[len(sos):]):
        tests.append((f"feature code {code}", _sample(rule), not rule.timer))
    for label, keys, immediate in tests:
        r = dial(dm, keys)
        if r.verdict != "ok" or (immediate and r.when != "immediately"):
            conflicts.append(f"{label}: {r.describe()}")
    if conflicts:
        raise DialPlanConflict(conflicts)
    return text


def timeout_list(digitmap: str, seconds: int = DEFAULT_TIMEOUT) -> str:
    """``dialplan.digitmap.timeOut`` for ``digitmap``: one value per rule."""
    return "|".join([str(seconds)] * len(parse_digitmap(digitmap).rules))
