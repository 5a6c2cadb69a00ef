"""polygen.statuspage: the fleet status page.

The page is parsed with html.parser (tests/htmltree.py) for order, counts and escaping, then
loaded in a real headless chromium (tests/browser.py): the command line's --dump-dom and
--screenshot, and real mouse clicks and key presses over the DevTools pipe.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import struct
import unicodedata
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polygen.errors import PolygenError
from polygen.statuspage import COLUMNS, FIELDS, STATES, format_time, render_status_html, visible
from tests import browser
from tests.htmltree import parse


def phone(mac, state, **kw):
    row = dict.fromkeys(FIELDS)
    row.update(mac=mac, state=state, lines=[])
    row.update(kw)
    return row


FLEET = [
    phone("0004f2000330", "ok", model="IP330", reported_model="IP330", firmware="3.3.5.0000",
          target_release="3.3.5", first_seen="2026-11-01T08:00:00Z", last_seen="2026-11-29T10:58:21Z",
          last_boot="2026-11-28T06:00:00Z", address="192.0.2.30", lines=["1001"]),
    phone("0004f2000331", "stale", model="IP331", reported_model="IP331", firmware="3.3.5.0000",
          target_release="3.3.5", first_seen="2026-10-01T08:00:00Z", last_seen="2026-11-20T01:00:03Z",
          last_boot="2026-11-19T06:00:00Z", address="192.0.2.31", lines=["1002", "1003"],
          problem="not heard from for 9 days"),
    phone("64167f000410", "errors", model="VVX410", reported_model="VVX410", firmware="5.9.7.3480",
          target_release="5.9.7", first_seen="2026-11-01T08:00:00Z", last_seen="2026-11-29T10:58:22Z",
          last_boot="2026-11-29T10:50:00Z", address="192.0.2.41", lines=["1003", "1004", "1005"],
          problem="Registration failed: 403 Forbidden"),
    phone("0004f2abcdef", "unknown", reported_model="VVX450", firmware="6.4.3.5156",
          first_seen="2026-11-29T09:00:00Z", last_seen="2026-11-29T09:05:00Z", address="192.0.2.99",
          problem="asked for 000000000000.cfg; not in the inventory"),
    phone("0004f2004000", "mismatch", model="IP4000", reported_model="IP5000", firmware="4.0.15.1009",
          target_release="4.0.15", first_seen="2026-11-02T08:00:00Z", last_seen="2026-11-29T08:00:00Z",
          last_boot="2026-11-29T07:59:00Z", address="192.0.2.40", lines=["1006"],
          problem="the inventory says IP4000, the phone reports IP5000"),
    phone("0004f2000332", "never-seen", model="IP330", target_release="3.3.5", lines=["1007"]),
    phone("0004f2000333", "ok", model="IP330", reported_model="IP330", firmware="3.3.5.0000",
          target_release="3.3.5", first_seen="2026-11-01T08:00:00Z", last_seen="2026-11-29T10:30:00Z",
          last_boot="2026-11-27T06:00:00Z", address="192.0.2.33", lines=["1010"]),
]
# The oracles, worked out by hand from FLEET
BY_SEVERITY = ["0004f2abcdef", "0004f2004000", "64167f000410", "0004f2000331", "0004f2000332",
               "0004f2000330", "0004f2000333"]
BY_LAST_SEEN = ["0004f2000331", "0004f2004000", "0004f2abcdef", "0004f2000333", "0004f2000330",
                "64167f000410", "0004f2000332"]  # the never-seen phone (no time) last
BY_LAST_SEEN_DESC = ["64167f000410", "0004f2000330", "0004f2000333", "0004f2abcdef", "0004f2004000",
                     "0004f2000331", "0004f2000332"]  # still last: empty cells sort last both ways
COUNTS = {"unknown": 1, "mismatch": 1, "errors": 1, "stale": 1, "never-seen": 1, "ok": 2}
HOSTILE = "<img src=x onerror=alert(1)>&amp;\"'</td></tr><script>alert(2)</script>"


def render(rows=FLEET, **kw):
    args = dict(generation="g000042", commit="3f9c2e1a7b5d4c6e8f0a1b2c3d4e5f6a7b8c9d0e",
                generated_at="2026-11-29T11:00:00Z", site_name="Example Corp")
    args.update(kw)
    return render_status_html(rows, **args)


def body_rows(doc):
    return doc.by_id("phones").find("tbody").find_all("tr")


def cells_by_key(tr):
    tds = tr.find_all("td")
    assert len(tds) == len(COLUMNS)
    return {key: td for (key, _, _), td in zip(COLUMNS, tds)}


def macs(doc):
    return [cells_by_key(tr)["mac"].text() for tr in body_rows(doc)]


# ---------------------------------------------------------------- order, counts, header
def test_rows_come_most_severe_first_then_by_mac():
    shuffled = FLEET[:]
    random.Random(7).shuffle(shuffled)
    doc = parse(render(shuffled))
    assert macs(doc) == BY_SEVERITY
    assert [cells_by_key(tr)["state"].text() for tr in body_rows(doc)] == [
        "unknown", "mismatch", "errors", "stale", "never-seen", "ok", "ok"]
    assert [tr.attrs["class"] for tr in body_rows(doc)][:2] == ["s-unknown", "s-mismatch"]


def test_counts_per_state_are_chips_and_empty_states_are_disabled():
    doc = parse(render())
    assert {s: int(doc.by_id(f"count-{s}").text()) for s in STATES} == COUNTS
    chips = doc.find("nav").find_all("button")
    assert [c.attrs["data-state"] for c in chips] == ["", *STATES]
    assert chips[0].text() == "7 all" and chips[0].attrs["aria-pressed"] == "true"
    assert not any("disabled" in c.attrs for c in chips)

    doc = parse(render([r for r in FLEET if r["state"] in ("ok", "stale")]))
    assert {s: int(doc.by_id(f"count-{s}").text()) for s in STATES} == {
        "unknown": 0, "mismatch": 0, "errors": 0, "stale": 1, "never-seen": 0, "ok": 2}
    disabled = [c.attrs["data-state"] for c in doc.find("nav").find_all("button") if "disabled" in c.attrs]
    assert disabled == ["unknown", "mismatch", "errors", "never-seen"]
    assert doc.by_id("shown").text() == "3 phones"


def test_headers_are_buttons_in_column_order():
    doc = parse(render())
    ths = doc.by_id("phones").find("thead").find_all("th")
    assert [th.attrs["data-col"] for th in ths] == list(FIELDS)
    assert set(FIELDS) == {"mac", "state", "model", "reported_model", "firmware", "target_release",
                           "first_seen", "last_seen", "last_boot", "address", "lines", "problem"}
    assert all(th.find("button").attrs["type"] == "button" for th in ths)
    assert [th.attrs["aria-sort"] for th in ths] == ["ascending"] + ["none"] * (len(ths) - 1)


def test_header_shows_site_generation_commit_and_time():
    doc = parse(render())
    assert doc.find("h1").text() == "Phone status Example Corp"
    assert doc.find("title").text() == "Phone status: Example Corp"
    assert doc.by_id("generation").text() == "g000042"
    commit = doc.by_id("commit").find("span")
    assert commit.text() == "3f9c2e1a7b5d" and commit.attrs["title"] == "3f9c2e1a7b5d4c6e8f0a1b2c3d4e5f6a7b8c9d0e"
    when = doc.by_id("generated").find("time")
    assert when.attrs["datetime"] == "2026-11-29T11:00:00Z" and when.text() == "2026-11-29 11:00:00 UTC"

    doc = parse(render(generation=None, commit=None, site_name=None))
    assert doc.find("h1").text() == "Phone status"
    assert doc.by_id("generation").text() == "none built yet"
    assert doc.by_id("commit").text() == "unknown"


def test_cells_show_every_field():
    doc = parse(render())
    mismatch = cells_by_key(body_rows(doc)[1])
    assert {k: td.text() for k, td in mismatch.items()} == {
        "state": "mismatch", "mac": "0004f2004000", "problem": "the inventory says IP4000, the phone reports IP5000",
        "model": "IP4000", "reported_model": "IP5000", "firmware": "4.0.15.1009", "target_release": "4.0.15",
        "lines": "1006", "address": "192.0.2.40", "last_seen": "2026-11-29 08:00:00",
        "last_boot": "2026-11-29 07:59:00", "first_seen": "2026-11-02 08:00:00"}
    assert "x" in mismatch["reported_model"].classes()  # highlighted
    errors = cells_by_key(body_rows(doc)[2])
    assert errors["lines"].text() == "1003, 1004, 1005"
    assert "x" not in errors["reported_model"].classes()
    never = cells_by_key(body_rows(doc)[4])
    assert [k for k, td in never.items() if td.text() == ""] == [
        "problem", "reported_model", "firmware", "address", "last_seen", "last_boot", "first_seen"]


def test_missing_keys_render_as_empty_cells():
    doc = parse(render([{"mac": "0004f2000330", "state": "never-seen"}]))
    cells = cells_by_key(body_rows(doc)[0])
    assert cells["mac"].text() == "0004f2000330"
    assert all(td.text() == "" for k, td in cells.items() if k not in ("mac", "state"))


def test_times_are_shown_in_utc():
    assert format_time("2026-11-29T10:58:21Z") == "2026-11-29 10:58:21"
    assert format_time("2026-11-29T10:58:21+00:00") == "2026-11-29 10:58:21"
    assert format_time("2026-11-29T11:58:21.5+01:00") == "2026-11-29 10:58:21"
    assert format_time("yesterday") == "yesterday"  # kept, so nothing is hidden
    assert format_time(None) is None and format_time("") is None


def test_zero_phones_says_so():
    doc = parse(render([]))
    assert doc.by_id("shown").text() == "No phones: the inventory lists none and none has been heard from."
    assert doc.find_all("table") == []
    assert {s: doc.by_id(f"count-{s}").text() for s in STATES} == dict.fromkeys(STATES, "0")
    chips = doc.find("nav").find_all("button")
    assert chips[0].text() == "0 all" and all("disabled" in c.attrs for c in chips[1:])


@pytest.mark.parametrize("row, message", [
    ({"mac": "0004f2000330", "state": "fine"},
     "status row 0 (0004f2000330): unknown state 'fine'; expected one of "
     "unknown, mismatch, errors, stale, never-seen, ok"),
    ({"state": "ok"}, "status row 0: no mac"),
])
def test_bad_rows_are_errors(row, message):
    with pytest.raises(PolygenError) as exc:
        render([row])
    assert exc.value.message == message


# ---------------------------------------------------------------- escaping
def test_phone_text_is_escaped_in_every_field():
    row = {key: HOSTILE for key in FIELDS}
    row.update(mac="0004f2000330" + HOSTILE, state="mismatch", lines=[HOSTILE, "1001"])
    html = render([row], site_name=HOSTILE, generation=HOSTILE, commit=HOSTILE, generated_at=HOSTILE)
    doc = parse(html)
    assert doc.find_all("img") == []
    assert len(doc.find_all("script")) == 1 and len(doc.find_all("tr")) == 2
    cells = cells_by_key(body_rows(doc)[0])
    assert cells["state"].text() == "mismatch"
    for key in FIELDS:
        if key not in ("state", "mac", "lines"):
            assert cells[key].text() == HOSTILE, key
    assert cells["mac"].text() == "0004f2000330" + HOSTILE
    assert cells["lines"].text() == HOSTILE + ", 1001"
    assert doc.find("h1").find("span").text() == HOSTILE
    assert doc.find("title").text() == "Phone status: " + HOSTILE
    assert doc.by_id("generation").text() == HOSTILE
    assert doc.by_id("generated").text() == HOSTILE + " UTC"


def test_control_and_bidi_characters_are_shown_visibly():
    problem = "a\x1b[31mred\x00\nnext\u202eevil\u200b\x7f\x85 caf\u00e9\u00a0ok"
    doc = parse(render([phone("0004f2000330", "errors", problem=problem)]))
    cell = cells_by_key(body_rows(doc)[0])["problem"]
    marks = [(s.text(), s.attrs["title"]) for s in cell.find_all("span")]
    assert marks == [("ESC", "U+001B"), ("NUL", "U+0000"), ("LF", "U+000A"), ("U+202E", "U+202E"),
                     ("U+200B", "U+200B"), ("DEL", "U+007F"), ("U+0085", "U+0085")]
    assert all(s.classes() == {"c"} for s in cell.find_all("span"))
    assert cell.text() == "aESC[31mredNULLFnextU+202EevilU+200BDELU+0085 caf\u00e9\u00a0ok"
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", render(
        [phone("0004f2000330", "errors", problem=problem)]))


def test_lone_surrogates_from_undecodable_logs_still_encode():
    html = render([phone("0004f2000330", "errors", problem="bad byte \udcff here")])
    html.encode("utf-8")  # would raise on a surrogate
    assert '<span class="c" title="U+DCFF">U+DCFF</span>' in html


def _decode_visible(markup: str) -> str:
    """Invert visible(): text outside the marks as parsed, each mark by the code point in its title."""
    out = []
    for child in parse(f"<p>{markup}</p>").find("p").children:
        out.append(child if isinstance(child, str) else chr(int(child.attrs["title"][2:], 16)))
    return "".join(out)


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=60))
def test_visible_loses_nothing_and_leaves_only_printable_text(text):
    markup = str(visible(text))
    assert _decode_visible(markup) == text
    outside_marks = re.sub(r'<span class="c" title="U\+[0-9A-F]{4,6}">[^<]*</span>', "", markup)
    assert "<" not in outside_marks
    assert all(c.isprintable() or unicodedata.category(c) == "Zs" for c in outside_marks)


# ---------------------------------------------------------------- self-contained, CSP
def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_page_is_self_contained_and_pins_its_own_css_and_js():
    html = render()
    doc = parse(html)
    assert doc.doctype == "DOCTYPE html"
    (style,), (script,) = doc.find_all("style"), doc.find_all("script")
    data = resources.files("polygen") / "data"
    assert style.text() == (data / "status.css").read_text() and script.text() == (data / "status.js").read_text()
    csp = doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert csp == (f"default-src 'none'; style-src {_sha256(style.text())}; script-src {_sha256(script.text())}; "
                   "base-uri 'none'; form-action 'none'")
    attrs = {name for node in doc.iter() for name in node.attrs}
    assert not {a for a in attrs if a.startswith("on") or a == "style"}, "the CSP would block these"
    assert not re.search(r"""(src|href)\s*=|url\(|@import|https?://""", html), "no external assets"


def test_ten_thousand_phones_make_a_reasonable_page():
    rows = [phone(f"0004f2{i:06x}", STATES[i % 6], model="VVX410", reported_model="VVX410",
                  firmware="5.9.7.3480", target_release="5.9.7", first_seen="2026-11-01T08:00:00Z",
                  last_seen=f"2026-11-29T10:{i % 60:02d}:21Z", last_boot="2026-11-28T06:00:00Z",
                  address=f"10.0.{i // 256}.{i % 256}", lines=[str(1000 + i)],
                  problem=None if i % 6 == 5 else "Registration failed: 403 Forbidden")
            for i in range(10_000)]
    html = render(rows)
    assert len(html.encode()) < 400 * len(rows), "about 340 bytes a phone"
    doc = parse(html)
    assert len(body_rows(doc)) == 10_000
    assert int(doc.by_id("count-unknown").text()) == 1667 and int(doc.by_id("count-ok").text()) == 1666
    assert macs(doc)[:2] == ["0004f2000000", "0004f2000006"]


# ---------------------------------------------------------------- in a real browser
@pytest.fixture
def page(tmp_path):
    """Write a rendered page to a file; returns (file:// URL, profile dir) makers."""
    def write(html: str, name: str = "status.html") -> str:
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        return path.as_uri()
    return write


def dom_rows(doc):
    return [(cells_by_key(tr)["mac"].text(), "hidden" in tr.attrs) for tr in body_rows(doc)]


def test_browser_renders_counts_problems_first_and_a_screenshot(page, tmp_path):
    url = page(render())
    doc = parse(browser.dump_dom(url, tmp_path / "profile"))
    assert {s: int(doc.by_id(f"count-{s}").text()) for s in STATES} == COUNTS
    first = cells_by_key(body_rows(doc)[0])
    assert (first["state"].text(), first["mac"].text()) == ("unknown", "0004f2abcdef")
    assert doc.by_id("phones").attrs["data-view"] == "state"  # set by the script: it ran under the CSP

    png = browser.screenshot(url, tmp_path / "status.png", tmp_path / "profile")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 900)


