"""A minimal element tree built with the standard library's html.parser, for asserting on pages.

``parse(html) -> Node``; a Node has ``tag``, ``attrs`` (dict), ``children`` (Nodes and strings),
``parent``, and ``iter()``, ``find_all(tag, **attrs)``, ``find(...)``, ``by_id(id)`` and ``text()``.
Character references are decoded (``convert_charrefs``), so ``text()`` is what a browser shows.
Unclosed or stray end tags raise: the pages under test are meant to be well-formed.
"""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None = None):
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs) -> list[Node]:
        attrs = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.iter()
                if (tag is None or n.tag == tag) and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def find(self, tag: str | None = None, **attrs) -> Node:
        found = self.find_all(tag, **attrs)
        if not found:
            raise LookupError(f"no <{tag or '*'}> with {attrs}")
        return found[0]

    def by_id(self, ident: str) -> Node:
        return self.find(id=ident)

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root
        self.doctype: str | None = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.cur.tag != tag:
            raise ValueError(f"</{tag}> closes <{self.cur.tag}> at line {self.getpos()[0]}")
        self.cur = self.cur.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    if builder.cur is not builder.root:
        raise ValueError(f"unclosed <{builder.cur.tag}>")
    builder.root.doctype = builder.doctype
    return builder.root
