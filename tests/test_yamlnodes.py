"""polygen.yamlnodes: scalars as written, duplicate keys refused, every value with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from polygen.yamlnodes import Loc, Map, Scalar, Seq, load_file


@pytest.fixture
def parse(tmp_path):
    def parse(text: str | bytes, name: str = "t.yaml"):
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return load_file(path, name)

    return parse


def one(parse, text: str):
    doc, problems = parse(text)
    assert problems == []
    return doc


# ------------------------------------------------------------------ YAML 1.1 traps
@pytest.mark.parametrize(
    ("source", "text", "kind"),
    [
        ("ext: 0100", "0100", "number"),  # YAML 1.1: octal 64
        ("secret: 012345", "012345", "number"),  # octal 5349
        ("secret: yes", "yes", "boolean"),  # True
        ("secret: off", "off", "boolean"),
        ("secret: 1e3", "1e3", "text"),  # a YAML 1.2 float; PyYAML's 1.1 rules want "1.0e+3"
        ("secret: 1.0e+3", "1.0e+3", "number"),
        ("secret: .inf", ".inf", "number"),
        # YAML 1.1 sexagesimal: PyYAML reads 12:34:56:12:34:56 as 9,797,296,..., another 1.1
        # parser also reads 00:04:12:34:56:78 that way; both must stay text
        ("mac: 12:34:56:12:34:56", "12:34:56:12:34:56", "number"),
        ("mac: 00:04:12:34:56:78", "00:04:12:34:56:78", "text"),
        ("mac: 100412345678", "100412345678", "number"),
        ("mac: 000412345678", "000412345678", "text"),  # not octal (has an 8), not decimal (leading 0)
        ("mac: 000412345670", "000412345670", "number"),  # octal!
        ("time: 01:00", "01:00", "text"),
        ("time: 1:00", "1:00", "number"),  # sexagesimal 60
        ("ext: 1_000", "1_000", "number"),
        ("ext: 0x1F", "0x1F", "number"),
        ("secret: ~", "~", "null"),
        ("secret: 2024-01-01", "2024-01-01", "value"),  # a timestamp
        ('ext: "0100"', "0100", "text"),
        ("secret: '012345'", "012345", "text"),
    ],
)
def test_scalars_keep_their_text(parse, source, text, kind):
    doc = one(parse, source + "\n")
    value = next(iter(doc.values()))
    assert isinstance(value, Scalar)
    assert value.text == text
    assert value.kind == kind


def test_unquoted_and_quoted_are_told_apart(parse):
    doc = one(parse, 'a: yes\nb: "yes"\nc: 0100\nd: ~\ne: "~"\nf: |\n  block\n')
    assert doc["a"].is_bool and doc["a"].as_bool() is True
    assert not doc["b"].is_bool and doc["b"].as_bool() is None and doc["b"].quoted
    assert doc["c"].is_int and not doc["c"].quoted
    assert doc["d"].is_null and not doc["e"].is_null
    assert doc["f"].quoted and doc["f"].text == "block\n"


@pytest.mark.parametrize(("word", "value"), [("Yes", True), ("ON", True), ("true", True),
                                              ("No", False), ("off", False), ("FALSE", False)])
def test_as_bool(parse, word, value):
    assert one(parse, f"a: {word}\n")["a"].as_bool() is value


# ------------------------------------------------------------------ structure and locations
def test_maps_and_seqs_carry_file_and_line(parse):
    doc = one(parse, "# comment\nphones:\n  - mac: 00:04:f2:00:00:01\n    lines: [\"1\", \"2\"]\n")
    assert isinstance(doc, Map) and doc.loc == Loc("t.yaml", 2)
    assert doc.locs["phones"] == Loc("t.yaml", 2)
    phones = doc["phones"]
    assert isinstance(phones, Seq) and phones.loc.line == 3
    phone = phones[0]
    assert phone.locs == {"mac": Loc("t.yaml", 3), "lines": Loc("t.yaml", 4)}
    assert [s.text for s in phone["lines"]] == ["1", "2"]
    assert str(phone["lines"][1].loc) == "t.yaml:4"


def test_keys_are_plain_strings_even_when_yaml_would_convert_them(parse):
    doc = one(parse, "secrets:\n  0100: a\n  yes: b\n  1001: c\n")
    assert list(doc["secrets"]) == ["0100", "yes", "1001"]


def test_empty_and_comment_only_files_are_nothing(parse):
    assert parse("") == (None, [])
    assert parse("# only a comment\n\n") == (None, [])


def test_default_display_name_is_the_path(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: [\n")
    _, problems = load_file(path)
    assert problems[0].loc.file == str(path)


# ------------------------------------------------------------------ refused input
def test_duplicate_key_names_both_lines(parse):
    doc, problems = parse("phones:\n  - mac: a\n    model: IP330\n    lines: []\n    model: VVX410\n")
    assert [(p.loc.line, p.message) for p in problems] == [
        (5, "duplicate key 'model' (first at line 3); remove one of them")
    ]
    assert doc["phones"][0]["model"].text == "IP330"  # the first is kept, the error reported


def test_duplicate_top_level_key(parse):
    _, problems = parse("extensions: []\nphones: []\nextensions: []\n")
    assert [(p.loc.line, p.message) for p in problems] == [
        (3, "duplicate key 'extensions' (first at line 1); remove one of them")
    ]


def test_merge_key_is_refused(parse):
    doc, problems = parse("base: &b {model: IP330}\nphone:\n  <<: *b\n  mac: x\n")
    assert [(p.loc.line, p.message) for p in problems] == [
        (3, "YAML merge keys ('<<') are not supported; write the keys out")
    ]
    assert "model" not in doc["phone"]


def test_complex_key_is_refused(parse):
    _, problems = parse("? [a, b]\n: c\nd: e\n")
    assert [(p.loc.line, p.message) for p in problems] == [(1, "a mapping key must be a plain name")]


def test_syntax_error_keeps_line_and_column(parse):
    doc, problems = parse('a: 1\nb: ["x"\nc: 2\n')
    assert doc is None
    assert [(p.loc.line, p.message) for p in problems] == [
        (3, "YAML syntax error (column 1): while parsing a flow sequence (begun at line 2) "
            "did not find expected ',' or ']'")
    ]


@pytest.mark.parametrize("text", ["a:\n\t- 1\n", "a:\n  b: 1\n\tc: 2\n"])
def test_tab_indentation_says_so(parse, text):
    doc, problems = parse(text)
    assert doc is None and len(problems) == 1
    assert problems[0].message.startswith("YAML syntax error")
    assert problems[0].message.endswith("; indent with spaces, not tabs")
    assert problems[0].loc.line == text.count("\n", 0, text.index("\t")) + 1


def test_multi_document_file(parse):
    _, problems = parse("---\na: 1\n---\nb: 2\n")
    assert [(p.loc.line, p.message) for p in problems] == [
        (3, "YAML syntax error (column 1): a second document ('---') in one file; move it to a file of its own")
    ]


def test_non_utf8_reports_the_line_of_the_byte(parse):
    _, problems = parse("a: 1\nb: 2\nname: Ren\xe9e\n".encode("latin-1"))
    assert [(p.loc.line, p.message) for p in problems] == [
        (3, "not UTF-8 text (byte 0xe9); save the file as UTF-8")
    ]


def test_raw_control_character_reports_its_line(parse):
    _, problems = parse("a: 1\nb: x\x07y\n")
    assert [(p.loc.line, p.message) for p in problems] == [
        (2, "character U+0007 is not allowed in YAML; remove it")
    ]


def test_utf16_with_bom_is_read(parse):
    doc = one(parse, "\ufeffa: Renée\n".encode("utf-16"))
    assert doc["a"].text == "Renée"


def test_recursive_alias_is_refused(parse):
    doc, problems = parse("a: &x\n  - 1\n  - *x\n")
    assert [p.message for p in problems] == [
        "an alias (*name) refers to the value that contains it; write the value out"
    ]
    assert doc["a"][0].text == "1" and doc["a"][1].is_null


def test_aliases_are_converted_once(parse):
    # "billion laughs": 10**6 leaves if every alias were expanded; shared values cost nothing.
    lines = ["l0: &l0 [a, b, c, d, e, f, g, h, i, j]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 7)]
    doc = one(parse, "\n".join(lines) + "\n")
    assert doc["l6"][0] is doc["l6"][9] is doc["l5"]
    assert doc["l1"][3] is doc["l0"]


def test_plain_aliases_still_work(parse):
    doc = one(parse, "common: &c {up.headsetMode: '1'}\nsite:\n  settings: *c\n")
    assert doc["site"]["settings"]["up.headsetMode"].text == "1"


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_file(Path(tmp_path / "nope.yaml"))
