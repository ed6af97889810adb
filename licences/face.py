"""Licence face (照面) schemas: what a licence type may declare, how a face is checked, and how it is displayed.

A face schema is a flat JSON Schema 2020-12 object schema whose properties each carry a Chinese ``title``
(the printed label) and an ``x-share-type`` (共享类型: unconditional 无条件 / conditional 有条件 / none 不予),
optionally ``x-holder`` ("name" | "code": the field repeats the holder's name or code). Property order is
display order. Schemas come from defining authorities and faces from issuers, and faces carry personal data
(ID numbers, addresses), so every error built here names the field and the rule, never the submitted value.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from licences.errors import FaceSchemaInvalid, LicenceFaceHolderMismatch, LicenceFaceInvalid

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SHARE_TYPES = ("unconditional", "conditional", "none")  # DESIGN.md §1 glossary: 共享类型
HOLDER_KINDS = ("name", "code")
FIELD_TYPES = ("string", "integer", "number", "boolean")
MAX_PROPERTIES = 40  # a face is one printed page; 40 rows is already past what any template holds
MAX_TITLE = 32
MAX_PATTERN = 200  # patterns run on every issuance: keep them short enough to read and review
MAX_ENUM = 100
MAX_ERRORS = 50  # bound the problem body however broken the input is
# RFC 8259 §6: integers beyond ±(2**53 - 1) do not survive every JSON implementation exactly.
MAX_EXACT_INTEGER = 2**53 - 1
_FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SCHEMA_KEYWORDS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "type", "properties", "required", "additionalProperties"}
)
_COMMON_KEYWORDS = frozenset({"title", "description", "$comment", "examples", "type", "x-share-type", "x-holder"})
# Per type, the validation keywords a face field may use. No $ref, no nesting, no multipleOf (jsonschema's
# float division raises on NaN); whatever is not listed is refused rather than silently ignored.
_TYPE_KEYWORDS = {
    "string": frozenset({"maxLength", "minLength", "pattern", "format", "enum"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
}
_FORMATS = ("date",)
# Control, format (bidi overrides, zero-width joiners), surrogate, private-use, unassigned and line/paragraph
# separator characters: a printed face cannot show them faithfully, and bidi controls can disguise text.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA, format_checker=FormatChecker())
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
}


def validate_face_schema(schema: Any) -> dict[str, Any]:
    """Accept a face schema only if it is valid 2020-12 and follows our rules; return it unchanged.

    The rules keep faces flat and printable: string/integer/number/boolean fields only, each labelled and
    with a share type, no unknown keys (additionalProperties false) so nothing unlabelled rides along.
    """
    if not isinstance(schema, dict):
        raise FaceSchemaInvalid("a face schema is a JSON object", errors=[_error("", "type", "must be an object")])
    meta = [
        _error(_path(e.absolute_path), str(e.validator), _clip(e.message))
        for e in sorted(_META_VALIDATOR.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if meta:
        raise FaceSchemaInvalid("the face schema is not valid JSON Schema 2020-12", errors=meta[:MAX_ERRORS])
    errors = list(_schema_rule_errors(schema))
    if errors:
        raise FaceSchemaInvalid(
            f"the face schema breaks {len(errors)} of the hub's face schema rules", errors=errors[:MAX_ERRORS]
        )
    return schema


def _schema_rule_errors(schema: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield from _top_level_errors(schema)
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        yield _error("properties", "properties", "must list at least one field")
        return
    if len(properties) > MAX_PROPERTIES:
        yield _error("properties", "maxProperties", f"at most {MAX_PROPERTIES} fields fit on a licence face")
    titles: dict[str, str] = {}
    for key, prop in properties.items():
        yield from _property_errors(key, prop)
        title = prop.get("title") if isinstance(prop, dict) else None
        if isinstance(title, str) and title in titles:
            yield _error(f"properties/{key}/title", "title", f"repeats the label of field {titles[title]}")
        elif isinstance(title, str):
            titles[title] = key
    for name in schema.get("required", []):
        if name not in properties:
            yield _error("required", "required", f"names {name}, which is not one of the properties")


def _top_level_errors(schema: dict[str, Any]) -> Iterator[dict[str, str]]:
    if schema.get("$schema") != DIALECT:
        yield _error("$schema", "$schema", f"must be {DIALECT}")
    for key in sorted(set(schema) - _SCHEMA_KEYWORDS):
        yield _error(key, "keyword", f"not allowed at the top of a face schema; allowed: {_list(_SCHEMA_KEYWORDS)}")
    if schema.get("type") != "object":
        yield _error("type", "type", "must be object")
    if schema.get("additionalProperties") is not False:
        yield _error("additionalProperties", "additionalProperties", "must be false")


def _property_errors(key: str, prop: Any) -> Iterator[dict[str, str]]:
    at = f"properties/{key}"
    if not _FIELD_KEY.fullmatch(key):
        yield _error(at, "key", "field keys are snake_case identifiers: a-z first, then a-z 0-9 _ (at most 64)")
    if not isinstance(prop, dict):
        yield _error(at, "type", "a field is described by an object")
        return
    title = prop.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE or _has_bad_characters(title):
        yield _error(f"{at}/title", "title", f"every field needs its printed label: 1-{MAX_TITLE} visible characters")
    if prop.get("x-share-type") not in SHARE_TYPES:
        yield _error(f"{at}/x-share-type", "x-share-type", f"must be one of: {', '.join(SHARE_TYPES)}")
    field_type = prop.get("type")
    if field_type not in FIELD_TYPES:
        yield _error(f"{at}/type", "type", f"must be one of: {', '.join(FIELD_TYPES)}")
        return
    allowed = _COMMON_KEYWORDS | _TYPE_KEYWORDS[field_type]
    for keyword in sorted(set(prop) - allowed):
        yield _error(f"{at}/{keyword}", "keyword", f"not allowed on a {field_type} field; allowed: {_list(allowed)}")
    yield from _string_rule_errors(at, prop)


def _string_rule_errors(at: str, prop: dict[str, Any]) -> Iterator[dict[str, str]]:
    if "format" in prop and prop["format"] not in _FORMATS:
        yield _error(f"{at}/format", "format", f"the only supported format is {', '.join(_FORMATS)}")
    if "enum" in prop:
        enum = prop["enum"]
        if not 0 < len(enum) <= MAX_ENUM or not all(isinstance(v, str) and v and len(v) <= 200 for v in enum):
            yield _error(f"{at}/enum", "enum", f"must list 1-{MAX_ENUM} non-empty strings of at most 200 characters")
    if "pattern" in prop:
        yield from _pattern_errors(f"{at}/pattern", prop["pattern"])
    holder = prop.get("x-holder")
    if holder is not None and (
        holder not in HOLDER_KINDS or prop["type"] != "string" or "enum" in prop or "format" in prop
    ):
        yield _error(f"{at}/x-holder", "x-holder", "must be name or code, on a free-text string field")


def _pattern_errors(at: str, pattern: str) -> Iterator[dict[str, str]]:
    # The metaschema's "regex" format already refused what Python's re cannot compile.
    if len(pattern) > MAX_PATTERN:
        yield _error(at, "pattern", f"at most {MAX_PATTERN} characters")


def validate_face(schema: dict[str, Any], face: Any, *, holder_name: str, holder_code: str) -> dict[str, Any]:
    """Check a face against its type's schema and the holder; return it, or raise with every problem found.

    Raises LicenceFaceInvalid listing ``{"field", "label", "rule", "message"}`` for each problem, or its
    subclass LicenceFaceHolderMismatch when the face is well formed but repeats another holder's name or code.
    """
    validator = _face_validator(json.dumps(schema, sort_keys=True, ensure_ascii=False))
    properties: dict[str, Any] = schema["properties"]
    errors: list[dict[str, str]] = []
    for error in validator.iter_errors(face):
        errors.extend(_face_errors(error, properties, face))
    if isinstance(face, dict):
        errors.extend(_value_errors(properties, face))
        # A field already refused is not also compared with the holder: one clear reason per field.
        refused = {e["field"] for e in errors}
        holder = _holder_errors(properties, face, holder_name=holder_name, holder_code=holder_code)
        errors.extend(e for e in holder if e["field"] not in refused)
    if not errors and isinstance(face, dict):
        return face
    unique = list({(e["field"], e["rule"]): e for e in errors}.values())
    unique.sort(key=lambda e: (_order(properties, e["field"]), e["rule"]))
    if all(e["rule"] == "x-holder" for e in unique):
        fields = ", ".join(e["field"] for e in unique)
        raise LicenceFaceHolderMismatch(
            f"face field(s) {fields} must repeat the licence holder's name or code exactly", errors=unique
        )
    raise LicenceFaceInvalid(f"the licence face has {len(unique)} problem(s); see errors", errors=unique[:MAX_ERRORS])


@lru_cache(maxsize=64)
def _face_validator(schema_json: str) -> Draft202012Validator:
    """A checked, compiled validator per distinct schema: types change rarely, faces are checked per issue."""
    schema = validate_face_schema(json.loads(schema_json))
    return Draft202012Validator(schema, format_checker=FormatChecker(formats=_FORMATS))


def _face_errors(error: ValidationError, properties: dict[str, Any], face: Any) -> list[dict[str, str]]:
    """Our own words for a jsonschema error: jsonschema's messages quote the instance, which may be personal."""
    keyword, limit = str(error.validator), cast("Any", error.validator_value)
    path = _path(error.absolute_path)
    if keyword == "required" and isinstance(face, dict):
        return [
            _field_error(properties, name, "required", f"required field {_title(properties, name)} is missing")
            for name in limit
            if name not in face
        ]
    if keyword == "additionalProperties" and isinstance(face, dict):
        extra = [key for key in face if key not in properties]
        return [
            _field_error(properties, key, "additionalProperties", f"{key} is not a field of this licence type")
            if isinstance(key, str) and _FIELD_KEY.fullmatch(key)
            else _error("", "additionalProperties", "the face holds a field this licence type does not define")
            for key in extra
        ]
    if keyword == "type" and not path:
        return [_error("", "type", "the face must be a JSON object")]
    return [_field_error(properties, path, keyword, _rule_text(keyword, limit))]


