"""YAML to plain values that remember where they came from.

PyYAML's constructors resolve scalars with YAML 1.1 rules: ``0100`` becomes 64, ``yes`` becomes
True and ``00:04:f2:12:34:56`` a sexagesimal integer, and a repeated key silently wins. An
inventory must never change a SIP password or a MAC that way, so we stop at the node graph
(libyaml's composer when available) and convert it ourselves: scalars keep the text as written,
duplicate keys are errors, and every value carries its file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True, slots=True)
class Loc:
    file: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar exactly as written, with the tag YAML 1.1 would have resolved it to."""

    text: str
    tag: str
    quoted: bool
    loc: Loc

    @property
    def is_null(self) -> bool:
        return self.tag == _NULL_TAG and not self.quoted

    @property
    def is_bool(self) -> bool:
        return self.tag == _BOOL_TAG and not self.quoted

    @property
    def is_int(self) -> bool:
        return self.tag == _INT_TAG and not self.quoted

    @property
    def kind(self) -> str:
        """What YAML 1.1 would have made of it, for error messages."""
        if self.quoted or self.tag == _STR_TAG:
            return "text"
        return {_NULL_TAG: "null", _BOOL_TAG: "boolean", _INT_TAG: "number", _FLOAT_TAG: "number"}.get(
            self.tag, "value"
        )

    def as_bool(self) -> bool | None:
        if not self.is_bool:
            return None
        return self.text.lower() in ("y", "yes", "true", "on")


class Map(dict):
    """A mapping whose keys are plain strings; ``locs[key]`` is where each key was written."""

    __slots__ = ("loc", "locs")

    def __init__(self, loc: Loc):
        super().__init__()
        self.loc = loc
        self.locs: dict[str, Loc] = {}


class Seq(list):
    __slots__ = ("loc",)

    def __init__(self, loc: Loc):
        super().__init__()
        self.loc = loc


Value = Scalar | Map | Seq


class YamlProblem(Exception):
    def __init__(self, loc: Loc, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def load_file(path: Path, display: str | None = None) -> tuple[Value | None, list[YamlProblem]]:
    """Parse one YAML file into Map/Seq/Scalar; returns (value, problems).

    Syntax errors stop that file only (there is nothing sane to continue with); duplicate keys
    and non-string keys are collected and the file is still returned.
    """
    name = display or str(path)
    try:
        with open(path, "rb") as fh:
            node = yaml.compose(fh, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" (begun at line {exc.context_mark.line + 1})"
        msg = " ".join(str(p) for p in (context, exc.problem) if p)
        if exc.problem == "but found another document":
            msg = "a second document ('---') in one file; move it to a file of its own"
        if mark and _tab_before(path, mark):
            msg += "; indent with spaces, not tabs"
        col = f" (column {mark.column + 1})" if mark else ""
        return None, [YamlProblem(Loc(name, line), f"YAML syntax error{col}: {msg}")]
    except yaml.reader.ReaderError:  # undecodable bytes or a character YAML forbids
        return None, [_reader_problem(path, name)]
    except yaml.YAMLError as exc:
        return None, [YamlProblem(Loc(name, 1), "YAML error: " + " ".join(str(exc).split()))]
    if node is None:
        return None, []
    problems: list[YamlProblem] = []
    return _convert(node, name, problems, {}), problems


def _tab_before(path: Path, mark) -> bool:
    """Whether a tab is at or before the error's column (libyaml does not always say so)."""
    lines = Path(path).read_bytes().split(b"\n")
    return mark.line < len(lines) and b"\t" in lines[mark.line][: mark.column + 1]


def _reader_problem(path: Path, name: str) -> YamlProblem:
    """One line saying where the offending byte or character is (the reader's own message spans
    two lines and its position is a byte offset)."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return YamlProblem(Loc(name, line), f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")
    bad = re.search(r"[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", text)
    if bad is None:  # another encoding (UTF-16 with a BOM) that the reader refused
        return YamlProblem(Loc(name, 1), "not UTF-8 text; save the file as UTF-8")
    line = text.count("\n", 0, bad.start()) + 1
    return YamlProblem(Loc(name, line), f"character U+{ord(bad.group()):04X} is not allowed in YAML; remove it")


def _convert(node: yaml.Node, name: str, problems: list[YamlProblem], memo: dict,
             locs: dict[int, Loc] | None = None) -> Value:
    # Recursion depth is the YAML nesting depth (a handful for an inventory), not its length.
    # Hot path at 100k phones: one Loc per line (keys and values on a line share it), and scalar
    # values are made in the mapping loop without a call.
    if locs is None:
        locs = {}
    line = node.start_mark.line + 1
    loc = locs.get(line)
    if loc is None:
        loc = locs[line] = Loc(name, line)
    if isinstance(node, yaml.ScalarNode):
        return Scalar(node.value, node.tag, node.style in _QUOTED, loc)
    # An alias is the anchored node itself: convert each collection once (memo), so a "billion
    # laughs" document costs its size, and refuse an alias inside its own anchor (None: in progress).
    if id(node) in memo:
        if memo[id(node)] is None:
            problems.append(YamlProblem(loc, "an alias (*name) refers to the value that contains it; "
                                             "write the value out"))
            return Scalar("", _NULL_TAG, False, loc)
        return memo[id(node)]
    memo[id(node)] = None
    if isinstance(node, yaml.SequenceNode):
        seq = Seq(loc)
        seq.extend(_convert(item, name, problems, memo, locs) for item in node.value)
        memo[id(node)] = seq
        return seq
    mapping = Map(loc)
    mlocs = mapping.locs
    for knode, vnode in node.value:
        line = knode.start_mark.line + 1
        kloc = locs.get(line)
        if kloc is None:
            kloc = locs[line] = Loc(name, line)
        if not isinstance(knode, yaml.ScalarNode):
            problems.append(YamlProblem(kloc, "a mapping key must be a plain name"))
            continue
        key = knode.value
        if knode.tag == "tag:yaml.org,2002:merge":
            problems.append(YamlProblem(kloc, "YAML merge keys ('<<') are not supported; write the keys out"))
            continue
        if key in mapping:
            problems.append(
                YamlProblem(kloc, f"duplicate key '{key}' (first at line {mlocs[key].line}); "
                                  "remove one of them")
            )
            continue
        if type(vnode) is yaml.ScalarNode:
            line = vnode.start_mark.line + 1
            vloc = locs.get(line)
            if vloc is None:
                vloc = locs[line] = Loc(name, line)
            mapping[key] = Scalar(vnode.value, vnode.tag, vnode.style in _QUOTED, vloc)
        else:
            mapping[key] = _convert(vnode, name, problems, memo, locs)
        mlocs[key] = kloc
    memo[id(node)] = mapping
    return mapping


_QUOTED = frozenset(("'", '"', "|", ">"))
