"""polygen.dialplan: Polycom digit maps parsed, dialled key by key, generated and checked."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polygen.dialplan import (
    DEFAULT_DIGITMAP,
    DialPlanConflict,
    DialPlanError,
    DialResult,
    DigitMapError,
    Finding,
    check_extensions,
    dial,
    dial_many,
    generate_digitmap,
    parse_digitmap,
    parse_timeouts,
    sample_keys,
    timeout_list,
)

# ---------------------------------------------------------------------------------------------
# Examples from Polycom's documentation of the digit map
#   SoundPoint IP SIP 2.1 Technical Bulletin, "Digit Map" (https://manualsbrain.com/en/manuals/779205/?page=25)
#   SoundPoint IP / SoundStation IP Administrator's Guide SIP 3.1, p. A-19
#     (https://manualsdump.com/en/manuals/polycom-sip_3.1/3532/173)
#   CX5500 Administrator's Guide 1.1.0, "Understand Digit Map Rules"
#     (https://www.easymanua.ls/polycom/cx5500/manual/163087?p=82)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("digitmap", "dialled", "sent"), [
    # "remove 9 at the beginning"; the guide's sample number 914539400 has one digit more than
    # the rule's seven x, so we dial 9 and seven digits
    ("R9RRxxxxxxx", "94539400", "4539400"),
    ("RR604Rxxxxxxx", "4539400", "6044539400"),  # prepend 604 to all seven-digit numbers
    ("R9R604Rxxxxxxx", "94539400", "6044539400"),  # replace 9 with 604
    ("R999R911R", "999", "911"),  # convert 999 to 911
    ("xxR601R600Rxx", "1160122", "1160022"),
    ("xR60xR600Rxxxxxxx", "16092345678", "16002345678"),  # any 60x in the middle becomes 600
    ("R555R604R", "555", "604"),  # CX5500 guide
])
def test_documented_rewrites(digitmap, dialled, sent):
    r = dial(digitmap, dialled)
    assert (r.sent, r.when, r.after_digits, r.rule, r.verdict) == (sent, "immediately", len(dialled), 0, "rewritten")
    assert r.describe() == f'dialled {dialled}, the phone sends "{sent}" after {len(dialled)} digits (rule 1 "{digitmap}" rewrites it)'


@pytest.mark.parametrize("dialled", ["91112", "911123", "9111234", "91112345"])
def test_documented_period_matches_any_count_after_the_timeout(dialled):
    # "911xxx.T": 91112, 911123, 9111234 ... match once T seconds pass without a key
    r = dial("911xxx.T", dialled)
    assert (r.sent, r.when, r.timeout, r.verdict) == (dialled, "after-timeout", 3, "ok")


def test_documented_period_needs_the_elements_before_it():
    # xxx. is two x then any number of x: four digits do not match yet
    assert dial("911xxx.T", "9111").when == "on-send"


def test_default_map_documented_rules():
    # x11 goes out at once although the ten-digit rule could go on; 0 alone waits for T
    assert dial(DEFAULT_DIGITMAP, "911") == DialResult("911", "911", "immediately", 3, 0, "[2-9]11")
    assert dial(DEFAULT_DIGITMAP, "0") == DialResult("0", "0", "after-timeout", 1, 1, "0T", 3)
    assert dial(DEFAULT_DIGITMAP, "5551234567").verdict == "ok"
    assert dial(DEFAULT_DIGITMAP, "2000").when == "after-timeout"  # [2-9]xxxT


def test_community_faq_example_2xxx_only_four_digit_numbers_starting_with_2():
    # Polycom community FAQ on digit maps: "2xxx" sends 4-digit numbers starting with 2
    assert dial("2xxx", "2345").verdict == "ok"
    assert dial("2xxx", "3456").when == "immediately" and dial("2xxx", "3456").sent == "3"  # impossible
    assert dial("2xxx", "23456").verdict == "sent-early"


# ---------------------------------------------------------------------------------------------
# The default map with extensions (docs/polycom.md §10)
# ---------------------------------------------------------------------------------------------


def test_default_map_sends_1002_as_10():
    r = dial(DEFAULT_DIGITMAP, "1002")
    assert r == DialResult("1002", "10", "immediately", 2, impossible_at=2)
    assert r.verdict == "sent-early"
    assert r.describe() == 'dialled 1002, the phone sends "10" after 2 digits (impossible match)'


def test_default_map_sends_0100_as_010():
    # 0 matches 0T, 01 can still become 011..., 010 can match nothing
    r = dial(DEFAULT_DIGITMAP, "0100")
    assert (r.sent, r.when, r.after_digits, r.verdict) == ("010", "immediately", 3, "sent-early")


def test_impossible_handling_1_rejects_and_2_waits_for_send():
    r1 = dial(DEFAULT_DIGITMAP, "1002", 1)
    assert (r1.sent, r1.when, r1.after_digits, r1.verdict) == ("", "rejected", 2, "never-sent")
    assert r1.describe() == "dialled 1002, the phone plays the reorder tone after 2 digits (impossible match)"
    r2 = dial(DEFAULT_DIGITMAP, "1002", 2)
    assert (r2.sent, r2.when, r2.after_digits, r2.verdict) == ("1002", "on-send", 4, "never-sent")
    assert r2.describe() == "dialled 1002, the phone waits for Send (impossible match after 2 digits)"


def test_check_extensions_reports_each_broken_extension_with_its_index():
    findings = check_extensions(DEFAULT_DIGITMAP, ["2000", "1002", "5551234567", "0100"])
    assert findings == [
        Finding(1, "1002", "sent-early", 'dialled 1002, the phone sends "10" after 2 digits (impossible match)',
                dial(DEFAULT_DIGITMAP, "1002")),
        Finding(3, "0100", "sent-early", 'dialled 0100, the phone sends "010" after 3 digits (impossible match)',
                dial(DEFAULT_DIGITMAP, "0100")),
    ]


def test_check_extensions_rewritten_cut_short_and_never_sent():
    assert [f.message for f in check_extensions("R1002R2002R|xxxx", ["1002", "1003"])] == [
        'dialled 1002, the phone sends "2002" after 4 digits (rule 1 "R1002R2002R" rewrites it)']
    assert [f.message for f in check_extensions("1xx|xxxx", ["1002", "2002"])] == [
        'dialled 1002, the phone sends "100" after 3 digits (rule 1 "1xx" matches)']
    [f] = check_extensions("xxxxx", ["1002"])
    assert (f.verdict, f.message) == ("never-sent", "dialled 1002, no rule completes: the phone waits for more digits or Send")
    assert check_extensions("xxxxx", ["1002"], 1)[0].verdict == "never-sent"


def test_timeouts_are_per_rule():
    dm = parse_digitmap("0T|xxxxT|**x.T", "5|7")
    assert [r.timeout for r in dm.rules] == [5, 7, 3]  # a missing value is the firmware's 3
    assert dial(dm, "0").timeout == 5
    assert dial(dm, "1234").describe() == 'dialled 1234, the phone sends "1234" 7 s after the last digit (rule 2 "xxxxT" matches)'
    assert parse_timeouts("3|3|3|3|3|3|3") == [3] * 7


def test_empty_map_means_every_number_waits_for_send():
    assert parse_digitmap("").rules == ()
    assert dial("", "1002").when == "on-send"


def test_dial_refuses_non_keys_and_bad_handling():
    with pytest.raises(ValueError, match=r"cannot dial '10a2': only 0-9, \* and # are keys"):
        dial("xxxx", "10a2")
    with pytest.raises(ValueError, match="impossible_handling must be 0, 1 or 2, not 3"):
        dial("xxxx", "1002", 3)


# ---------------------------------------------------------------------------------------------
# Parser errors: where and what
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("digitmap", "position", "reason"), [
    ("[2-9", 0, "'[' is never closed by ']'"),
    ("12|.3", 3, "'.' must follow a digit, x or a set"),
    ("1x..", 3, "'.' must follow a digit, x or a set"),
    ("xR.9R1R", 2, "'.' must follow a digit, x or a set"),
    ("R9R1R.x", 5, "'.' must follow a digit, x or a set"),
    ("1T2", 2, "'T' must end the rule"),
    ("R1TR2R", 2, "'T' cannot be inside a rewrite"),
    ("xxR9R", 5, "a rewrite needs three R's: R<digits>R<replacement>R"),
    ("R9Rx1Rxx", 3, "'x' in a rewrite; between the second and third R only 0-9 * # + fit"),
    ("0T|[]x", 3, "empty set []"),
    ("[9-2]x", 1, "range 9-2: a range goes from a lower to a higher digit (e.g. 2-9)"),
    ("[2-9a]", 4, "'a' in a set; a set holds digits, * and # (e.g. [2-9] or [135])"),
    ("1XXX", 1, "unexpected 'X' (x is lower case)"),
    ("0xxxS", 4, "unexpected 'S' (protocol letters are not supported)"),
    ("xx x", 2, "unexpected ' '"),
    ("RR604R", 0, "the rule matches no digits"),
])
def test_parser_errors_name_position_and_rule(digitmap, position, reason):
    with pytest.raises(DigitMapError) as e:
        parse_digitmap(digitmap)
    assert (e.value.field, e.value.position) == ("dialplan.digitmap", position)
    assert e.value.reason.startswith(reason + " (rule ")


def test_parser_error_message():
    with pytest.raises(DigitMapError) as e:
        parse_digitmap("[2-9]11|.5")
    assert str(e.value) == "dialplan.digitmap: character 9: '.' must follow a digit, x or a set (rule 2 '.5'; the phone ignores it)"


@pytest.mark.parametrize(("digitmap", "position"), [("1||2", 2), ("12|", 3), ("|12", 0)])
def test_empty_rules_are_errors(digitmap, position):
    with pytest.raises(DigitMapError, match="is empty") as e:
        parse_digitmap(digitmap)
    assert e.value.position == position


def test_length_limits_and_bad_timeouts():
    with pytest.raises(DigitMapError, match="longer than 2560 characters"):
        parse_digitmap("|".join(["xxxx"] * 520))
    with pytest.raises(DigitMapError) as e:
        parse_digitmap("0T|xT|xxT", "3|a|3")
    assert (e.value.field, e.value.position, e.value.reason) == ("dialplan.digitmap.timeOut", 2, "'a' is not a whole number of seconds")


def test_commas_and_sets_with_star_parse():
    dm = parse_digitmap("9,1xxx|[*#]x")
    assert dial(dm, "91234").sent == "91234"
    assert dial(dm, "#5").when == "immediately"


# ---------------------------------------------------------------------------------------------
# Generated maps
# ---------------------------------------------------------------------------------------------

MIXED = ["100", "101", "155", "1500", "1600", "2000", "2999", "30000", "0100", "0123"]


def test_generated_map_is_compact_and_dials_every_mixed_extension_at_once():
    digitmap = generate_digitmap(MIXED, emergency=["911", "112"], outside_prefix="8",
                                 feature_codes=["*97", "*xx", "*72x.T"])
    # 3-digit numbers under 1 are refined so that 150/160 (the start of 1500/1600) stay free
    assert digitmap == "911|112|*97|*xx|*72x.T|10x|155|[0-2]xxx|3xxxx|8xx.T"
    assert check_extensions(digitmap, MIXED) == []
    for ext in MIXED:
        assert dial(digitmap, ext).when == "immediately", ext
    assert timeout_list(digitmap) == "|".join(["3"] * 10)
    assert timeout_list(digitmap, 5) == "|".join(["5"] * 10)


def test_generated_map_default_map_would_break_the_same_extensions():
    broken = {f.ext for f in check_extensions(DEFAULT_DIGITMAP, MIXED)}
    assert broken == {"100", "101", "155", "1500", "1600", "30000", "0100", "0123"}


def test_generated_map_groups_by_first_digit():
    assert generate_digitmap([str(n) for n in range(1000, 1100)] + ["200", "201"]) == "2xx|1xxx"
    assert generate_digitmap(["1000", "2000", "4000"]) == "[124]xxx"
    assert generate_digitmap(["1000", "2000", "3000", "4000"]) == "[1-4]xxx"


def test_emergency_goes_out_at_once_next_to_9xx_extensions():
    digitmap = generate_digitmap(["900", "950"], emergency=["911"])
    assert digitmap == "911|9xx"
    assert dial(digitmap, "911") == DialResult("911", "911", "immediately", 3, 0, "911")
    assert check_extensions(digitmap, ["900", "950"]) == []


def test_emergency_that_cuts_an_extension_is_a_conflict():
    with pytest.raises(DialPlanConflict) as e:
        generate_digitmap(["9000", "9115"], emergency=["911"])
    assert e.value.conflicts == ['extension 9115: dialled 9115, the phone sends "911" after 3 digits (rule 1 "911" matches)']
    with pytest.raises(DialPlanConflict) as e:
        generate_digitmap(["911"], emergency=["911"])
    assert e.value.conflicts == ["extension 911 is also the emergency number 911"]


def test_outside_prefix_sends_after_the_timeout():
    digitmap = generate_digitmap(["100", "2000"], emergency=["911"], outside_prefix="9")
    assert digitmap == "911|1xx|2xxx|9xx.T"
    r = dial(digitmap, "95551234")
    assert (r.sent, r.when, r.timeout, r.rule_text, r.verdict) == ("95551234", "after-timeout", 3, "9xx.T", "ok")
    assert dial(digitmap, "9").when == "on-send"  # the prefix alone is not a number
    assert dial(digitmap, "911").when == "immediately"  # emergency without the prefix


def test_extensions_under_the_outside_prefix_are_conflicts():
    with pytest.raises(DialPlanConflict) as e:
        generate_digitmap(["100", "9001", "901"], outside_prefix="9")
    assert str(e.value) == (
        "the dial plan has conflicts:\n"
        "  extension 901 begins with the outside-line prefix 9: outside numbers would be cut short\n"
        "  extension 9001 begins with the outside-line prefix 9: outside numbers would be cut short")
    with pytest.raises(DialPlanConflict, match="extension 0 is the start of the outside-line prefix 00"):
        generate_digitmap(["0", "100"], outside_prefix="00")


def test_prefix_extensions_and_feature_codes_are_conflicts():
    with pytest.raises(DialPlanConflict) as e:
        generate_digitmap(["150", "1500"])
    assert e.value.conflicts == ['extension 1500: dialled 1500, the phone sends "150" after 3 digits (rule 1 "150" matches)']
    with pytest.raises(DialPlanConflict) as e:
        generate_digitmap(["100"], feature_codes=["*9", "*97"])
    assert e.value.conflicts == ['feature code *97: dialled *97, the phone sends "*9" after 2 digits (rule 1 "*9" matches)']


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"extensions": ["10a2"]}, "extension '10a2' must be digits 0-9"),
    ({"extensions": [""]}, "extension '' must be digits 0-9"),
    ({"extensions": ["100"], "emergency": ["9-1-1"]}, "emergency number '9-1-1' must be digits 0-9"),
    ({"extensions": ["100"], "outside_prefix": ""}, "outside-line prefix '' must be digits 0-9"),
    ({"extensions": ["100"], "feature_codes": ["97"]}, "feature code '97' must be one rule starting with * or #"),
    ({"extensions": ["100"], "feature_codes": ["*9|*8"]}, "feature code '*9|*8' must be one rule starting with * or #"),
    ({"extensions": ["100"], "feature_codes": ["*[9"]}, "feature code '*[9': '[' is never closed by ']'"),
])
def test_generator_refuses_bad_input(kwargs, message):
    with pytest.raises(DialPlanError) as e:
        generate_digitmap(**kwargs)
    assert not isinstance(e.value, DialPlanConflict)
    assert str(e.value).startswith(message)


def test_generator_refuses_a_map_too_long_for_the_phone():
    # each 5-digit nnnn1 sits beside a 6-digit nnnn20, so no 5-digit branch can become x;
    # scattered n leave few branches to share a set
    sample = random.Random(7).sample(range(10000), 600)
    exts = [f"{n:04d}1" for n in sample] + [f"{n:04d}20" for n in sample]
    with pytest.raises(DialPlanError, match=r"^the digit map would be \d+ characters; phones take 2560$") as e:
        generate_digitmap(exts)
    assert not isinstance(e.value, DialPlanConflict)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

numbers = st.text("0123456789", min_size=1, max_size=6)


def _prefix_free(exts: list[str]) -> bool:
    return not any(a != b and b.startswith(a) for a in exts for b in exts)


@settings(max_examples=150, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=25), st.none() | st.text("0123456789", min_size=1, max_size=2))
def test_generated_maps_dial_every_extension_at_once(exts, prefix):
    clash = prefix is not None and any(e.startswith(prefix) or prefix.startswith(e) for e in exts)
    if not _prefix_free(exts) or clash:
        with pytest.raises(DialPlanConflict):
            generate_digitmap(exts, outside_prefix=prefix)
        return
    digitmap = generate_digitmap(exts, outside_prefix=prefix)
    for ext in exts:
        r = dial(digitmap, ext, 1)  # handling 1: an impossible match would show as rejected
        assert (r.sent, r.when, r.after_digits) == (ext, "immediately", len(ext))
    if prefix is not None:
        assert dial(digitmap, prefix + "5551234").when == "after-timeout"


# An independent reading of a rule: Python regular expressions for "matches" and for "could
# still match after more keys" (prefixes of the rule's language), compared with dial().
element = st.tuples(st.sampled_from(["1", "2", "*", "x", "[12]", "[2-3]"]), st.booleans())
rule_st = st.tuples(st.lists(element, min_size=1, max_size=4), st.booleans())


def _rx(atom: str) -> str:
    return "[0-9]" if atom == "x" else re.escape(atom) if len(atom) == 1 else atom


def _prefix_rx(elements) -> str:
    if not elements:
        return ""
    (atom, star), rest = elements[0], elements[1:]
    first = f"{_rx(atom)}*" if star else f"(?:{_rx(atom)})?"
    return f"(?:{first}|{_rx(atom)}{'*' if star else ''}{_prefix_rx(rest)})"


def _oracle(rules, digits):
    full = [(re.compile("".join(_rx(a) + ("*" if s else "") for a, s in els)), t) for els, t in rules]
    viable = [re.compile(_prefix_rx(els)) for els, _ in rules]
    for k in range(1, len(digits) + 1):
        typed = digits[:k]
        if any(not t and rx.fullmatch(typed) for rx, t in full):
            return typed, "immediately", k
        if not any(rx.fullmatch(typed) for rx in viable):
            return typed, "immediately", k
    if any(t and rx.fullmatch(digits) for rx, t in full):
        return digits, "after-timeout", len(digits)
    return digits, "on-send", len(digits)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_st, min_size=1, max_size=4), st.text("0123*", min_size=1, max_size=7))
def test_dial_agrees_with_regular_expressions(rules, digits):
    text = "|".join("".join(a + ("." if s else "") for a, s in els) + ("T" if t else "") for els, t in rules)
    r = dial(text, digits)
    assert (r.sent, r.when, r.after_digits) == _oracle(rules, digits), text


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_st, min_size=0, max_size=4), st.lists(st.text("0123*", min_size=1, max_size=6), max_size=12),
       st.sampled_from([0, 1, 2]))
def test_dial_many_is_dial_for_each_number(rules, many, handling):
    # numbers sharing a beginning share its steps: the results must not notice
    text = "|".join("".join(a + ("." if s else "") for a, s in els) + ("T" if t else "") for els, t in rules)
    assert dial_many(text, many, handling) == [dial(text, d, handling) for d in many], text


def test_sample_keys_of_a_feature_code():
    assert [sample_keys(c) for c in ("*97", "*72x.T", "#[2-4]1", "*6xx")] == ["*97", "*72", "#21", "*600"]