def _rule_text(keyword: str, limit: Any) -> str:
    texts = {
        "type": lambda: f"must be {_TYPE_WORDS.get(str(limit), str(limit))}",
        "maxLength": lambda: f"longer than {limit} characters",
        "minLength": lambda: "must not be empty" if limit == 1 else f"shorter than {limit} characters",
        "pattern": lambda: f"does not match the pattern {limit}",
        "enum": lambda: (
            f"must be one of: {', '.join(map(str, limit))}"
            if len(limit) <= 12
            else f"must be one of the {len(limit)} values the licence type lists"
        ),
        "format": lambda: "must be a calendar date written YYYY-MM-DD" if limit == "date" else f"must be a {limit}",
        "minimum": lambda: f"must be at least {limit}",
        "maximum": lambda: f"must be at most {limit}",
        "exclusiveMinimum": lambda: f"must be greater than {limit}",
        "exclusiveMaximum": lambda: f"must be less than {limit}",
    }
    text = texts.get(keyword)
    return text() if text else f"breaks the schema rule {keyword}"


def _value_errors(properties: dict[str, Any], face: dict[Any, Any]) -> Iterator[dict[str, str]]:
    """What JSON Schema cannot say: printable text, finite numbers, integers that survive JSON."""
    for key, prop in properties.items():
        value = face.get(key)
        if isinstance(value, str) and _has_bad_characters(value):
            yield _field_error(properties, key, "characters", "holds control, format or unassigned characters")
        elif prop["type"] not in {"integer", "number"} or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        elif isinstance(value, float) and not math.isfinite(value):
            yield _field_error(properties, key, "type", "must be a finite number")
        elif abs(value) > MAX_EXACT_INTEGER:
            yield _field_error(properties, key, "range", f"must lie within ±{MAX_EXACT_INTEGER} (RFC 8259 §6)")


