"""polygen.dialcheck through load(): the site's digit map, and every number dialled on every phone's
effective map, each problem at the line that wrote the number."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from polygen.dialplan import dial
from polygen.errors import InventoryError
from polygen.inventory import load

from .test_inventory import SITE

EXTS = """\
extensions:
  - {ext: "1001", first_name: Ada, secret: s1}
  - {ext: "1002", first_name: Charles, secret: s2}
  - {ext: "2001", first_name: Grace, secret: s3}
"""
PHONES = """\
phones:
  - {mac: 64:16:7f:00:00:01, model: VVX410, lines: ["1001"]}
  - {mac: 64:16:7f:00:00:02, model: VVX410, lines: ["1002"]}
"""


@pytest.fixture
def inv(tmp_path, monkeypatch):
    """inv(site=..., exts=..., phones=...) writes tmp/inv (cwd = tmp): problems name 'inv/<file>'."""
    monkeypatch.chdir(tmp_path)

    def write(site: str = "", exts: str = EXTS, phones: str = PHONES) -> Path:
        d = Path("inv")
        d.mkdir(exist_ok=True)
        (d / "site.yaml").write_text(SITE + textwrap.indent(textwrap.dedent(site), "  "))
        (d / "extensions.yaml").write_text(textwrap.dedent(exts))
        (d / "phones.yaml").write_text(textwrap.dedent(phones))
        return d

    return write


def problems(d: Path) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load(d, env={})
    return [str(p) for p in exc.value.problems]


def for_1001_and_1002(message: str) -> list[str]:
    """The problem ``message`` (with {ext}) at each of the extensions 1001 and 1002."""
    return [f"inv/extensions.yaml:{line}: extensions[{i}].ext: " + message.format(ext=ext)
            for i, (line, ext) in enumerate([(2, "1001"), (3, "1002")])]


def dials_all(digitmap: str, numbers) -> bool:
    return all(dial(digitmap, n, 2).sent == n for n in numbers)


# ------------------------------------------------------------------ the generated map
def test_without_dialing_the_map_covers_the_extensions(inv):
    site = load(inv(), env={}).site
    assert (site.digitmap, site.digitmap_timeout) == ("[12]xxx", "3")


def test_dialing_keys_voicemail_and_feature_codes_are_in_the_map(inv):
    site = load(inv("""\
      voicemail: "*97"
      dialing:
        emergency: ["911", "112"]
        outside_prefix: "0"
        feature_codes: ["*72x.T", "*73"]
    """), env={}).site
    assert site.digitmap == "911|112|*72x.T|*73|*97|[12]xxx|0xx.T"
    assert dials_all(site.digitmap, ["1001", "1002", "2001", "911", "112", "*73", "*97"])


def test_a_numeric_voicemail_is_dialled_like_an_extension(inv):
    site = load(inv('voicemail: "8500"\n'), env={}).site
    assert site.digitmap == "[128]xxx" and dials_all(site.digitmap, ["8500"])


def test_user_names_are_not_dialled(inv):
    exts = EXTS + '  - {ext: alice, first_name: Alice, secret: s4}\n  - {ext: "9a", first_name: B, secret: s5}\n'
    assert load(inv(exts=exts), env={}).site.digitmap == "[12]xxx"


def test_nothing_to_dial_writes_no_map(inv):
    exts = 'extensions:\n  - {ext: alice, first_name: Alice, secret: s4}\n'
    site = load(inv(exts=exts, phones="phones: []\n"), env={}).site
    assert site.digitmap is None


# ------------------------------------------------------------------ conflicts, at their lines
def test_conflicts_are_reported_at_the_extension_and_the_dialing_key(inv):
    exts = EXTS + '  - {ext: "91", first_name: Lobby, secret: s4}\n'
    assert problems(inv('dialing: {emergency: ["911"], outside_prefix: "9"}\n', exts)) == [
        "inv/extensions.yaml:5: extensions[3].ext: extension 91 begins with the outside-line prefix 9: outside "
        "numbers would be cut short; renumber the extension or change site.dialing.outside_prefix",
        "inv/site.yaml:6: site.dialing.emergency[0]: 911 is cut short by 91 (inv/extensions.yaml:5), which is "
        'dialled the moment it is complete: dialled 911, the phone sends "91" after 2 digits '
        '(rule 2 "91" matches); renumber one of them',
    ]


def test_an_extension_that_begins_another_cuts_it_short(inv):
    exts = EXTS + '  - {ext: "100", first_name: Lobby, secret: s4}\n'
    assert problems(inv(exts=exts)) == for_1001_and_1002(
        '{ext} is cut short by 100 (inv/extensions.yaml:5), which is dialled the moment it is complete: '
        'dialled {ext}, the phone sends "100" after 3 digits (rule 1 "100" matches); renumber one of them')


def test_an_extension_that_is_an_emergency_number(inv):
    exts = EXTS + '  - {ext: "112", first_name: Lobby, secret: s4}\n'
    assert problems(inv('dialing: {emergency: "112"}\n', exts)) == [
        "inv/extensions.yaml:5: extensions[3].ext: extension 112 is also the emergency number 112; "
        "renumber the extension"]


def test_a_voicemail_number_that_cuts_an_extension_short(inv):
    assert problems(inv('voicemail: "100"\n')) == [
        "inv/extensions.yaml:2: extensions[0].ext: 1001 is cut short by 100 (inv/site.yaml:6), which is dialled "
        'the moment it is complete: dialled 1001, the phone sends "100" after 3 digits (rule 1 "100" matches); '
        "renumber one of them",
        "inv/extensions.yaml:3: extensions[1].ext: 1002 is cut short by 100 (inv/site.yaml:6), which is dialled "
        'the moment it is complete: dialled 1002, the phone sends "100" after 3 digits (rule 1 "100" matches); '
        "renumber one of them"]


# ------------------------------------------------------------------ maps the admin writes
def test_the_admins_map_is_used_as_written_and_checked(inv):
    d = inv('voicemail: "*97"\ndialing: {emergency: ["911"], digitmap: "[2-9]11|1xxx"}\n')
    assert problems(d) == [
        "inv/extensions.yaml:4: extensions[2].ext: 2001 is never sent on every phone (site.dialing.digitmap): "
        "dialled 2001, the phone waits for Send (impossible match after 2 digits); "
        "give the digit map a rule for it (e.g. 2xxx)",
        "inv/site.yaml:6: site.voicemail: *97 is never sent on every phone (site.dialing.digitmap): dialled *97, "
        "the phone waits for Send (impossible match after 1 digit); give the digit map a rule for it (e.g. *97)",
    ]
    ok = inv('voicemail: "*97"\ndialing: {emergency: ["911"], digitmap: "911|*97|[12]xxx|9xx.T"}\n')
    site = load(ok, env={}).site
    assert (site.digitmap, site.digitmap_timeout) == ("911|*97|[12]xxx|9xx.T", "3|3|3|3")


def test_the_default_map_in_the_site_settings_sends_1002_as_10(inv):
    d = inv("""\
      settings:
        dialplan.digitmap: "[2-9]11|0T|011xxx.T|[0-1][2-9]xxxxxxxxx|[2-9]xxxxxxxxx|[2-9]xxxT|**x.T"
        dialplan.impossibleMatchHandling: "0"
    """)
    assert problems(d) == for_1001_and_1002(
        "{ext} is cut short on every phone (site.settings.dialplan.digitmap, "
        'site.settings.dialplan.impossibleMatchHandling): dialled {ext}, the phone sends "10" after 2 digits '
        "(impossible match); give the digit map a rule for it (e.g. 1xxx)")


def test_a_phones_own_map_is_checked_with_its_location(inv):
    phones = PHONES + """\
  - mac: 64:16:7f:00:00:03
    model: VVX410
    lines: ["2001"]
    settings:
      dialplan.digitmap: "1xxx|2xxx"
