"""Custom question banks: saving, refusing taken keys, duplicating and editing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from surveys import bank_store
from surveys.bank_store import BankKeyError
from surveys.banks import BankError, UnknownBankError, bundled_bank_paths, parse_bank
from surveys.models import CustomBank
from tests.surveys.test_banks import MINIMAL


def stored_keys(session) -> list[str]:
    return list(session.scalars(sa.select(CustomBank.key).order_by(CustomBank.key)))


def test_save_stores_a_valid_bank_and_lists_it_as_custom(session):
    bank = bank_store.save_bank(session, MINIMAL, created_by=None)
    assert bank.key == "mini"
    assert stored_keys(session) == ["mini"]
    entries = {e.key: e.custom for e in bank_store.list_banks(session)}
    assert entries["mini"] is True
    assert entries["leadership"] is False
    assert bank_store.get_bank(session, "mini").title == "Mini bank"
    assert bank_store.bank_source(session, "mini") == MINIMAL


def test_save_refuses_an_invalid_bank_and_stores_nothing(session):
    broken = MINIMAL.replace("title: Mini bank\n", "").replace("na_label:", "nah_label:")
    with pytest.raises(BankError) as error:
        bank_store.save_bank(session, broken, source="upload.yaml")
    paths = [path for path, _ in error.value.errors]
    assert "title" in paths
    assert any("na_label" in p or "nah_label" in p for p in paths)
    assert stored_keys(session) == []


def test_save_refuses_a_bundled_key_even_with_replace(session):
    text = MINIMAL.replace("key: mini", "key: leadership")
    with pytest.raises(BankKeyError) as error:
        bank_store.save_bank(session, text, replace=True)
    assert "bundled bank" in str(error.value)
    assert error.value.lines == {"key": 2}
    assert not error.value.replaceable
    assert stored_keys(session) == []


def test_save_refuses_an_existing_custom_key_unless_replacing(session):
    bank_store.save_bank(session, MINIMAL)
    renamed = MINIMAL.replace("title: Mini bank", "title: Mini bank, second edition")
    with pytest.raises(BankKeyError) as error:
        bank_store.save_bank(session, renamed)
    assert error.value.replaceable
    assert "already exists" in str(error.value)
    assert bank_store.get_bank(session, "mini").title == "Mini bank"

    bank_store.save_bank(session, renamed, replace=True)
    assert bank_store.get_bank(session, "mini").title == "Mini bank, second edition"
    assert stored_keys(session) == ["mini"]


def test_save_refuses_a_file_larger_than_the_limit(session):
    huge = MINIMAL + "# " + "x" * bank_store.MAX_FILE_BYTES + "\n"
    with pytest.raises(BankError, match="larger than"):
        bank_store.save_bank(session, huge)


def test_bank_source_of_a_bundled_bank_is_the_file(session):
    path = bundled_bank_paths()["pulse"]
    assert bank_store.bank_source(session, "pulse") == path.read_text(encoding="utf-8")
    with pytest.raises(UnknownBankError):
        bank_store.bank_source(session, "nope")


def test_duplicate_a_bundled_bank_keeps_the_text_but_the_key(session):
    bank = bank_store.duplicate_bank(session, "leadership", "leadership_2027")
    assert bank.key == "leadership_2027"
    copy = bank_store.bank_source(session, "leadership_2027")
    original = bank_store.bank_source(session, "leadership")
    assert copy == original.replace("key: leadership\n", "key: leadership_2027\n", 1)
    assert copy.startswith("# Leadership 360")  # comments kept
    assert [i.id for i in bank.items] == [
        i.id for i in bank_store.get_bank(session, "leadership").items
    ]


@pytest.mark.parametrize(
    ("new_key", "problem"),
    [
        ("", "is empty"),
        ("Has Spaces", "is not valid"),
        ("x" * 65, "is not valid"),
        ("pulse", "bundled bank"),
        ("mini", "already exists"),
    ],
)
def test_duplicate_refuses_bad_or_taken_keys(session, new_key, problem):
    bank_store.save_bank(session, MINIMAL)
    with pytest.raises(BankKeyError, match=problem):
        bank_store.duplicate_bank(session, "leadership", new_key)
    assert stored_keys(session) == ["mini"]


def test_duplicate_of_an_unknown_bank_is_refused(session):
    with pytest.raises(UnknownBankError):
        bank_store.duplicate_bank(session, "nope", "copy")


def edited(text: str) -> str:
    """A changed bank with a new version, as an edit must be."""
    changed = text.replace("title: ", "title: Edited ", 1)
    return re.sub(r"^version: .*$", 'version: "2027.1"', changed, count=1, flags=re.M)


def test_update_edits_a_custom_bank(session):
    bank_store.duplicate_bank(session, "pulse", "pulse_copy")
    text = edited(bank_store.bank_source(session, "pulse_copy"))
    bank = bank_store.update_bank(session, "pulse_copy", text)
    assert bank.title.startswith("Edited ")
    assert bank_store.get_bank(session, "pulse_copy").title == bank.title
    assert bank_store.bank_source(session, "pulse_copy") == text


def test_changed_questions_need_a_new_version(session):
    """Drafts, reports and trends tell bank contents apart by key and version."""
    bank_store.duplicate_bank(session, "pulse", "pulse_copy")
    before = bank_store.bank_source(session, "pulse_copy")
    same_version = before.replace("title: ", "title: Edited ", 1)
    with pytest.raises(BankError, match="new version"):
        bank_store.update_bank(session, "pulse_copy", same_version)
    assert bank_store.bank_source(session, "pulse_copy") == before
    bank_store.update_bank(session, "pulse_copy", before)  # unchanged: fine


def test_update_refuses_bundled_banks_key_changes_and_invalid_text(session):
    bank_store.save_bank(session, MINIMAL)
    with pytest.raises(BankKeyError, match="read-only"):
        bank_store.update_bank(session, "pulse", bank_store.bank_source(session, "pulse"))
    with pytest.raises(BankKeyError, match="cannot change") as renamed:
        bank_store.update_bank(session, "mini", MINIMAL.replace("key: mini", "key: other"))
    assert renamed.value.lines == {"key": 2}
    with pytest.raises(BankError):
        bank_store.update_bank(session, "mini", MINIMAL.replace("version:", "versio:"))
    with pytest.raises(UnknownBankError):
        bank_store.update_bank(session, "absent", MINIMAL)
    assert bank_store.bank_source(session, "mini") == MINIMAL


def test_with_key_rewrites_flow_style_documents():
    text = '{"schema_version": 1, "key": "a", "title": "T"}'
    assert "key: b" in bank_store.with_key(text, "b")
    assert bank_store.with_key("key: a  # note\ntitle: T\n", "b") == "key: b\ntitle: T\n"


def test_describe_errors_gives_every_problem_its_line():
    broken = MINIMAL.replace("    title: Listening\n", "").replace(
        "        self: I use plain words.\n",
        "        self: I use plain words.\n        self: again\n",
    )
    with pytest.raises(BankError) as error:
        parse_bank(broken, source="x.yaml")
    problems = bank_store.describe_errors(error.value)
    assert [(p.line, p.path) for p in problems] == [(10, "competencies[0].title"), (25, "")]
    assert "duplicate key 'self'" in problems[1].problem

    with pytest.raises(BankError) as syntax:
        parse_bank("key: [unclosed\ntitle: x\n", source="x.yaml")
    (problem,) = bank_store.describe_errors(syntax.value)
    assert problem.line is not None
    assert problem.path == ""
    assert "invalid YAML" in problem.problem