def _holder_errors(
    properties: dict[str, Any], face: dict[Any, Any], *, holder_name: str, holder_code: str
) -> Iterator[dict[str, str]]:
    """x-holder fields must print the holder exactly: a licence showing someone else's code is forged-looking."""
    expected = {"name": holder_name, "code": holder_code}
    for key, prop in properties.items():
        kind = prop.get("x-holder")
        value = face.get(key)
        if kind in expected and isinstance(value, str) and value != expected[kind]:
            yield _field_error(properties, key, "x-holder", f"must equal the licence holder's {kind} exactly")


def face_rows(schema: dict[str, Any], face: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, display value) pairs in schema order, for the renderer; absent optional fields are left out."""
    rows = []
    for key, prop in schema["properties"].items():
        if key in face:
            rows.append((str(prop["title"]), display_value(prop, face[key])))
    return rows


def display_value(prop: dict[str, Any], value: Any) -> str:
    """How a validated value is printed: dates 2024年03月18日, booleans 是/否, numbers without exponents."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if prop.get("format") == "date" and isinstance(value, str):
        return chinese_date(value)
    return str(value)


def chinese_date(value: date | str) -> str:
    """The way licences print dates (GB/T 7408 order, Chinese units, two-digit month and day)."""
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def share_types(schema: dict[str, Any]) -> dict[str, str]:
    """Field key to share type, in display order: the exchange discloses a field only as its type allows."""
    return {key: str(prop["x-share-type"]) for key, prop in schema["properties"].items()}


def fields_with_share(schema: dict[str, Any], *wanted: str) -> list[str]:
    """Keys of the fields whose share type is one of ``wanted``, in display order.

    An unknown share type is a programming error (a typo would silently select nothing): ValueError.
    """
    unknown = sorted(set(wanted) - set(SHARE_TYPES))
    if unknown:
        msg = f"unknown share type(s) {', '.join(unknown)}; use {', '.join(SHARE_TYPES)}"
        raise ValueError(msg)
    return [key for key, share in share_types(schema).items() if share in wanted]


def _has_bad_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in text)


def _field_error(properties: dict[str, Any], field: str, rule: str, message: str) -> dict[str, str]:
    error = _error(field, rule, message)
    prop = properties.get(field)
    if isinstance(prop, dict) and isinstance(prop.get("title"), str):
        error["label"] = prop["title"]
    return error


def _error(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def _title(properties: dict[str, Any], key: str) -> str:
    prop = properties.get(key)
    return str(prop["title"]) if isinstance(prop, dict) and "title" in prop else key


def _order(properties: dict[str, Any], field: str) -> int:
    keys = list(properties)
    return keys.index(field) if field in properties else len(keys)


def _path(parts: Iterable[Any]) -> str:
    return "/".join(str(part) for part in parts)


def _list(words: Iterable[str]) -> str:
    return ", ".join(sorted(words))


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
