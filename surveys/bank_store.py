"""Every question bank HR can pick: the bundled files plus banks stored in the database.

Bundled banks live in ``question_banks/*.yaml`` (read-only, shipped with the code);
custom banks are uploaded or duplicated in the console and stored as YAML in
:class:`~surveys.models.CustomBank`. Both go through the same parser and validation, and
a custom bank is only ever stored once it parses: what is in the table always loads.

Saving refuses a key that would shadow a bundled bank, and a key another custom bank
already has unless the caller says it replaces that one. Services flush, never commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from surveys import banks
from surveys.bank_schema import KEY_PATTERN
from surveys.banks import MAX_FILE_BYTES, Bank, BankError, UnknownBankError
from surveys.models import CustomBank

MAX_KEY_LENGTH = 64
#: The top-level ``key:`` line of a bank file (block style, as every bank is written).
_KEY_LINE = re.compile(r"^key[ \t]*:[^\n]*$", re.MULTILINE)


class BankKeyError(BankError):
    """The bank is valid but its key cannot be stored (bundled, taken, or not editable).

    ``replaceable`` is True when the key belongs to another custom bank, which the caller
    may overwrite by saving again with ``replace=True``.
    """

    def __init__(
        self, source: str, problem: str, line: int | None = None, replaceable: bool = False
    ) -> None:
        self.replaceable = replaceable
        super().__init__(source, [("key", problem)], {"key": line} if line else None)

    def __reduce__(self) -> tuple[object, ...]:  # pickles as the plain BankError it extends
        return (BankError, (self.source, self.errors, self.lines))


@dataclass(frozen=True)
class BankEntry:
    bank: Bank
    #: ``True`` for a bank stored in the database (editable), ``False`` for a bundled file.
    custom: bool

    @property
    def key(self) -> str:
        return self.bank.key


@dataclass(frozen=True)
class BankProblem:
    """One problem of a bank file, ready to list next to the text: where, and what."""

    line: int | None
    path: str
    problem: str


#: YAML syntax errors and duplicate keys carry their place in the path: "line 3, column 7".
_LINE_IN_PATH = re.compile(r"^line (\d+)")


def describe_errors(error: BankError) -> list[BankProblem]:
    """Every problem of ``error`` with its YAML line where known (in document order)."""
    problems = []
    for path, problem in error.errors:
        line = error.lines.get(path)
        match = _LINE_IN_PATH.match(path)
        if line is None and match:
            line = int(match.group(1))
        problems.append(BankProblem(line, "" if match else path, problem))
    return problems


def is_bundled(key: str) -> bool:
    """Whether ``key`` names a bank shipped in ``question_banks/`` (read-only)."""
    return key in banks.bundled_bank_paths()


def get_bank(session: Session, key: str) -> Bank:
    """The bundled or custom bank with this key (bundled keys win; custom ones can't clash)."""
    return get_entry(session, key).bank


def get_entry(session: Session, key: str) -> BankEntry:
    """The bank with this key and whether it is custom; ``UnknownBankError`` if none."""
    try:
        return BankEntry(banks.get_bank(key), custom=False)
    except UnknownBankError:
        stored = _stored(session, key)
        if stored is None:
            raise UnknownBankError(key, [e.key for e in list_banks(session)]) from None
        return BankEntry(banks.parse_bank(stored.source, source=f"{key}.yaml"), custom=True)


def list_banks(session: Session) -> list[BankEntry]:
    """Bundled banks, then custom ones, each sorted by key."""
    entries = [BankEntry(bank, custom=False) for bank in banks.list_banks()]
    for stored in session.scalars(select(CustomBank).order_by(CustomBank.key)):
        entries.append(
            BankEntry(banks.parse_bank(stored.source, source=f"{stored.key}.yaml"), custom=True)
        )
    return entries


def bank_source(session: Session, key: str) -> str:
    """The YAML text of a bundled or custom bank, comments included (to copy or edit it)."""
    paths = banks.bundled_bank_paths()
    if key in paths:
        return paths[key].read_text(encoding="utf-8-sig")
    stored = _stored(session, key)
    if stored is None:
        raise UnknownBankError(key, [e.key for e in list_banks(session)])
    return stored.source


def save_bank(
    session: Session,
    text: str,
    *,
    created_by: int | None = None,
    replace: bool = False,
    source: str = "bank.yaml",
) -> Bank:
    """Validate ``text`` and store it as a custom bank under the key it declares.

    Raises ``BankError`` listing every problem (nothing stored), or ``BankKeyError`` when
    the key is a bundled bank's, or another custom bank's and ``replace`` is False.
    """
    bank = _parse(text, source)
    _check_new_key(session, bank.key, text, source, replace=replace)
    stored = _stored(session, bank.key)
    if stored is None:
        session.add(CustomBank(key=bank.key, source=text, created_by=created_by))
    else:
        stored.source = text
    session.flush()
    return bank


def update_bank(session: Session, key: str, text: str, *, source: str | None = None) -> Bank:
    """Replace the YAML of the custom bank ``key`` with ``text`` (validated first).

    Bundled banks are read-only. The key inside the text must stay ``key``: renaming
    would leave cycles' and people's references dangling, so a new key means duplicating.
    """
    source = source or f"{key}.yaml"
    if is_bundled(key):
        raise BankKeyError(
            source, f"{key!r} is a bundled bank and read-only; duplicate it to change it"
        )
    stored = _stored(session, key)
    if stored is None:
        raise UnknownBankError(key, [e.key for e in list_banks(session)])
    bank = _parse(text, source)
    if bank.key != key:
        raise BankKeyError(
            source,
            f"is {bank.key!r} but this is bank {key!r}; the key cannot change here "
            "(duplicate the bank to save it under a new key)",
            _key_line(text),
        )
    before = _parse(stored.source, source)
    if bank.version == before.version and bank.to_snapshot() != before.to_snapshot():
        # Drafts, reports and trends tell bank contents apart by key and version.
        raise BankError(
            source,
            [
                (
                    "version",
                    f"is still {bank.version!r} but the questions changed; give the bank a"
                    " new version so cycles and reports can tell the two apart",
                )
            ],
        )
    stored.source = text
    session.flush()
    return bank


def duplicate_bank(
    session: Session, key: str, new_key: str, *, created_by: int | None = None
) -> Bank:
    """Copy bank ``key`` (bundled or custom) to a new custom bank ``new_key``; returns it.

    The copy is the original YAML with only its ``key:`` line changed, so comments and
    layout survive for whoever edits it next.
    """
    new_key = new_key.strip()
    source = f"{new_key or 'new'}.yaml"
    if not new_key:
        raise BankKeyError(source, "is empty; choose a key for the copy")
    if len(new_key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(new_key):
        raise BankKeyError(
            source,
            f"{new_key!r} is not valid: use at most {MAX_KEY_LENGTH} lower-case letters, "
            "digits, '_' and '-' (e.g. leadership_2027)",
        )
    _check_new_key(session, new_key, None, source, replace=False)
    text = with_key(bank_source(session, key), new_key)
    return save_bank(session, text, created_by=created_by, source=source)


def with_key(text: str, new_key: str) -> str:
    """``text`` with its top-level ``key:`` set to ``new_key``, everything else untouched.

    Falls back to re-writing the document (comments lost) if there is no ``key:`` line
    at the start of a line, e.g. a bank written in flow style.
    """
    replaced, count = _KEY_LINE.subn(f"key: {new_key}", text, count=1)
    if count:
        return replaced
    document = yaml.safe_load(text)
    document["key"] = new_key
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# -- helpers -----------------------------------------------------------------------------------


def _stored(session: Session, key: str) -> CustomBank | None:
    return session.scalar(select(CustomBank).where(CustomBank.key == key))


def _parse(text: str, source: str) -> Bank:
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise BankError(source, [("", f"is larger than {MAX_FILE_BYTES:,} bytes")])
    return banks.parse_bank(text, source=source)


def _key_line(text: str | None) -> int | None:
    if text is None:
        return None
    match = _KEY_LINE.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _check_new_key(
    session: Session, key: str, text: str | None, source: str, *, replace: bool
) -> None:
    if is_bundled(key):
        raise BankKeyError(
            source,
            f"{key!r} is the key of a bundled bank, which cannot be replaced; choose another key",
            _key_line(text),
        )
    if not replace and _stored(session, key) is not None:
        raise BankKeyError(
            source,
            f"a custom bank {key!r} already exists; choose another key, "
            "or replace that bank explicitly",
            _key_line(text),
            replaceable=True,
        )
