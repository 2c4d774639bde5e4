"""``/api/v1/banks``: the question banks a cycle can use (bundled and custom)."""

from __future__ import annotations

from typing import Any

from flask_smorest import abort

from surveys import bank_store
from surveys.banks import Bank, BankError, UnknownBankError, bundled_bank_paths
from webapp.api.core import blueprint
from webapp.api.schemas import BankDetailSchema, BankQuerySchema, BankSummarySchema
from webapp.extensions import db

bp = blueprint("banks", "Question banks: competencies, items and their translations.")


@bp.route("/banks")
@bp.response(200, BankSummarySchema(many=True))
def list_banks() -> list[dict[str, Any]]:
    """List question banks

    Bundled banks first, then custom ones, each sorted by key.
    """
    return [
        {
            "key": entry.bank.key,
            "version": entry.bank.version,
            "title": entry.bank.title,
            "language": entry.bank.language,
            "languages": list(entry.bank.languages),
            "custom": entry.custom,
            "competencies": len(entry.bank.competencies),
            "items": len(entry.bank.items),
        }
        for entry in bank_store.list_banks(db.session)
    ]


@bp.route("/banks/<string(maxlength=64):key>")
@bp.arguments(BankQuerySchema, location="query")
@bp.response(200, BankDetailSchema)
def get_bank(args: dict[str, Any], key: str) -> dict[str, Any]:
    """Show a question bank

    Competencies, items and open questions, in ``lang`` (default: the bank's own
    language); a language the bank has no texts for is a 422.
    """
    try:
        if "\x00" in key:  # PostgreSQL refuses NUL; no key has one
            raise UnknownBankError(key, [])
        bank = bank_store.get_bank(db.session, key)
    except UnknownBankError:
        abort(404, message=f"no question bank {key!r}")
    except BankError as error:  # a stored custom bank that no longer validates
        abort(409, message=str(error))
    custom = not _is_bundled(key)
    lang = args.get("lang")
    shown = bank
    if lang is not None:
        shown = bank.localized(lang)
        if not _speaks(bank, lang):
            abort(
                422,
                message=f"bank {key!r} has no {lang!r} texts (it has {', '.join(bank.languages)})",
                errors={"lang": [f"one of {', '.join(bank.languages)}"]},
            )
    return _detail(shown, bank, custom)


def _is_bundled(key: str) -> bool:
    return key in bundled_bank_paths()


def _speaks(bank: Bank, lang: str) -> bool:
    wanted = lang.strip().lower()
    known = {code.lower() for code in bank.languages}
    return wanted in known or wanted.split("-")[0] in known


def _detail(shown: Bank, original: Bank, custom: bool) -> dict[str, Any]:
    return {
        "key": shown.key,
        "version": shown.version,
        "title": shown.title,
        "description": shown.description,
        "language": shown.language,
        "languages": list(original.languages),
        "custom": custom,
        "scale": {
            "min": shown.scale.min,
            "max": shown.scale.max,
            "labels": {str(k): v for k, v in shown.scale.labels.items()},
            "na_label": shown.scale.na_label,
        },
        "competencies": [
            {
                "id": c.id,
                "title": c.title,
                "description": c.description,
                "items": [_text(i) for i in c.items],
            }
            for c in shown.competencies
        ],
        "open_questions": [_text(q) for q in shown.open_questions],
    }


def _text(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "self_text": entry.self_text,
        "others_text": entry.others_text,
        "required": entry.required,
    }