def test_browser_honours_the_sort_and_filter_fragment(page, tmp_path):
    url = page(render())
    doc = parse(browser.dump_dom(url + "#sort=-last_seen", tmp_path / "profile"))
    assert dom_rows(doc) == [(mac, False) for mac in BY_LAST_SEEN_DESC]
    assert doc.find("th", data_col="last_seen").attrs["aria-sort"] == "descending"
    assert doc.find("th", data_col="state").attrs["aria-sort"] == "none"

    doc = parse(browser.dump_dom(url + "#sort=last_seen&state=ok", tmp_path / "profile"))
    assert dom_rows(doc) == [(mac, mac not in ("0004f2000333", "0004f2000330")) for mac in BY_LAST_SEEN]
    assert doc.by_id("shown").text() == "Showing 2 of 7 phones (ok)"
    assert doc.find("button", data_state="ok").attrs["aria-pressed"] == "true"

    doc = parse(browser.dump_dom(url + "#sort=nonsense&state=%3Cb%3E", tmp_path / "profile"))
    assert dom_rows(doc) == [(mac, False) for mac in BY_SEVERITY]  # unknown names are ignored


def test_browser_sorts_versions_numerically_and_macs_as_text(page, tmp_path):
    rows = [phone("0004f2002709", "ok", firmware="5.10.0.100", lines=["10001"], address="10.0.0.10"),
            phone("0004f200270f", "ok", firmware="5.9.7.3480", lines=["999"], address="10.0.0.9")]
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render(rows)))
        for fragment, expected in [("sort=firmware", ["0004f200270f", "0004f2002709"]),
                                   ("sort=-mac", ["0004f200270f", "0004f2002709"]),
                                   ("sort=lines", ["0004f200270f", "0004f2002709"]),
                                   ("sort=address", ["0004f200270f", "0004f2002709"]),
                                   ("sort=mac", ["0004f2002709", "0004f200270f"])]:
            b.evaluate(f"location.hash = {fragment!r}")  # a link followed within the page
            b.wait_for(f"document.getElementById('phones').dataset.view === {fragment[5:]!r}")
            assert _shown_rows(b) == expected, fragment
        assert b.problems == []


