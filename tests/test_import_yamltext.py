"""polygen.importing.yamltext: what an import writes reads back as the same text."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from polygen.importing import yamltext
from polygen.yamlnodes import load_file

# what a YAML file can carry at all (the emitter escapes the rest)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT)
@example("0100", "yes")
@example("00:04:f2:12:34:56", "Null")
@example("p<ss>&\"word", " lead and trail ")
@example("a: b # c", "\x85\u2028\x7f\ufeff")
@example("1:00", "~")
def test_values_read_back_as_written(tmp_path_factory, a, b):
    path = tmp_path_factory.mktemp("y") / "x.yaml"
    doc = {"extensions": [{"ext": a, "first_name": b, "label": b}], "site": {"settings": {"x.y": a}, "name": b}}
    path.write_text(yamltext.dump(doc, "a comment\nof two lines"), encoding="utf-8")
    node, problems = load_file(path)
    assert problems == []
    item = node["extensions"][0]
    assert (item["ext"].text, item["first_name"].text, item["label"].text) == (a, b, b)
    assert (node["site"]["settings"]["x.y"].text, node["site"]["name"].text) == (a, b)


def test_names_stay_plain_and_numbers_quoted():
    assert yamltext.dump({"extensions": [{"ext": "0100", "first_name": "Ada", "last_name": "yes",
                                          "display_name": "Front Desk", "lines": ["1", "2"]}]}) == (
        'extensions:\n  - ext: "0100"\n    first_name: Ada\n    last_name: "yes"\n'
        '    display_name: Front Desk\n    lines: ["1", "2"]\n')

