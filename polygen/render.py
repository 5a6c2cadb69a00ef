"""The Jinja environment for phone files: strict, no HTML autoescaping, explicit XML filters.

Phone configs are XML, but HTML autoescaping is the wrong tool (it leaves control characters and
escapes for the wrong context), so templates escape explicitly: ``xa`` for attribute values,
``xt`` for element text, ``xc`` for text inside a comment. StrictUndefined turns a misspelt
variable into an error instead of an empty password.

The shipped templates share ``_params.j2`` (one attribute a line); a template imports, includes or
extends other files of its own directory by name, and those are part of ``digest`` too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
from jinja2 import nodes

from polygen.errors import TemplateError

TEMPLATE_NAMES = ("bootstrap.cfg.j2", "phone.cfg.j2", "site.cfg.j2", "directory.xml.j2")

_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
                       "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def xml_attr(value) -> str:
    return str(value).translate(_ATTR)


def xml_text(value) -> str:
    return str(value).translate(_TEXT)


def xml_comment(value) -> str:
    # "--" may not appear inside a comment
    return str(value).replace("--", "- -").replace("-->", "- ->")


def _syntax_error(path: Path, exc: jinja2.TemplateSyntaxError) -> TemplateError:
    return TemplateError(f"{path}:{exc.lineno}: template syntax error: {exc.message}")


class Renderer:
    """Loads the templates once; ``digest`` changes whenever any template's source does."""

    def __init__(self, templates: Path):
        self.dir = Path(templates)
        missing = [n for n in TEMPLATE_NAMES if not (self.dir / n).is_file()]
        if missing:
            raise TemplateError(f"template directory '{self.dir}' lacks {', '.join(missing)}; "
                                "copy them from polygen's templates/ folder")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.env.filters.update(xa=xml_attr, xt=xml_text, xc=xml_comment)
        h = hashlib.blake2b(digest_size=16)
        for n, source in self._sources():
            h.update(n.encode() + b"\0" + source.encode() + b"\0")
        self.digest = h.hexdigest()
        self.templates = {}
        for n in TEMPLATE_NAMES:
            try:
                self.templates[n] = self.env.get_template(n)
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(self.dir / n, exc) from exc

    def _sources(self) -> list[tuple[str, str]]:
        """Each template with the files it imports, includes or extends, recursively: a file named
        by an expression could be any of the directory's, so then every *.j2 file counts."""
        found: dict[str, str] = {}
        todo = list(TEMPLATE_NAMES)
        dynamic = False
        while todo:
            n = todo.pop(0)
            if n in found:
                continue
            found[n] = source = self.env.loader.get_source(self.env, n)[0]
            try:
                tree = self.env.parse(source, n, str(self.dir / n))
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(self.dir / n, exc) from exc
            for node in tree.find_all((nodes.Extends, nodes.Import, nodes.FromImport, nodes.Include)):
                try:
                    names = node.template.as_const()
                except nodes.Impossible:
                    names = None
                for ref in names if isinstance(names, (list, tuple)) else [names]:
                    if not isinstance(ref, str):
                        dynamic = True
                    elif ref not in found and self._exists(n, node, ref):
                        todo.append(ref)
        if dynamic:
            for p in sorted(self.dir.rglob("*.j2")):
                rel = p.relative_to(self.dir)
                if rel.as_posix() not in found and not any(part.startswith(".") for part in rel.parts):
                    found[rel.as_posix()] = p.read_text(encoding="utf-8", errors="replace")
        return sorted(found.items())

    def _exists(self, name: str, node: nodes.Node, ref: str) -> bool:
        """Is ``ref`` there? An error naming the template that uses it unless it is optional."""
        try:
            self.env.loader.get_source(self.env, ref)
            return True
        except jinja2.TemplateNotFound:
            if isinstance(node, nodes.Include) and node.ignore_missing:
                return False
            raise TemplateError(f"{self.dir / name}:{node.lineno}: uses '{ref}', which is not in {self.dir}; "
                                "copy it from polygen's templates/ folder") from None

    def render(self, name: str, **context) -> str:
        try:
            return self.templates[name].render(**context)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.dir / name}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{self.dir / name}: {exc}") from exc

    def stream(self, name: str, **context):
        """Render piece by piece (for the company directory, which grows with the company)."""
        try:
            yield from self.templates[name].generate(**context)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.dir / name}: {exc.message}") from exc