def _shown_rows(b):
    return b.evaluate("Array.from(document.querySelectorAll('#phones tbody tr'))"
                      ".filter(r => !r.hidden).map(r => r.cells[1].textContent)")


def test_browser_clicks_sort_and_filter(page, tmp_path):
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render()))
        assert _shown_rows(b) == BY_SEVERITY
        b.click('th[data-col="last_seen"] button')
        assert _shown_rows(b) == BY_LAST_SEEN
        assert b.evaluate("location.hash") == "#sort=last_seen"
        assert b.evaluate("document.querySelector('th[data-col=last_seen]').getAttribute('aria-sort')") == "ascending"
        b.click('th[data-col="last_seen"] button')
        assert _shown_rows(b) == BY_LAST_SEEN_DESC
        assert b.evaluate("location.hash") == "#sort=-last_seen"

        b.click('button[data-state="ok"]')
        assert _shown_rows(b) == ["0004f2000330", "0004f2000333"]
        assert b.evaluate("document.getElementById('shown').textContent") == "Showing 2 of 7 phones (ok)"
        assert b.evaluate("location.hash") == "#sort=-last_seen&state=ok"
        b.click('button[data-state="ok"]')  # a second click clears the filter
        assert _shown_rows(b) == BY_LAST_SEEN_DESC
        assert b.evaluate("document.getElementById('shown').textContent") == "7 phones"

        b.click('button[data-state="stale"]')
        b.click('button[data-state=""]')  # "all" clears too
        assert _shown_rows(b) == BY_LAST_SEEN_DESC
        b.click('th[data-col="state"] button')
        assert _shown_rows(b) == BY_SEVERITY
        assert b.evaluate("location.hash") == ""
        assert b.problems == []