"""
    assert problems(inv('voicemail: "*97"\n', phones=phones)) == [
        "inv/site.yaml:6: site.voicemail: *97 is never sent on phone 64167f000003 (dialplan.digitmap at "
        "inv/phones.yaml:8): dialled *97, the phone waits for Send (impossible match after 1 digit); "
        "give the digit map a rule for it (e.g. *97)"]


def test_phones_with_the_same_map_are_reported_once(inv):
    phones = "phones:\n" + "".join(
        f'  - {{mac: 64:16:7f:00:00:0{n}, model: VVX410, lines: [], settings: {{dialplan.digitmap: "1xxx"}}}}\n'
        for n in range(1, 6))
    assert problems(inv(phones=phones)) == [
        "inv/extensions.yaml:4: extensions[2].ext: 2001 is never sent on 5 phones (64167f000001, 64167f000002, "
        "64167f000003, …; their dialplan.digitmap at inv/phones.yaml:2 and elsewhere): dialled 2001, the phone "
        "waits for Send (impossible match after 1 digit); give the digit map a rule for it (e.g. 2xxx)"]


def test_a_phones_handling_does_not_repeat_what_the_site_map_gets_wrong(inv):
    phones = PHONES + '  - {mac: 64:16:7f:00:00:03, model: VVX410, lines: [], ' \
                      'settings: {dialplan.impossibleMatchHandling: "1"}}\n'
    # 2001 fails on the site's map (reported once, there); the phone's handling adds nothing to fix
    assert problems(inv('dialing: {digitmap: "1xxx"}\n', phones=phones)) == [
        "inv/extensions.yaml:4: extensions[2].ext: 2001 is never sent on every phone (site.dialing.digitmap): "
        "dialled 2001, the phone waits for Send (impossible match after 1 digit); "
        "give the digit map a rule for it (e.g. 2xxx)"]


def test_a_phones_handling_that_breaks_a_number(inv):
    phones = PHONES + '  - {mac: 64:16:7f:00:00:03, model: VVX410, lines: [], ' \
                      'settings: {dialplan.impossibleMatchHandling: "2"}}\n'
    # 1001 matches no rule at its last key: handling 0 (the site's) sends it, 2 waits for Send
    d = inv('dialing: {digitmap: "1000|2001"}\nsettings: {dialplan.impossibleMatchHandling: "0"}\n', phones=phones)
    assert problems(d) == for_1001_and_1002(
        "{ext} is never sent on phone 64167f000003 (dialplan.impossibleMatchHandling at inv/phones.yaml:4): "
        "dialled {ext}, the phone waits for Send (impossible match after 4 digits); "
        "give the digit map a rule for it (e.g. 1xxx)")


def test_settings_the_phone_would_not_take(inv):
    phones = PHONES + """\
  - mac: 64:16:7f:00:00:03
    model: VVX410
    lines: []
    settings:
      dialplan.digitmap: "1xxx|[2-"
      dialplan.impossibleMatchHandling: "3"
      dialplan.digitmap.timeOut: "3|x"
