"""Marshmallow schema for question bank files (``schema_version: 1``).

The schema only *validates and normalises*: it turns a parsed YAML/JSON document into plain
dicts, or reports every problem it finds. :mod:`surveys.banks` builds the domain objects.
Errors are collected, never just the first: field errors come from marshmallow, and the
checks that span the whole document (duplicate ids, translations that refer to unknown ids)
run on the raw input in :meth:`BankSchema.check_references`, so they are reported even
when other parts of the file are broken.

Use :func:`flatten_errors` to turn marshmallow's nested error dict into
``(path, problem)`` pairs such as ``("competencies[2].items[0].id", "duplicate item id …")``.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.types import ErrorMessages
from marshmallow.validate import Length

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)

KEY_PATTERN = re.compile(r"[a-z0-9_-]+")
COMPETENCY_ID_PATTERN = re.compile(r"[a-z0-9_]+")
#: Item and open-question ids: ``communication.listens``; no leading, trailing or double dots.
ITEM_ID_PATTERN = re.compile(r"[a-z0-9_]+(?:[.-][a-z0-9_]+)*")
#: BCP 47-ish: ``en``, ``de``, ``pt-BR``, ``zh-Hant``.
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

MIN_SCALE_POINTS = 3
MAX_SCALE_POINTS = 10

_UNKNOWN_KEY = "unknown key"
_SUPPORTED = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """``("competencies", 2, "items", 0, "id")`` -> ``competencies[2].items[0].id``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _describe(value: Any) -> str:
    """A short, human name for the type of a YAML value."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"a {type(value).__name__}"


# -- fields ------------------------------------------------------------------------------------

_FIELD_MESSAGES: ErrorMessages = {
    "required": "is required but missing",
    "null": "has no value",
    "validator_failed": "is not valid",
}
_MAPPING_MESSAGES: ErrorMessages = {
    **_FIELD_MESSAGES,
    "invalid": "must be a mapping (key: value pairs)",
    "type": "must be a mapping (key: value pairs)",
}
_VERSION_MESSAGES: ErrorMessages = {
    "required": f"is missing; this program reads schema_version {_SUPPORTED}",
    "null": f"has no value; supported versions: {_SUPPORTED}",
}


class Text(fields.Field[str]):
    """A non-empty string, stripped; optionally checked against a pattern or for placeholders.

    Whitespace runs (line breaks from YAML block scalars included) collapse to one space
    unless ``multiline`` is set, so wording is stored the way it is shown.
    """

    default_error_messages = _FIELD_MESSAGES

    def __init__(
        self,
        *,
        max_length: int = 200,
        pattern: re.Pattern[str] | None = None,
        pattern_help: str = "",
        placeholders: bool = False,
        multiline: bool = False,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.pattern = pattern
        self.pattern_help = pattern_help
        self.placeholders = placeholders
        self.multiline = multiline
        self.allow_empty = allow_empty

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            hint = ""
            if isinstance(value, bool | int | float):
                hint = (
                    "; put it in quotes (YAML reads unquoted numbers and yes/no/on/off/"
                    "true/false as non-text)"
                )
            elif isinstance(value, Mapping) and self.placeholders:
                hint = "; a text that starts with '{name}' must be put in quotes"
            raise ValidationError(f"must be text, got {_describe(value)}{hint}")
        text = value.strip() if self.multiline else " ".join(value.split())
        if not text and not self.allow_empty:
            raise ValidationError("must not be empty")
        if len(text) > self.max_length:
            raise ValidationError(
                f"is too long ({len(text)} characters; at most {self.max_length})"
            )
        if self.pattern is not None and not self.pattern.fullmatch(text):
            raise ValidationError(f"{text!r} is not valid: use {self.pattern_help}")
        if self.placeholders:
            problems = placeholder_problems(text)
            if problems:
                raise ValidationError(problems)
        return text

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


def placeholder_problems(text: str) -> list[str]:
    """Problems with the ``{…}`` placeholders in ``text``; only ``{name}`` is allowed."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return ["has an unmatched '{' or '}'; write '{{' or '}}' for a literal brace"]
    problems = []
    for _literal, field, spec, conversion in parsed:
        if field is None or (field == "name" and not spec and not conversion):
            continue
        shown = (
            "{"
            + field
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        problems.append(
            f"unknown placeholder {shown}; the only placeholder allowed is {{name}} "
            "(the participant's name)"
        )
    return problems


class StrictBool(fields.Field[bool]):
    """``true`` or ``false`` only; YAML already turns yes/no into booleans."""

    default_error_messages = _FIELD_MESSAGES

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(f"must be true or false, got {_describe(value)}")
        return value


class ScalePoint(fields.Field[int]):
    """A scale value used as a mapping key: an integer, or its digits as text (JSON keys)."""

    default_error_messages = _FIELD_MESSAGES

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        number = as_scale_point(value)
        if number is None:
            raise ValidationError(f"scale values must be whole numbers, got {value!r}")
        return number


def as_scale_point(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


class SchemaVersion(fields.Field[int]):
    default_error_messages = _VERSION_MESSAGES

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if not is_supported_version(value):
            raise ValidationError(unsupported_version_message(value))
        return int(value)


def is_supported_version(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value in SUPPORTED_SCHEMA_VERSIONS
    )


def unsupported_version_message(value: Any) -> str:
    return f"unsupported schema_version {value!r}; supported versions: {_SUPPORTED}"


class IdMap(fields.Dict):
    """A mapping keyed by ids whose errors are keyed by the id alone.

    marshmallow's ``Dict`` reports ``{key: {"value": …}}``; dropping that level gives paths
    like ``translations.de.items['a.b'].self``.
    """

    default_error_messages = _MAPPING_MESSAGES

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:
            if not isinstance(exc.messages, dict):
                raise
            reshaped: dict[Any, Any] = {}
            for key, errors in exc.messages.items():
                # A bad key makes its value's errors moot.
                reshaped[key] = errors["key"] if "key" in errors else errors["value"]
            raise ValidationError(reshaped, valid_data=exc.valid_data) from None


# -- schemas -----------------------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 (marshmallow merges this class attribute)
        "unknown": _UNKNOWN_KEY,
        "type": "must be a mapping (key: value pairs)",
    }


def _item_id(**kwargs: Any) -> Text:
    return Text(
        max_length=100,
        pattern=ITEM_ID_PATTERN,
        pattern_help="lower-case letters, digits and '_', parts joined by '.' or '-' "
        "(e.g. communication.listens)",
        **kwargs,
    )


def _competency_id(**kwargs: Any) -> Text:
    return Text(
        max_length=64,
        pattern=COMPETENCY_ID_PATTERN,
        pattern_help="lower-case letters, digits and '_' (e.g. decision_making)",
        **kwargs,
    )


def _language(**kwargs: Any) -> Text:
    return Text(
        max_length=35,
        pattern=LANGUAGE_PATTERN,
        pattern_help="a language code such as en, de or pt-BR",
        **kwargs,
    )


def _nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, error_messages=_MAPPING_MESSAGES, **kwargs)