def test_browser_sorts_from_the_keyboard(page, tmp_path):
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render()))
        for _ in range(len(STATES) + len(COLUMNS) + 2):  # chips, then the headers, in tab order
            b.press("Tab")
            if b.evaluate("document.activeElement.closest('th')?.dataset.col") == "last_seen":
                break
        else:
            pytest.fail("Tab never reached the Last seen header")
        b.press("Enter")
        assert _shown_rows(b) == BY_LAST_SEEN
        b.press(" ")
        assert _shown_rows(b) == BY_LAST_SEEN_DESC
        assert b.problems == []


def test_browser_csp_stops_markup_that_escaped_escaping(page, tmp_path):
    # Were an escape ever missed, the page's own policy must keep injected script from running.
    html = render().replace("<main>", "<main><script>document.title = 'owned'</script>"
                                      "<p style=\"color: red\" id=\"styled\">x</p>", 1)
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(html))
        assert b.evaluate("document.title") == "Phone status: Example Corp"
        assert b.evaluate("getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
        assert b.evaluate("document.getElementById('phones').dataset.view") == "state"  # ours ran
        violations = [p for p in b.problems if "Content Security Policy" in p]
        assert len(violations) == 2, b.problems


def test_browser_dark_scheme(page, tmp_path):
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render()))
        light = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        b.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = b.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert (light, dark) == ("rgb(246, 247, 249)", "rgb(17, 20, 24)")