"""
    assert problems(inv(phones=phones)) == [
        "inv/phones.yaml:8: phones[2].settings.dialplan.digitmap: character 6: '[' is never closed by ']' "
        "(rule 2 '[2-'; the phone ignores it)",
        "inv/phones.yaml:9: phones[2].settings.dialplan.impossibleMatchHandling: expected 0, 1 or 2, found '3'",
        "inv/phones.yaml:10: phones[2].settings.dialplan.digitmap.timeOut: character 3: 'x' is not a whole "
        "number of seconds",
    ]


def test_an_outside_prefix_beside_the_admins_map_is_ignored_with_a_warning(inv):
    inv_ = load(inv('dialing: {outside_prefix: "9", digitmap: "[12]xxx|9xx.T"}\n'), env={})
    assert [str(w) for w in inv_.warnings] == [
        "inv/site.yaml:6: site.dialing.outside_prefix: warning: ignored: site.dialing.digitmap is used as "
        "written; give it a rule for outside numbers (e.g. 9xx.T)"]


# ------------------------------------------------------------------ what site.dialing may hold
def test_bad_dialing_values(inv):
    d = inv("""\
      voicemail: "mailbox"
      dialing:
        emergency: ["9-11", "112"]
        outside_prefix: nine
        feature_codes: ["97", "*7[2-"]
        digitmap: "1xxx|X"
        speed: 3
    """)
    assert problems(d) == [
        "inv/site.yaml:6: site.voicemail: 'mailbox' is not a number the phones can dial: digits, or * or # "
        'then digits (e.g. "*97", quoted), at most 64 characters',
        "inv/site.yaml:8: site.dialing.emergency[0]: '9-11' must be digits 0-9",
        "inv/site.yaml:9: site.dialing.outside_prefix: 'nine' must be digits 0-9 (e.g. \"9\")",
        "inv/site.yaml:10: site.dialing.feature_codes[0]: '97' must be one digit-map rule starting with * or # "
        '(e.g. "*97" or "*7x"), quoted',
        "inv/site.yaml:10: site.dialing.feature_codes[1]: '*7[2-': '[' is never closed by ']' "
        "(rule 1 '*7[2-'; the phone ignores it)",
        "inv/site.yaml:11: site.dialing.digitmap: character 6: unexpected 'X' (x is lower case) "
        "(rule 2 'X'; the phone ignores it)",
        "inv/site.yaml:12: site.dialing.speed: unknown key 'speed'; allowed: emergency, outside_prefix, "
        "feature_codes, digitmap",
    ]
