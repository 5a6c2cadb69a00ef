"""The Jinja environment for phone files: strict, no HTML autoescaping, explicit XML filters.

Phone configs are XML, but HTML autoescaping is the wrong tool (it leaves control characters and
escapes for the wrong context), so templates escape explicitly: ``xa`` for attribute values,
``xt`` for element text, ``xc`` for text inside a comment. StrictUndefined turns a misspelt
variable into an error instead of an empty password.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

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
        self.templates = {}
        for n in TEMPLATE_NAMES:
            h.update(n.encode() + b"\0" + (self.dir / n).read_bytes() + b"\0")
            try:
                self.templates[n] = self.env.get_template(n)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{self.dir / n}:{exc.lineno}: template syntax error: {exc.message}") from exc
        self.digest = h.hexdigest()

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
