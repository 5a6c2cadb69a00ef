"""The fleet status page: one self-contained HTML file, problems first.

``render_status_html(rows, ...)`` turns the rows of ``polygen status`` (one mapping per phone,
keys as in ``FIELDS``) into a page with no external assets: the CSS and JS from
``polygen/data/status.{css,js}`` are inlined and pinned by a Content-Security-Policy of their
hashes, so the page runs the same from a file, a web server or a mail attachment, and text a phone
sent can never become markup or script even if an escape were missed.

Phones send the text shown here (model, firmware, the problem from their logs), so every value
goes through ``visible()``: HTML-escaped (the template autoescapes too) and with control, format
and bidirectional characters replaced by visible marks, so a log line cannot hide or reorder text.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources

from markupsafe import Markup, escape

from polygen.errors import PolygenError

# Most severe first: the page's default order and the order of the counts at the top.
STATES = ("unknown", "mismatch", "errors", "stale", "never-seen", "ok")
# The rules of polygen.status, one line each (the chips' tooltips).
STATE_HELP = {
    "unknown": "asked the servers for its files, but is not in the inventory",
    "mismatch": "its User-Agent reports another model than the inventory gives it",
    "errors": "an error-level line or a registration failure in its logs within the stale period",
    "stale": "not seen within the stale period (polygen status --stale, 2 days by default)",
    "never-seen": "in the inventory, never seen by the servers",
    "ok": "seen within the stale period, nothing wrong",
}
_RANK = {state: i for i, state in enumerate(STATES)}

# (key, column heading, kind); the keys are the row keys of `polygen status --format json`, and
# the names the page's `#sort=<key>` fragment accepts. The kind picks how a cell is shown (state
# badge; mac/address monospace; model highlighted on a mismatch) and sorted: mac and time compare
# as plain text (hex digits are not numbers), the rest numerically (5.9.7 < 5.10.0, 1002 < 10001).
COLUMNS = (
    ("state", "State", "state"),
    ("mac", "MAC", "mac"),
    ("problem", "Problem", "problem"),
    ("model", "Model", "text"),
    ("reported_model", "Reported", "model"),
    ("firmware", "Firmware", "text"),
    ("target_release", "Target", "text"),
    ("lines", "Lines", "lines"),
    ("address", "Address", "address"),
    ("last_seen", "Last seen", "time"),
    ("last_boot", "Last boot", "time"),
    ("first_seen", "First seen", "time"),
)
FIELDS = tuple(key for key, _, _ in COLUMNS)

# C0 controls and DEL by their ASCII names (font-independent, unlike the Control Pictures block)
_C0_NAMES = dict(enumerate(
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US".split())) | {0x7F: "DEL"}


def visible(value) -> Markup:
    """``value`` as escaped HTML text in which every character that would not print as itself
    (control, format, bidi, separator, surrogate, private or unassigned; spaces such as NBSP do
    print) is shown as a marked tag: C0 controls by name (ESC), others as ``U+202E``."""
    text = str(value)
    if text.isprintable():  # the common case: nothing to mark
        return escape(text)
    out = []
    for ch in text:
        if ch.isprintable() or unicodedata.category(ch) == "Zs":
            out.append(escape(ch))
            continue
        cp = ord(ch)
        name = _C0_NAMES.get(cp, f"U+{cp:04X}")
        out.append(Markup('<span class="c" title="U+{:04X}">{}</span>').format(cp, name))
    return Markup("").join(out)


def format_time(value) -> str | None:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in UTC (sortable as text); a value that does not
    parse is returned as it came, so nothing a phone reported is hidden."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def sort_rows(rows: Sequence[Mapping]) -> list[dict]:
    """The rows as dicts with every key of ``FIELDS`` (missing ones None), most severe state first,
    then by MAC. A row without a MAC or with a state outside ``STATES`` is an error naming it."""
    checked = []
    for i, row in enumerate(rows):
        state = row.get("state")
        if not row.get("mac"):
            raise PolygenError(f"status row {i}: no mac")
        if state not in _RANK:
            raise PolygenError(f"status row {i} ({row['mac']}): unknown state {state!r}; "
                               f"expected one of {', '.join(STATES)}")
        checked.append({key: row.get(key) for key in FIELDS})
    return sorted(checked, key=lambda row: (_RANK[row["state"]], str(row["mac"])))


def count_states(rows: Sequence[Mapping]) -> dict[str, int]:
    """``{state: number of rows}`` for every state in ``STATES`` order, zeros included."""
    counts = dict.fromkeys(STATES, 0)
    for row in rows:
        counts[row["state"]] += 1
    return counts


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@functools.cache
def _assets():
    """The Jinja template (autoescape on) and the inline CSS/JS with their CSP hashes, loaded once."""
    import jinja2

    data = resources.files("polygen") / "data"
    css = (data / "status.css").read_text(encoding="utf-8")
    js = (data / "status.js").read_text(encoding="utf-8")
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(visible=visible, utc=format_time)
    template = env.from_string((data / "status.html.j2").read_text(encoding="utf-8"))
    csp = (f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
           "base-uri 'none'; form-action 'none'")
    return template, Markup(css), Markup(js), Markup(csp)


def render_status_html(
    rows: Sequence[Mapping],
    *,
    generation: str | None,
    commit: str | None,
    generated_at: str,
    site_name: str | None,
) -> str:
    """The status page for ``rows`` (one mapping per phone, keys ``FIELDS``; ``lines`` a list of
    extensions; times ISO 8601 UTC or None). ``generation``/``commit`` are what is being served
    (None: nothing built yet / not a git checkout); ``generated_at`` is shown as given."""
    ordered = sort_rows(rows)
    template, css, js, csp = _assets()
    return template.render(
        rows=ordered,
        counts=count_states(ordered),
        states=STATES,
        state_help=STATE_HELP,
        columns=COLUMNS,
        generation=generation,
        commit=commit,
        generated_at=generated_at,
        site_name=site_name,
        css=css,
        js=js,
        csp=csp,
    )
