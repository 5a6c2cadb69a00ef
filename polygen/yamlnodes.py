"""YAML to plain values that remember where they came from.

PyYAML's constructors resolve scalars with YAML 1.1 rules: ``0100`` becomes 64, ``yes`` becomes
True and ``00:04:f2:12:34:56`` a sexagesimal integer, and a repeated key silently wins. An
inventory must never change a SIP password or a MAC that way, so we stop at the node graph
(libyaml's composer when available) and convert it ourselves: scalars keep the text as written,
duplicate keys are errors, and every value carries its file and line.
"""

from __future__ import annotations

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
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return None, [YamlProblem(Loc(name, line), f"YAML syntax error: {msg}")]
    except yaml.YAMLError as exc:  # e.g. undecodable bytes
        return None, [YamlProblem(Loc(name, 1), f"YAML error: {exc}")]
    if node is None:
        return None, []
    problems: list[YamlProblem] = []
    return _convert(node, name, problems), problems


def _convert(node: yaml.Node, name: str, problems: list[YamlProblem]) -> Value:
    # Recursion depth is the YAML nesting depth (a handful for an inventory), not its length.
    loc = Loc(name, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        return Scalar(node.value, node.tag, node.style in ("'", '"', "|", ">"), loc)
    if isinstance(node, yaml.SequenceNode):
        seq = Seq(loc)
        seq.extend(_convert(item, name, problems) for item in node.value)
        return seq
    mapping = Map(loc)
    for knode, vnode in node.value:
        kloc = Loc(name, knode.start_mark.line + 1)
        if not isinstance(knode, yaml.ScalarNode):
            problems.append(YamlProblem(kloc, "a mapping key must be a plain name"))
            continue
        key = knode.value
        if knode.tag == "tag:yaml.org,2002:merge":
            problems.append(YamlProblem(kloc, "YAML merge keys ('<<') are not supported; write the keys out"))
            continue
        if key in mapping:
            problems.append(
                YamlProblem(kloc, f"duplicate key '{key}' (first at line {mapping.locs[key].line}); "
                                  "remove one of them")
            )
            continue
        mapping[key] = _convert(vnode, name, problems)
        mapping.locs[key] = kloc
    return mapping