def _labels(**kwargs: Any) -> IdMap:
    return IdMap(keys=ScalePoint(), values=Text(max_length=60), **kwargs)


def _description() -> Text:
    return Text(max_length=2000, multiline=True, allow_empty=True, load_default="")


class ScaleSchema(_Strict):
    labels = _labels(required=True)
    na_label = Text(max_length=60, required=True)

    @validates_schema
    def check_points(self, data: dict[str, Any], **kwargs: Any) -> None:
        points = sorted(data["labels"])
        count = len(points)
        if not MIN_SCALE_POINTS <= count <= MAX_SCALE_POINTS:
            raise ValidationError(
                f"has {count} point{'s' if count != 1 else ''}; a scale needs"
                f" {MIN_SCALE_POINTS} to {MAX_SCALE_POINTS} labelled points",
                "labels",
            )
        if points != list(range(points[0], points[0] + count)):
            missing = sorted(set(range(points[0], points[-1] + 1)) - set(points))
            raise ValidationError(
                f"scale values must be consecutive whole numbers; missing "
                f"{', '.join(map(str, missing))} between {points[0]} and {points[-1]}",
                "labels",
            )


class ItemSchema(_Strict):
    id = _item_id(required=True)
    self_text = Text(data_key="self", max_length=300, placeholders=True, required=True)
    others_text = Text(data_key="others", max_length=300, placeholders=True, required=True)
    required = StrictBool(load_default=False)


class CompetencySchema(_Strict):
    id = _competency_id(required=True)
    title = Text(max_length=120, required=True)
    description = _description()
    items = fields.List(
        _nested(ItemSchema),
        required=True,
        validate=Length(min=1, error="is empty; a competency needs at least one item"),
        error_messages={**_FIELD_MESSAGES, "invalid": "must be a list of items"},
    )


