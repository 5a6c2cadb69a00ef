"""Add entries to an existing inventory file, keeping its comments, quoting and layout.

ruamel.yaml's round-trip mode reads the file with its comments and the style of every scalar;
the new entries are parsed from the text ``yamltext`` makes, so they look like the ones a person
wrote, and appended to the list (or mapping) they belong to. The indentation of the file's lists
is measured first so that untouched lines come back as they were.
"""

from __future__ import annotations

import io
import re

from polygen.errors import PolygenError


def _yaml(text: str):
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long line
    mapping, sequence, offset = _indents(text)
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    return y


def _indents(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the file writes them; the example's style by default."""
    mapping, offset = 2, 2
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)[^\s#-][^:]*:\s*(#.*)?$", line)
        if not m or i + 1 >= len(lines):
            continue
        nxt = next((x for x in lines[i + 1:] if x.strip() and not x.lstrip().startswith("#")), "")
        inner = len(nxt) - len(nxt.lstrip())
        if nxt.lstrip().startswith("- "):
            offset = inner - len(m.group(1))
            break
        if inner > len(m.group(1)):
            mapping = inner - len(m.group(1))
    return mapping, offset + 2, offset


def _load(y, text: str, name: str):
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    try:
        doc = y.load(text)
    except YAMLError as exc:
        raise PolygenError(f"{name}: cannot read it to add to it: {' '.join(str(exc).split())}") from exc
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise PolygenError(f"{name}: not a mapping; cannot add to it")
    return doc


def _dump(y, doc) -> str:
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def add_items(text: str, section: str, items_text: str, name: str) -> str:
    """``text`` with the list items of ``items_text`` appended to its top-level list ``section``."""
    from ruamel.yaml.comments import CommentedSeq

    y = _yaml(text)
    doc = _load(y, text, name)
    new = y.load(items_text)
    current = doc.get(section)
    if current is None:
        doc[section] = current = CommentedSeq()
    elif not isinstance(current, list):
        raise PolygenError(f"{name}: '{section}:' is not a list; cannot add to it")
    current.extend(new)
    return _dump(y, doc)


def set_keys(text: str, section: str, values: dict, name: str) -> str:
    """``text`` with ``values`` set under its top-level mapping ``section`` (existing keys are
    replaced in place, new ones appended)."""
    from ruamel.yaml.comments import CommentedMap

    from polygen.importing import yamltext

    y = _yaml(text)
    doc = _load(y, text, name)
    new = y.load(yamltext.dump({section: values}))[section]
    current = doc.get(section)
    if current is None:
        doc[section] = current = CommentedMap()
    elif not isinstance(current, dict):
        raise PolygenError(f"{name}: '{section}:' is not a mapping; cannot add to it")
    for k, v in new.items():
        current[k] = v
    return _dump(y, doc)


def set_key(text: str, key: str, value: str, name: str) -> str:
    """``text`` with the top-level scalar ``key`` set to ``value``."""
    from polygen.importing import yamltext

    y = _yaml(text)
    doc = _load(y, text, name)
    doc[key] = y.load(yamltext.dump({key: value}))[key]
    return _dump(y, doc)
