"""Every question bank HR can pick: the bundled files plus banks stored in the database.

Bundled banks live in ``question_banks/*.yaml`` (read-only, shipped with the code);
custom banks are uploaded or duplicated in the console and stored as YAML in
:class:`~surveys.models.CustomBank`. Both go through the same parser and validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveys import banks
from surveys.banks import Bank, UnknownBankError
from surveys.models import CustomBank


@dataclass(frozen=True)
class BankEntry:
    bank: Bank
    #: ``True`` for a bank stored in the database (editable), ``False`` for a bundled file.
    custom: bool

    @property
    def key(self) -> str:
        return self.bank.key


def get_bank(session: Session, key: str) -> Bank:
    """The bundled or custom bank with this key (bundled keys win; custom ones can't clash)."""
    try:
        return banks.get_bank(key)
    except UnknownBankError:
        stored = session.scalar(select(CustomBank).where(CustomBank.key == key))
        if stored is None:
            raise UnknownBankError(key, [e.key for e in list_banks(session)]) from None
        return banks.parse_bank(stored.source, source=f"{key}.yaml")


def list_banks(session: Session) -> list[BankEntry]:
    """Bundled banks, then custom ones, each sorted by key."""
    entries = [BankEntry(bank, custom=False) for bank in banks.list_banks()]
    for stored in session.scalars(select(CustomBank).order_by(CustomBank.key)):
        entries.append(
            BankEntry(banks.parse_bank(stored.source, source=f"{stored.key}.yaml"), custom=True)
        )
    return entries