class OpenQuestionSchema(ItemSchema):
    self_text = Text(data_key="self", max_length=500, placeholders=True, required=True)
    others_text = Text(data_key="others", max_length=500, placeholders=True, required=True)


class ScaleTranslationSchema(_Strict):
    labels = _labels()
    na_label = Text(max_length=60)


class CompetencyTranslationSchema(_Strict):
    title = Text(max_length=120)
    description = Text(max_length=2000, multiline=True, allow_empty=True)


class TextTranslationSchema(_Strict):
    self_text = Text(data_key="self", max_length=500, placeholders=True)
    others_text = Text(data_key="others", max_length=500, placeholders=True)


class TranslationSchema(_Strict):
    title = Text(max_length=120)
    description = Text(max_length=2000, multiline=True, allow_empty=True)
    scale = _nested(ScaleTranslationSchema)
    competencies = IdMap(keys=_competency_id(), values=_nested(CompetencyTranslationSchema))
    items = IdMap(keys=_item_id(), values=_nested(TextTranslationSchema))
    open_questions = IdMap(keys=_item_id(), values=_nested(TextTranslationSchema))


class BankSchema(_Strict):
    """A whole bank file. ``load`` returns plain dicts with the Python-side names
    (``self_text``, ``others_text``); scale keys become ``int``."""

    schema_version = SchemaVersion(required=True)
    key = Text(
        max_length=64,
        pattern=KEY_PATTERN,
        pattern_help="lower-case letters, digits, '_' and '-' (e.g. leadership)",
        required=True,
    )
    version = Text(max_length=32, required=True)
    title = Text(max_length=120, required=True)
    description = _description()
    language = _language(required=True)
    scale = _nested(ScaleSchema, required=True)
    competencies = fields.List(
        _nested(CompetencySchema),
        required=True,
        validate=Length(min=1, error="is empty; a bank needs at least one competency"),
        error_messages={**_FIELD_MESSAGES, "invalid": "must be a list of competencies"},
    )
    open_questions = fields.List(
        _nested(OpenQuestionSchema),
        load_default=list,
        error_messages={**_FIELD_MESSAGES, "invalid": "must be a list of open questions"},
    )
    translations = IdMap(keys=_language(), values=_nested(TranslationSchema), load_default=dict)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def check_references(self, data: Any, original: Any, **kwargs: Any) -> None:
        """Duplicate ids and translations of unknown ids, checked on the raw input."""
        errors: dict[Any, Any] = {}
        for path, problem in _reference_problems(original):
            _insert(errors, path, problem)
        if errors:
            raise ValidationError(errors)


# -- whole-document checks ---------------------------------------------------------------------


def _mappings(value: Any, *path: PathPart) -> Iterator[tuple[Path, Mapping[Any, Any]]]:
    """``(path + (index,), element)`` for each mapping element of a list, skipping junk."""
    if isinstance(value, list):
        for index, element in enumerate(value):
            if isinstance(element, Mapping):
                yield (*path, index), element


def _str_id(element: Mapping[Any, Any]) -> str | None:
    value = element.get("id")
    return value.strip() if isinstance(value, str) else None


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _well_formed(value: Any) -> bool:
    """A list of mappings that all have a text id: only then do we know every id in it."""
    return isinstance(value, list) and all(
        isinstance(element, Mapping) and _str_id(element) is not None for element in value
    )