def test_browser_empty_page_has_no_errors(page, tmp_path):
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render([])))
        assert b.evaluate("document.getElementById('shown').textContent").startswith("No phones")
        b.click('button[data-state=""]')
        assert b.problems == []


def test_browser_ten_thousand_phones(page, tmp_path):
    rows = [phone(f"0004f2{i:06x}", STATES[i % 6], last_seen=f"2026-11-{1 + i % 28:02d}T10:00:00Z")
            for i in range(10_000)]
    with browser.Browser(tmp_path / "profile") as b:
        b.open(page(render(rows)))
        # the header stays in view when the table scrolls
        b.evaluate("document.querySelector('.wrap').scrollTop = 5000")
        header, box = b.evaluate("[document.querySelector('th').getBoundingClientRect().top,"
                                 " document.querySelector('.wrap').getBoundingClientRect().top]")
        assert 0 <= header - box <= 2
        b.click('th[data-col="mac"] button')
        shown = _shown_rows(b)
        assert shown[:3] == ["0004f2000000", "0004f2000001", "0004f2000002"] and len(shown) == 10_000
        assert shown[-1] == f"0004f2{9999:06x}"  # hex digits sort as text: 00270f after 002709
        b.click('button[data-state="unknown"]')
        shown = _shown_rows(b)
        assert len(shown) == 1667 and shown[:2] == ["0004f2000000", "0004f2000006"]
        assert b.evaluate("document.getElementById('shown').textContent") == "Showing 1667 of 10000 phones (unknown)"
        assert b.problems == []
