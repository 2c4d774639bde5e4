"""Question banks: the bundled banks, the domain API and every kind of bad bank file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from surveys.banks import (
    Bank,
    BankError,
    BankSchema,
    UnknownBankError,
    bundled_bank_paths,
    get_bank,
    list_banks,
    load_bank,
    parse_bank,
)

BUNDLED = sorted(bundled_bank_paths())

MINIMAL = """\
schema_version: 1
key: mini
version: "1"
title: Mini bank
language: en
scale:
  labels: {1: Never, 2: Sometimes, 3: Often}
  na_label: Not able to judge
competencies:
  - id: listening
    title: Listening
    items:
      - id: listening.attentive
        self: I listen attentively.
        others: "{name} listens attentively."
        required: true
      - id: listening.summarises
        self: I summarise what I heard {{sic}}.
        others: "{name} summarises what they heard."
  - id: clarity
    title: Clarity
    description: Says things plainly.
    items:
      - id: clarity.plain
        self: I use plain words.
        others: "{name} uses plain words."
open_questions:
  - id: strengths
    self: What do you do well?
    others: What does {name} do well?
translations:
  de:
    title: Mini-Fragebogen
    scale: {labels: {1: Nie}}
    competencies:
      listening: {title: Zuhören}
    items:
      listening.attentive: {others: "{name} hört aufmerksam zu."}
    open_questions:
      strengths: {self: "Was können Sie gut?"}