def _reference_problems(doc: Any) -> Iterator[tuple[Path, str]]:
    if not isinstance(doc, Mapping):
        return
    competencies: dict[str, Path] = {}
    items: dict[str, Path] = {}
    # Unknown-id checks on translations only make sense if we saw every id; otherwise a
    # broken competency would make all translations of its items look wrong.
    ids_known = {"competencies": _well_formed(doc.get("competencies"))}
    ids_known["items"] = ids_known["competencies"] and all(
        _well_formed(c.get("items")) for c in doc["competencies"]
    )
    ids_known["open_questions"] = "open_questions" not in doc or _well_formed(doc["open_questions"])
    for cpath, competency in _mappings(doc.get("competencies"), "competencies"):
        cid = _str_id(competency)
        if cid is not None:
            if cid in competencies:
                first = format_path(competencies[cid])
                yield (*cpath, "id"), f"duplicate competency id {cid!r} (first at {first})"
            else:
                competencies[cid] = cpath
        for ipath, item in _mappings(competency.get("items"), *cpath, "items"):
            iid = _str_id(item)
            if iid is None:
                continue
            if iid in items:
                first = format_path(items[iid])
                yield (*ipath, "id"), f"duplicate item id {iid!r} (first at {first})"
            else:
                items[iid] = ipath

    questions: dict[str, Path] = {}
    for qpath, question in _mappings(doc.get("open_questions"), "open_questions"):
        qid = _str_id(question)
        if qid is None:
            continue
        if qid in questions:
            first = format_path(questions[qid])
            yield (*qpath, "id"), f"duplicate open question id {qid!r} (first at {first})"
        elif qid in items:
            # Answers are stored by id, so items and open questions share one namespace.
            first = format_path(items[qid])
            yield (*qpath, "id"), f"id {qid!r} is already used by the item at {first}"
        else:
            questions[qid] = qpath

    labels = doc.get("scale", {}).get("labels") if isinstance(doc.get("scale"), Mapping) else None
    points = set()
    if isinstance(labels, Mapping):
        points = {p for p in map(as_scale_point, labels) if p is not None}

    translations = doc.get("translations")
    if not isinstance(translations, Mapping):
        return
    main_language = doc.get("language")
    for lang, translation in translations.items():
        if not isinstance(translation, Mapping):
            continue
        base: Path = ("translations", lang)
        if lang == main_language:
            yield base, f"{lang!r} is the bank's main language; edit the main texts instead"
        known: list[tuple[str, dict[str, Path], str]] = [
            ("competencies", competencies, "competency"),
            ("items", items, "item"),
            ("open_questions", questions, "open question"),
        ]
        for section, ids, noun in known:
            entries = translation.get(section)
            if not isinstance(entries, Mapping) or not ids_known[section]:
                continue
            for ref in entries:
                if isinstance(ref, str) and ref not in ids:
                    hint = _suggest(ref, list(ids))
                    yield (
                        (*base, section, ref),
                        f"there is no {noun} with id {ref!r} in this bank{hint}",
                    )
        scale = translation.get("scale")
        if points and isinstance(scale, Mapping) and isinstance(scale.get("labels"), Mapping):
            for raw in scale["labels"]:
                point = as_scale_point(raw)
                if point is not None and point not in points:
                    yield (
                        (*base, "scale", "labels", raw),
                        f"the scale has no point {point} (it runs {min(points)}–{max(points)})",
                    )


def _insert(errors: dict[Any, Any], path: Path, problem: str) -> None:
    node = errors
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], []).append(problem)


# -- error reporting ---------------------------------------------------------------------------


def flatten_errors(
    messages: Any, schema: Schema | None = None, data: Any = None
) -> list[tuple[Path, str]]:
    """marshmallow's nested error messages as ``(path, problem)`` pairs.

    With ``schema`` (and the raw ``data``), "unknown key" problems name the keys that are
    allowed there, or suggest the closest one.
    """
    out: list[tuple[Path, str]] = []
    _flatten(messages, (), out)
    if schema is not None:
        out = [
            (path, _explain_unknown(schema, path) if problem == _UNKNOWN_KEY else problem)
            for path, problem in out
        ]
    return out


def _flatten(messages: Any, path: Path, out: list[tuple[Path, str]]) -> None:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            _flatten(value, path if key == "_schema" else (*path, key), out)
    elif isinstance(messages, list):
        for message in messages:
            _flatten(message, path, out)
    else:
        out.append((path, str(messages)))


def _explain_unknown(schema: Schema, path: Path) -> str:
    allowed = allowed_keys(schema, path[:-1])
    if not allowed or not isinstance(path[-1], str):
        return _UNKNOWN_KEY
    hint = _suggest(path[-1], allowed)
    if not hint:
        hint = f"; allowed here: {', '.join(allowed)}"
    return f"{_UNKNOWN_KEY}{hint}"


def allowed_keys(schema: Schema, path: Path) -> list[str]:
    """The keys the schema accepts in the mapping at ``path`` (empty if not a schema)."""
    node: Any = schema
    for part in path:
        if isinstance(node, Schema):
            node = next(
                (f for name, f in node.fields.items() if (f.data_key or name) == part), None
            )
        elif isinstance(node, fields.List):
            node = node.inner
        elif isinstance(node, fields.Dict):
            node = node.value_field
        else:
            return []
        if isinstance(node, fields.Nested):
            node = node.schema
    if not isinstance(node, Schema):
        return []
    return [field.data_key or name for name, field in node.fields.items()]
