"""Question banks: versioned YAML files of competencies, items and open questions.

A bank is data (``question_banks/*.yaml``, format in :mod:`surveys.bank_schema`), validated
all-or-nothing: :func:`load_bank` either returns a complete :class:`Bank` or raises
:class:`BankError` listing *every* problem with the file name and the path inside it::

    leadership.yaml: competencies[2].items[0].id: duplicate item id 'x' (first at …)

A cycle freezes the bank it was launched with via :meth:`Bank.to_snapshot`; the snapshot is
itself a valid ``schema_version: 1`` document, so :meth:`Bank.from_snapshot` re-validates it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from marshmallow import ValidationError

from question_banks import BANK_DIR
from surveys.bank_schema import (
    SUPPORTED_SCHEMA_VERSIONS,
    BankSchema,
    flatten_errors,
    format_path,
    is_supported_version,
    unsupported_version_message,
)

__all__ = [
    "SUPPORTED_SCHEMA_VERSIONS",
    "Bank",
    "BankError",
    "BankSchema",
    "Competency",
    "Item",
    "OpenQuestion",
    "Scale",
    "UnknownBankError",
    "bundled_bank_paths",
    "get_bank",
    "list_banks",
    "load_bank",
    "parse_bank",
]

SNAPSHOT_SCHEMA_VERSION = 1
#: Limits that keep a hostile or broken file from exhausting memory or time.
MAX_FILE_BYTES = 1_000_000
MAX_ALIASES = 50


class BankError(ValueError):
    """A bank file is invalid. ``errors`` holds every problem as ``(path, problem)``.

    ``path`` is the place inside the document (``competencies[2].items[0].id``; empty for
    the file as a whole, ``line 12, column 3`` for YAML syntax errors); ``lines`` maps a
    path to its line in the YAML file where that is known.
    """

    def __init__(
        self,
        source: str,
        errors: Iterable[tuple[str, str]],
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self.source = source
        self.errors: list[tuple[str, str]] = list(errors)
        self.lines: dict[str, int] = dict(lines or {})
        super().__init__(self._format())

    def _format(self) -> str:
        out = []
        for path, problem in self.errors:
            where = f"{self.source}: {path}: " if path else f"{self.source}: "
            line = self.lines.get(path)
            out.append(f"{where}{problem}" + (f"  [line {line}]" if line else ""))
        return "\n".join(out)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.errors, self.lines))


class UnknownBankError(LookupError):
    """No bundled bank has this key; the message lists the keys there are."""

    def __init__(self, key: str, available: Iterable[str]) -> None:
        self.key = key
        self.available = sorted(available)
        super().__init__(
            f"unknown question bank {key!r}; available: {', '.join(self.available) or 'none'}"
        )


# -- domain objects ----------------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


def _thaw(value: Any) -> Any:
    """Plain, JSON-serialisable dicts again (mapping keys become strings, as JSON does)."""
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    return value


def _render(text: str, name: str) -> str:
    # Validation guarantees {name} is the only placeholder, so format() cannot fail.
    return text.format(name=name)


@dataclass(frozen=True)
class Scale:
    """The rating scale: consecutive integer points with labels, plus an explicit N/A."""

    labels: Mapping[int, str] = field(hash=False)
    na_label: str

    @property
    def min(self) -> int:
        return min(self.labels)

    @property
    def max(self) -> int:
        return max(self.labels)

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1))


@dataclass(frozen=True)
class Item:
    """One rated statement, worded for the participant (``self``) and for everyone else."""

    id: str
    competency_id: str
    self_text: str
    others_text: str
    required: bool = False

    def text(self, role: str, name: str) -> str:
        """The wording for ``role`` ("self", anything else = others) with ``{name}`` filled."""
        return _render(self.self_text if role == "self" else self.others_text, name)


@dataclass(frozen=True)
class Competency:
    id: str
    title: str
    description: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class OpenQuestion:
    """A free-text question; answers are shown verbatim, subject to the anonymity rules."""

    id: str
    self_text: str
    others_text: str
    required: bool = False

    def text(self, role: str, name: str) -> str:
        """The wording for ``role`` ("self", anything else = others) with ``{name}`` filled."""
        return _render(self.self_text if role == "self" else self.others_text, name)


@dataclass(frozen=True)
class Bank:
    """A validated question bank. Immutable; bundled banks are shared from a cache.

    ``translations`` is the (read-only) ``translations`` section of the file:
    ``{lang: {"title": …, "items": {item_id: {"self_text": …, "others_text": …}}, …}}``;
    use :meth:`localized` rather than reading it directly.
    """

    key: str
    version: str
    title: str
    description: str
    language: str
    scale: Scale
    competencies: tuple[Competency, ...]
    open_questions: tuple[OpenQuestion, ...] = ()
    translations: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    @cached_property
    def items(self) -> tuple[Item, ...]:
        """Every item, in questionnaire order."""
        return tuple(item for competency in self.competencies for item in competency.items)

    @property
    def minutes_to_answer(self) -> int:
        """What invitations promise: ~12 s a statement and a minute an open question,
        rounded to the nearest 5 minutes (at least 5)."""
        seconds = 12 * len(self.items) + 60 * len(self.open_questions)
        return max(5, 5 * round(seconds / 300))

    @cached_property
    def _items_by_id(self) -> Mapping[str, Item]:
        return MappingProxyType({item.id: item for item in self.items})

    @property
    def item_competency(self) -> dict[str, str]:
        """``{item_id: competency_id}``, e.g. to score ratings exported from elsewhere."""
        return {item.id: item.competency_id for item in self.items}

    def item(self, item_id: str) -> Item:
        """The item with this id (``KeyError`` if there is none)."""
        return self._items_by_id[item_id]

    @property
    def languages(self) -> tuple[str, ...]:
        """The main language first, then the translations in file order."""
        return (self.language, *self.translations)

    def localized(self, lang: str) -> Bank:
        """This bank with its texts in ``lang``, each missing text falling back to the main
        language.

        ``lang`` matches a translation exactly, case-insensitively, or by its base language
        (``de-CH`` -> ``de``). For the main language or a language without a translation
        the bank itself is returned, so check ``.language`` to see what you got. The result
        is a single-language bank (no ``translations``): localize the original again to
        switch languages.
        """
        code = self._resolve_language(lang)
        if code is None:
            return self
        tr = self.translations[code]
        scale_tr = tr.get("scale", {})
        competencies_tr = tr.get("competencies", {})
        items_tr = tr.get("items", {})
        questions_tr = tr.get("open_questions", {})

        def texts(entry: Mapping[str, Any], obj: Item | OpenQuestion) -> dict[str, str]:
            return {
                "self_text": entry.get("self_text", obj.self_text),
                "others_text": entry.get("others_text", obj.others_text),
            }

        competencies = []
        for competency in self.competencies:
            ctr = competencies_tr.get(competency.id, {})
            items = tuple(
                Item(
                    id=item.id,
                    competency_id=item.competency_id,
                    required=item.required,
                    **texts(items_tr.get(item.id, {}), item),
                )
                for item in competency.items
            )
            competencies.append(
                Competency(
                    id=competency.id,
                    title=ctr.get("title", competency.title),
                    description=ctr.get("description", competency.description),
                    items=items,
                )
            )
        labels = {**self.scale.labels, **scale_tr.get("labels", {})}
        return Bank(
            key=self.key,
            version=self.version,
            title=tr.get("title", self.title),
            description=tr.get("description", self.description),
            language=code,
            scale=Scale(
                labels=MappingProxyType(labels),
                na_label=scale_tr.get("na_label", self.scale.na_label),
            ),
            competencies=tuple(competencies),
            open_questions=tuple(
                OpenQuestion(
                    id=question.id,
                    required=question.required,
                    **texts(questions_tr.get(question.id, {}), question),
                )
                for question in self.open_questions
            ),
        )

    def _resolve_language(self, lang: str) -> str | None:
        wanted = lang.strip().lower()
        if wanted in (self.language.lower(), self.language.lower().split("-")[0]):
            return None
        by_lower = {code.lower(): code for code in self.translations}
        for candidate in (wanted, wanted.split("-")[0]):
            if candidate == self.language.lower():
                return None
            if candidate in by_lower:
                return by_lower[candidate]
        return None

    # -- snapshots ---------------------------------------------------------------------------

    def to_snapshot(self) -> dict[str, Any]:
        """The bank as a JSON-serialisable ``schema_version: 1`` document.

        Stored in the cycle so later edits to the bank file never change a running cycle.
        """

        def wording(obj: Item | OpenQuestion) -> dict[str, Any]:
            return {
                "id": obj.id,
                "self": obj.self_text,
                "others": obj.others_text,
                "required": obj.required,
            }

        translations = {}
        for lang, tr in self.translations.items():
            out = _thaw(tr)
            for section in ("items", "open_questions"):
                if section in out:
                    out[section] = {
                        ref: _rename(entry, {"self_text": "self", "others_text": "others"})
                        for ref, entry in out[section].items()
                    }
            translations[lang] = out
        return {
            "schema_version": SNAPSHOT_SCHEMA_VERSION,
            "key": self.key,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "language": self.language,
            "scale": {
                "labels": {str(k): v for k, v in sorted(self.scale.labels.items())},
                "na_label": self.scale.na_label,
            },
            "competencies": [
                {
                    "id": c.id,
                    "title": c.title,
                    "description": c.description,
                    "items": [wording(item) for item in c.items],
                }
                for c in self.competencies
            ],
            "open_questions": [wording(q) for q in self.open_questions],
            "translations": translations,
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Bank:
        """The bank back from :meth:`to_snapshot` (validated; ``BankError`` if tampered)."""
        return parse_bank(snapshot, source="<snapshot>")


def _rename(entry: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in entry.items()}


# -- parsing -----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every key and reports duplicate keys
    (plain PyYAML silently keeps the last one)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.duplicates: list[tuple[int, Any, int]] = []
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Aliases share objects, so a few nested ones make validation walk an exponentially
        # large document ("billion laughs"). Banks have no real need for many of them.
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_ALIASES} aliases (*name); write the texts out instead",
                    self.peek_event().start_mark,
                )
        return super().compose_node(parent, index)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in seen:
                loader.duplicates.append((line, key, seen[key]))
            else:
                seen[key] = line
        except TypeError:  # unhashable key: construct_mapping reports it
            pass
    mapping = loader.construct_mapping(node, deep=True)
    loader.key_lines[id(mapping)] = seen
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> list[Any]:
    sequence = loader.construct_sequence(node, deep=True)
    loader.key_lines[id(sequence)] = {
        index: child.start_mark.line + 1 for index, child in enumerate(node.value)
    }
    return sequence


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass
class _Parsed:
    data: Any
    errors: list[tuple[str, str]]
    key_lines: dict[int, dict[Any, int]]


#: ``others: {name} listens`` -- YAML reads the braces as a mapping and then chokes.
_UNQUOTED_BRACE = re.compile(r":\s+\{[^}]*\}\s*[^\s,}#]")


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def _parse_yaml(text: str) -> _Parsed:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark and _UNQUOTED_BRACE.search(_line(text, mark.line)):
            problem += "; a text that starts with '{' (like {name}) must be put in quotes"
        return _Parsed(None, [(where, f"invalid YAML: {problem}")], {})
    except yaml.YAMLError as exc:
        return _Parsed(None, [("", f"invalid YAML: {exc}")], {})
    finally:
        loader.dispose()
    errors = [
        (
            f"line {line}",
            f"duplicate key {key!r} (first at line {first}); YAML would keep only the last one",
        )
        for line, key, first in loader.duplicates
    ]
    return _Parsed(data, errors, loader.key_lines)


def _line_of(data: Any, path: tuple[Any, ...], key_lines: dict[int, dict[Any, int]]) -> int:
    """The YAML line of ``path`` (or of its nearest ancestor that exists); 0 if unknown."""
    line = 0
    node = data
    for part in path:
        lines = key_lines.get(id(node), {})
        if part not in lines:
            break
        line = lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def parse_bank(data: Mapping[str, Any] | str, source: str = "<string>") -> Bank:
    """Validate a bank document (a parsed mapping, or YAML text) and build the :class:`Bank`.

    Raises :class:`BankError` with every problem found. A ``schema_version`` this program
    does not know is the only error reported: the rest of such a file cannot be interpreted.
    """
    key_lines: dict[int, dict[Any, int]] = {}
    #: Duplicate keys; their path is "line N".
    yaml_errors: list[tuple[str, str]] = []
    document: Any = data
    if isinstance(data, str):
        parsed = _parse_yaml(data)
        if parsed.data is None and parsed.errors:
            raise BankError(source, parsed.errors)
        document, yaml_errors, key_lines = parsed.data, parsed.errors, parsed.key_lines
    if document is None:
        raise BankError(source, [("", "is empty; expected a question bank (schema_version: 1, …)")])
    if isinstance(document, Mapping) and "schema_version" in document:
        version = document["schema_version"]
        if version is not None and not is_supported_version(version):
            raise BankError(source, [("schema_version", unsupported_version_message(version))])

    schema = BankSchema()
    try:
        loaded = schema.load(document)
    except ValidationError as exc:
        located = [
            (_line_of(document, path, key_lines), format_path(path), problem)
            for path, problem in flatten_errors(exc.messages, schema)
        ]
        located += [(int(path.split()[1]), path, problem) for path, problem in yaml_errors]
        # Document order where lines are known; missing top-level keys (line 0) first.
        located.sort(key=lambda entry: entry[0])
        lines = {path: line for line, path, _ in located if line and not path.startswith("line ")}
        raise BankError(source, [(path, problem) for _, path, problem in located], lines) from None
    if yaml_errors:  # duplicate YAML keys in an otherwise valid document
        raise BankError(source, yaml_errors)
    return _build(loaded)


def _build(doc: Mapping[str, Any]) -> Bank:
    competencies = tuple(
        Competency(
            id=c["id"],
            title=c["title"],
            description=c["description"],
            items=tuple(
                Item(
                    id=i["id"],
                    competency_id=c["id"],
                    self_text=i["self_text"],
                    others_text=i["others_text"],
                    required=i["required"],
                )
                for i in c["items"]
            ),
        )
        for c in doc["competencies"]
    )
    return Bank(
        key=doc["key"],
        version=doc["version"],
        title=doc["title"],
        description=doc["description"],
        language=doc["language"],
        scale=Scale(
            labels=MappingProxyType(dict(sorted(doc["scale"]["labels"].items()))),
            na_label=doc["scale"]["na_label"],
        ),
        competencies=competencies,
        open_questions=tuple(
            OpenQuestion(
                id=q["id"],
                self_text=q["self_text"],
                others_text=q["others_text"],
                required=q["required"],
            )
            for q in doc["open_questions"]
        ),
        translations=_freeze(doc["translations"]),
    )


def load_bank(path: str | Path, source: str | None = None) -> Bank:
    """Load and validate one bank file. ``source`` names it in errors (default: ``path``)."""
    path = Path(path)
    source = source if source is not None else str(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise BankError(source, [("", f"is larger than {MAX_FILE_BYTES:,} bytes")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BankError(source, [("", "file not found")]) from None
    except IsADirectoryError:
        raise BankError(source, [("", "is a directory, not a bank file")]) from None
    except OSError as exc:
        raise BankError(source, [("", f"cannot be read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BankError(
            source, [("", f"is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8")]
        ) from None
    return parse_bank(text, source=source)


# -- bundled banks -----------------------------------------------------------------------------


def bundled_bank_paths() -> dict[str, Path]:
    """``{key: path}`` of the banks shipped in ``question_banks/`` (file name = key)."""
    return {path.stem: path for path in sorted(BANK_DIR.glob("*.yaml"))}


def get_bank(key: str) -> Bank:
    """The bundled bank with this key.

    Raises :class:`UnknownBankError` (a ``LookupError``) listing the available keys, or
    :class:`BankError` if the file is invalid. Loads are cached (and re-read if the file
    changes), so calling this per request is cheap.
    """
    paths = bundled_bank_paths()
    if key not in paths:
        raise UnknownBankError(key, paths)
    path = paths[key]
    stat = path.stat()
    return _load_bundled(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load_bundled(path: Path, mtime_ns: int, size: int) -> Bank:
    bank = load_bank(path, source=path.name)
    if bank.key != path.stem:
        raise BankError(
            path.name,
            [("key", f"is {bank.key!r} but a bundled bank's file must be named <key>.yaml")],
        )
    return bank


def list_banks() -> list[Bank]:
    """Every bundled bank, sorted by key."""
    return [get_bank(key) for key in sorted(bundled_bank_paths())]