"""


def write(tmp_path: Path, text: str, name: str = "bank.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal_doc() -> dict:
    return yaml.safe_load(MINIMAL)


def errors_of(data, source: str = "bank.yaml") -> BankError:
    with pytest.raises(BankError) as info:
        parse_bank(data, source=source)
    return info.value


# -- bundled banks -----------------------------------------------------------------------------


def test_there_are_the_three_bundled_banks():
    assert BUNDLED == ["individual_contributor", "leadership", "pulse"]


@pytest.mark.parametrize("key", BUNDLED)
def test_every_bundled_bank_loads(key):
    bank = load_bank(bundled_bank_paths()[key])
    assert bank.key == key
    assert bank.scale.values == (1, 2, 3, 4, 5)
    assert bank.scale.na_label == "Not able to judge"
    assert "de" in bank.languages
    for item in bank.items:
        assert item.self_text.startswith(("I ", "The work I", "People can disagree with me"))
        assert "{name}" in item.others_text


@pytest.mark.parametrize("key", BUNDLED)
def test_bundled_translations_are_complete(key):
    bank = get_bank(key)
    for lang, translation in bank.translations.items():
        assert set(translation["items"]) == {item.id for item in bank.items}, lang
        for texts in translation["items"].values():
            assert set(texts) == {"self_text", "others_text"}
        assert set(translation["competencies"]) == {c.id for c in bank.competencies}
        assert set(translation["open_questions"]) == {q.id for q in bank.open_questions}
        assert set(translation["scale"]["labels"]) == set(bank.scale.values)


@pytest.mark.parametrize("key", BUNDLED)
def test_bundled_items_hold_one_idea_each(key):
    """Guard against double-barrelled items ("listens and explains") and absolutes."""
    for item in get_bank(key).items:
        for text in (item.self_text, item.others_text):
            assert not re.search(r"\b(and|or|always|never)\b", text, re.IGNORECASE), item.id


def test_bundled_bank_sizes():
    leadership, contributor, pulse = (
        get_bank(k) for k in ("leadership", "individual_contributor", "pulse")
    )
    assert len(leadership.competencies) >= 8
    assert len(leadership.items) >= 40
    assert 3 <= len(leadership.open_questions) <= 4
    assert leadership.languages == ("en", "de", "fr")
    assert 6 <= len(contributor.competencies) <= 7
    assert 28 <= len(contributor.items) <= 35
    assert len(pulse.items) <= 12
    assert len(pulse.open_questions) == 2
    # Raters may skip items in the full banks; the pulse insists on a few.
    assert not any(item.required for item in leadership.items + contributor.items)
    assert any(item.required for item in pulse.items)


def test_list_banks_is_sorted_by_key():
    assert [bank.key for bank in list_banks()] == BUNDLED


def test_get_bank_is_cached():
    assert get_bank("pulse") is get_bank("pulse")


def test_get_bank_unknown_key_lists_the_available_ones():
    with pytest.raises(UnknownBankError) as info:
        get_bank("leadrship")
    assert isinstance(info.value, LookupError)
    assert "'leadrship'" in str(info.value)
    assert "individual_contributor, leadership, pulse" in str(info.value)


def test_surveys_banks_does_not_import_flask():
    code = "import sys, surveys.banks; sys.exit('flask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- domain API --------------------------------------------------------------------------------


def test_parse_builds_the_domain_objects():
    bank = parse_bank(MINIMAL)
    assert [c.id for c in bank.competencies] == ["listening", "clarity"]
    assert [i.id for i in bank.items] == [
        "listening.attentive",
        "listening.summarises",
        "clarity.plain",
    ]
    assert bank.item_competency == {
        "listening.attentive": "listening",
        "listening.summarises": "listening",
        "clarity.plain": "clarity",
    }
    assert bank.item("clarity.plain").competency_id == "clarity"
    assert bank.items[0].required is True
    assert bank.items[1].required is False
    assert bank.competencies[0].description == ""
    assert bank.description == ""
    assert (bank.scale.min, bank.scale.max, bank.scale.values) == (1, 3, (1, 2, 3))
    assert bank.languages == ("en", "de")


def test_text_fills_in_the_name_for_others_only_where_asked():
    bank = parse_bank(MINIMAL)
    item = bank.items[0]
    assert item.text("self", "Ana") == "I listen attentively."
    assert item.text("peer", "Ana") == "Ana listens attentively."
    assert item.text("manager", "Ana") == "Ana listens attentively."
    assert bank.items[1].text("self", "Ana") == "I summarise what I heard {sic}."
    assert bank.open_questions[0].text("others", "{x}") == "What does {x} do well?"


def test_localized_falls_back_per_text():
    bank = parse_bank(MINIMAL)
    de = bank.localized("de")
    assert de.language == "de"
    assert de.title == "Mini-Fragebogen"
    assert de.scale.labels == {1: "Nie", 2: "Sometimes", 3: "Often"}
    assert de.scale.na_label == "Not able to judge"
    assert de.competencies[0].title == "Zuhören"
    assert de.competencies[1].title == "Clarity"
    assert de.items[0].text("others", "Ana") == "Ana hört aufmerksam zu."
    assert de.items[0].text("self", "Ana") == "I listen attentively."
    assert de.items[0].required is True
    assert de.open_questions[0].self_text == "Was können Sie gut?"
    assert de.open_questions[0].others_text == "What does {name} do well?"
    assert [i.id for i in de.items] == [i.id for i in bank.items]
    assert de.item_competency == bank.item_competency


def test_localized_matches_regional_tags_and_falls_back_entirely():
    bank = parse_bank(MINIMAL)
    assert bank.localized("de-CH").language == "de"
    assert bank.localized("DE").language == "de"
    assert bank.localized("en") is bank
    assert bank.localized("en-GB") is bank
    assert bank.localized("fr") is bank


@pytest.mark.parametrize("key", BUNDLED)
def test_snapshot_round_trips_through_json(key):
    bank = get_bank(key)
    snapshot = bank.to_snapshot()
    restored = Bank.from_snapshot(json.loads(json.dumps(snapshot)))
    assert restored == bank
    assert restored.to_snapshot() == snapshot
    assert restored.localized("de") == bank.localized("de")


def test_snapshot_is_a_valid_bank_document():
    snapshot = parse_bank(MINIMAL).to_snapshot()
    assert snapshot["schema_version"] == 1
    assert snapshot["scale"]["labels"] == {"1": "Never", "2": "Sometimes", "3": "Often"}
    assert BankSchema().validate(json.loads(json.dumps(snapshot))) == {}


def test_tampered_snapshot_is_rejected():
    snapshot = parse_bank(MINIMAL).to_snapshot()
    snapshot["competencies"][1]["items"][0]["id"] = "listening.attentive"
    with pytest.raises(BankError, match=r"<snapshot>: .*duplicate item id"):
        Bank.from_snapshot(snapshot)


def test_banks_are_immutable_and_hashable():
    bank = parse_bank(MINIMAL)
    with pytest.raises(AttributeError):
        bank.title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        bank.scale.labels[1] = "x"  # type: ignore[index]
    assert hash(bank) == hash(parse_bank(MINIMAL))


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_schema_version_is_rejected_naming_the_supported_ones(tmp_path):
    path = write(tmp_path, MINIMAL.replace("schema_version: 1", "schema_version: 2"), "old.yaml")
    with pytest.raises(BankError) as info:
        load_bank(path)
    error = info.value
    assert error.source == str(path)
    assert error.errors == [
        ("schema_version", "unsupported schema_version 2; supported versions: 1")
    ]
    assert (
        str(error) == f"{path}: schema_version: unsupported schema_version 2; supported versions: 1"
    )


def test_missing_schema_version_is_reported_with_the_other_errors():
    doc = minimal_doc()
    del doc["schema_version"]
    doc["title"] = ""
    error = errors_of(doc)
    assert ("schema_version", "is missing; this program reads schema_version 1") in error.errors
    assert ("title", "must not be empty") in error.errors


def test_duplicate_item_id_names_file_path_and_first_occurrence(tmp_path):
    text = MINIMAL.replace("id: clarity.plain", "id: listening.attentive")
    path = write(tmp_path, text, "leadership.yaml")
    with pytest.raises(BankError) as info:
        load_bank(path, source="leadership.yaml")
    error = info.value
    assert error.errors == [
        (
            "competencies[1].items[0].id",
            "duplicate item id 'listening.attentive' (first at competencies[0].items[0])",
        )
    ]
    assert str(error).startswith(
        "leadership.yaml: competencies[1].items[0].id: duplicate item id 'listening.attentive' "
        "(first at competencies[0].items[0])"
    )
    assert (
        error.lines["competencies[1].items[0].id"]
        == text.splitlines().index("      - id: listening.attentive", 20) + 1
    )


def test_duplicate_competency_and_open_question_ids():
    doc = minimal_doc()
    doc["competencies"][1]["id"] = "listening"
    doc["open_questions"].append(dict(doc["open_questions"][0]))
    doc["open_questions"].append({"id": "clarity.plain", "self": "a?", "others": "b?"})
    error = errors_of(doc)
    assert error.errors == [
        ("competencies[1].id", "duplicate competency id 'listening' (first at competencies[0])"),
        (
            "open_questions[1].id",
            "duplicate open question id 'strengths' (first at open_questions[0])",
        ),
        (
            "open_questions[2].id",
            "id 'clarity.plain' is already used by the item at competencies[1].items[0]",
        ),
    ]


def test_broken_yaml_reports_the_line(tmp_path):
    text = MINIMAL.replace("    title: Clarity\n", "    title: Clarity\n  bad indent: [\n")
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(BankError) as info:
        load_bank(path, source="broken.yaml")
    [(where, problem)] = info.value.errors
    assert re.fullmatch(r"line \d+, column \d+", where)
    assert problem.startswith("invalid YAML: ")
    assert str(info.value).startswith("broken.yaml: line ")


def test_unquoted_name_placeholder_gets_a_hint():
    text = MINIMAL.replace('others: "{name} uses plain words."', "others: {name} uses plain words.")
    error = errors_of(text)
    assert "must be put in quotes" in str(error)


def test_unknown_keys_are_reported_with_a_suggestion():
    doc = minimal_doc()
    doc["competencies"][0]["items"][1]["sefl"] = "typo"
    doc["colour"] = "blue"
    doc["translations"]["de"]["items"]["listening.attentive"]["other"] = "x"
    error = errors_of(doc, "team.yaml")
    assert ("competencies[0].items[1].sefl", "unknown key; did you mean 'self'?") in error.errors
    assert (
        "translations.de.items['listening.attentive'].other",
        "unknown key; did you mean 'others'?",
    ) in error.errors
    [(_, problem)] = [e for e in error.errors if e[0] == "colour"]
    assert problem.startswith("unknown key; allowed here: schema_version, key, version")
    assert "team.yaml: competencies[0].items[1].sefl: unknown key" in str(error)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{nmae} listens.", "unknown placeholder {nmae}"),
        ("{} listens.", "unknown placeholder {}"),
        ("{name!r} listens.", "unknown placeholder {name!r}"),
        ("{0} listens.", "unknown placeholder {0}"),
        ("{name} listens }.", "has an unmatched '{' or '}'"),
    ],
)
def test_bad_placeholders(text, problem):
    doc = minimal_doc()
    doc["competencies"][0]["items"][0]["others"] = text
    error = errors_of(doc, "p.yaml")
    [(path, message)] = error.errors
    assert path == "competencies[0].items[0].others"
    assert message.startswith(problem)
    assert f"p.yaml: competencies[0].items[0].others: {problem}" in str(error)


def test_placeholders_are_checked_in_translations_too():
    doc = minimal_doc()
    doc["translations"]["de"]["open_questions"]["strengths"]["others"] = "Was kann {nom} gut?"
    error = errors_of(doc)
    [(path, message)] = error.errors
    assert path == "translations.de.open_questions.strengths.others"
    assert "unknown placeholder {nom}" in message


def test_translation_to_unknown_ids():
    doc = minimal_doc()
    tr = doc["translations"]["de"]
    tr["items"]["listening.attentiv"] = {"self": "Ich höre zu."}
    tr["competencies"]["speaking"] = {"title": "Sprechen"}
    tr["open_questions"]["weaknesses"] = {"self": "Was nicht?"}
    tr["scale"]["labels"][4] = "Immer"
    error = errors_of(doc, "t.yaml")
    assert sorted(error.errors) == sorted(
        [
            (
                "translations.de.items['listening.attentiv']",
                "there is no item with id 'listening.attentiv' in this bank; "
                "did you mean 'listening.attentive'?",
            ),
            (
                "translations.de.competencies.speaking",
                "there is no competency with id 'speaking' in this bank",
            ),
            (
                "translations.de.open_questions.weaknesses",
                "there is no open question with id 'weaknesses' in this bank",
            ),
            ("translations.de.scale.labels[4]", "the scale has no point 4 (it runs 1–3)"),
        ]
    )


def test_translation_into_the_main_language_or_a_bad_code():
    doc = minimal_doc()
    doc["translations"]["en"] = {"title": "Mini"}
    doc["translations"]["German"] = {"title": "Mini"}
    error = errors_of(doc)
    assert ("translations.en", "'en' is the bank's main language; edit the main texts instead") in (
        error.errors
    )
    assert any(path == "translations.German" for path, _ in error.errors)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({1: "a", 2: "b", 4: "d"}, "consecutive whole numbers; missing 3 between 1 and 4"),
        ({1: "a", 2: "b"}, "has 2 points; a scale needs 3 to 10"),
        ({1: "a"}, "has 1 point; a scale needs 3 to 10"),
        ({i: str(i) for i in range(11)}, "has 11 points"),
        ({"one": "a", 2: "b", 3: "c"}, "scale values must be whole numbers, got 'one'"),
    ],
)
def test_bad_scales(labels, problem):
    doc = minimal_doc()
    doc["scale"]["labels"] = labels
    doc["translations"]["de"].pop("scale")
    error = errors_of(doc)
    assert len(error.errors) == 1
    assert error.errors[0][0].startswith("scale.labels")
    assert problem in error.errors[0][1]


def test_scale_may_start_at_zero_with_string_keys():
    doc = minimal_doc()
    doc["scale"]["labels"] = {"0": "Never", "1": "Rarely", "2": "Often", "3": "Always"}
    doc["translations"]["de"]["scale"]["labels"] = {"0": "Nie"}
    bank = parse_bank(doc)
    assert bank.scale.values == (0, 1, 2, 3)
    assert bank.localized("de").scale.labels[0] == "Nie"


def test_empty_competency_and_empty_bank():
    doc = minimal_doc()
    doc["competencies"][1]["items"] = []
    assert errors_of(doc).errors == [
        ("competencies[1].items", "is empty; a competency needs at least one item")
    ]
    doc["competencies"] = []
    doc.pop("translations")
    assert errors_of(doc).errors == [
        ("competencies", "is empty; a bank needs at least one competency")
    ]


def test_yaml_type_traps_are_explained():
    text = MINIMAL.replace('version: "1"', "version: 2026.1").replace(
        "language: en", "language: no"
    )
    error = errors_of(text)
    messages = dict(error.errors)
    assert messages["version"].startswith("must be text, got the number 2026.1; put it in quotes")
    assert messages["language"].startswith("must be text, got the boolean false; put it in quotes")


def test_duplicate_yaml_keys_are_not_silently_dropped():
    text = MINIMAL.replace(
        "        self: I use plain words.\n",
        "        self: I use plain words.\n        self: I use short words.\n",
    )
    error = errors_of(text)
    [(where, problem)] = error.errors
    assert re.fullmatch(r"line \d+", where)
    assert problem.startswith("duplicate key 'self' (first at line ")


def test_all_errors_are_collected(tmp_path):
    text = (
        MINIMAL.replace("key: mini", "key: Mini Bank")
        .replace("id: clarity.plain", "id: listening.attentive")
        .replace("required: true", "required: yes please\n        colour: blue")
        .replace('others: "{name} uses plain words."', 'others: "{nom} uses plain words."')
        .replace("listening: {title: Zuhören}", "listenin: {title: Zuhören}")
    )
    path = write(tmp_path, text, "many.yaml")
    with pytest.raises(BankError) as info:
        load_bank(path, source="many.yaml")
    paths = [path for path, _ in info.value.errors]
    assert paths == [
        "key",
        "competencies[0].items[0].required",
        "competencies[0].items[0].colour",
        "competencies[1].items[0].id",
        "competencies[1].items[0].others",
        "translations.de.competencies.listenin",
    ]
    assert len(str(info.value).splitlines()) == 6
    assert all(line.startswith("many.yaml: ") for line in str(info.value).splitlines())


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (None, "is empty"),
        ([1, 2], "must be a mapping"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "is empty"),
    ],
)
def test_documents_that_are_not_banks(doc, problem):
    error = errors_of(doc, "x.yaml")
    assert error.errors[0][0] == ""
    assert error.errors[0][1].startswith(problem)
    assert str(error).startswith(f"x.yaml: {problem}")


def test_wrong_shapes_inside_the_document():
    doc = minimal_doc()
    doc["competencies"][0]["items"] = {"not": "a list"}
    doc["competencies"][1] = "clarity"
    doc["scale"] = None
    error = errors_of(doc)
    assert error.errors == [
        ("scale", "has no value"),
        ("competencies[0].items", "must be a list of items"),
        ("competencies[1]", "must be a mapping (key: value pairs)"),
    ]


def test_file_not_found(tmp_path):
    with pytest.raises(BankError) as info:
        load_bank(tmp_path / "missing.yaml", source="missing.yaml")
    assert info.value.errors == [("", "file not found")]
    assert str(info.value) == "missing.yaml: file not found"


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("Mini bank", "Café").encode("latin-1"))
    with pytest.raises(BankError, match="is not UTF-8 text"):
        load_bank(path)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_bank(path).key == "mini"


def test_bank_error_survives_pickling():
    import pickle

    error = errors_of({"schema_version": 1}, "p.yaml")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.errors, str(copy)) == (error.source, error.errors, str(error))


def test_alias_bombs_are_refused():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        prev = chr(ord("a") + n - 1)
        lines.append(
            f"{chr(ord('a') + n)}: &{chr(ord('a') + n)} [" + ", ".join([f"*{prev}"] * 10) + "]"
        )
    error = errors_of("\n".join(lines) + "\n", "bomb.yaml")
    [(where, problem)] = error.errors
    assert where.startswith("line ")
    assert "more than 50 aliases" in problem


def test_huge_files_are_refused(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(MINIMAL + "#" * 1_000_001, encoding="utf-8")
    with pytest.raises(BankError, match="is larger than 1,000,000 bytes"):
        load_bank(path)
