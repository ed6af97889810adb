"""Face schemas and faces: the schema rules, every face error named by field and rule, values never echoed."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import InvalidInput
from licences.errors import FaceSchemaInvalid, LicenceFaceHolderMismatch, LicenceFaceInvalid
from licences.face import (
    DIALECT,
    MAX_EXACT_INTEGER,
    MAX_PROPERTIES,
    chinese_date,
    face_rows,
    fields_with_share,
    share_types,
    validate_face,
    validate_face_schema,
)

HOLDER_NAME = "临江市示例科技有限公司"
HOLDER_CODE = "91330100MA2H7K3AX9"  # GB 32100-valid
UNPRINTABLE = "holds control, format or unassigned characters"
ID_NUMBER = "330102198503121236"  # GB 11643-valid; it must never come back in an error body


def schema(**changes: Any) -> dict[str, Any]:
    """A small face schema touching every supported field type."""
    base: dict[str, Any] = {
        "$schema": DIALECT,
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "title": "统一社会信用代码",
                "x-share-type": "unconditional",
                "x-holder": "code",
                "pattern": "^[0-9A-Z]{18}$",
            },
            "name": {
                "type": "string",
                "title": "名称",
                "x-share-type": "unconditional",
                "x-holder": "name",
                "maxLength": 60,
            },
            "legal_representative": {
                "type": "string",
                "title": "法定代表人",
                "x-share-type": "unconditional",
                "maxLength": 30,
            },
            "kind": {
                "type": "string",
                "title": "类型",
                "x-share-type": "unconditional",
                "enum": ["有限责任公司", "股份有限公司"],
            },
            "established_on": {"type": "string", "format": "date", "title": "成立日期", "x-share-type": "conditional"},
            "staff": {"type": "integer", "title": "从业人数", "x-share-type": "none", "minimum": 0},
            "area": {"type": "number", "title": "面积", "x-share-type": "conditional", "exclusiveMinimum": 0},
            "chain": {"type": "boolean", "title": "连锁经营", "x-share-type": "none"},
        },
        "required": ["code", "name", "legal_representative", "kind", "established_on"],
        "additionalProperties": False,
    }
    base.update(changes)
    return base


def face(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": HOLDER_CODE,
        "name": HOLDER_NAME,
        "legal_representative": "张三",
        "kind": "有限责任公司",
        "established_on": "2024-03-18",
        "staff": 12,
        "area": 120.5,
        "chain": False,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def check(value: dict[str, Any], the_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return validate_face(the_schema or schema(), value, holder_name=HOLDER_NAME, holder_code=HOLDER_CODE)


def refusal(value: Any, the_schema: dict[str, Any] | None = None) -> LicenceFaceInvalid:
    with pytest.raises(LicenceFaceInvalid) as caught:
        check(value, the_schema)
    return caught.value


def rules(exc: LicenceFaceInvalid | FaceSchemaInvalid) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in exc.extensions["errors"]}


def with_property(key: str, prop: dict[str, Any]) -> dict[str, Any]:
    s = schema()
    s["properties"][key] = prop
    return s


def schema_refusal(bad: Any) -> FaceSchemaInvalid:
    with pytest.raises(FaceSchemaInvalid) as caught:
        validate_face_schema(bad)
    return caught.value


# --- schemas -------------------------------------------------------------------------------------------


def test_a_good_schema_is_returned_unchanged() -> None:
    s = schema()
    before = copy.deepcopy(s)
    assert validate_face_schema(s) is s
    assert s == before


def test_schema_errors_are_invalid_input_with_a_stable_code() -> None:
    exc = schema_refusal(schema(additionalProperties=True))
    assert isinstance(exc, InvalidInput)
    body = exc.problem()
    assert (body["status"], body["code"]) == (422, "face_schema_invalid")
    assert body["errors"] == [
        {"field": "additionalProperties", "rule": "additionalProperties", "message": "must be false"}
    ]


def on(key: str, **changes: Any) -> Any:
    """A schema change: update property ``key`` (x_share_type stands for x-share-type)."""
    names = {k: k.replace("_", "-") if k.startswith("x_") else k for k in changes}
    return lambda s: s["properties"][key].update({names[k]: v for k, v in changes.items()})


def drop(key: str, keyword: str) -> Any:
    return lambda s: s["properties"][key].pop(keyword)


def rename(key: str, new: str) -> Any:
    return lambda s: s["properties"].update({new: s["properties"].pop(key)})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (drop("name", "title"), ("properties/name/title", "title")),
        (on("name", title="  "), ("properties/name/title", "title")),
        (on("name", title="名\x00称"), ("properties/name/title", "title")),
        (on("name", x_share_type="public"), ("properties/name/x-share-type", "x-share-type")),
        (drop("name", "x-share-type"), ("properties/name/x-share-type", "x-share-type")),
        (lambda s: s.pop("additionalProperties"), ("additionalProperties", "additionalProperties")),
        (lambda s: s.update(type="array"), ("type", "type")),
        (lambda s: s.update({"$schema": "http://json-schema.org/draft-07/schema#"}), ("$schema", "$schema")),
        (lambda s: s.pop("$schema"), ("$schema", "$schema")),
        (lambda s: s.update(required=["name", "nickname"]), ("required", "required")),
        (lambda s: s.update(properties={}), ("properties", "properties")),
        (lambda s: s.update(patternProperties={"^x": {}}), ("patternProperties", "keyword")),
        (on("name", type="object"), ("properties/name/type", "type")),
        (on("name", type=["string", "null"]), ("properties/name/type", "type")),
        (lambda s: s["properties"]["name"].update({"$ref": "#/$defs/x"}), ("properties/name/$ref", "keyword")),
        (on("staff", maxLength=3), ("properties/staff/maxLength", "keyword")),
        (on("area", multipleOf=0.01), ("properties/area/multipleOf", "keyword")),
        (on("name", format="email"), ("properties/name/format", "format")),
        (on("name", pattern="a" * 201), ("properties/name/pattern", "pattern")),
        (on("kind", enum=[1, 2]), ("properties/kind/enum", "enum")),
        (on("kind", x_holder="name"), ("properties/kind/x-holder", "x-holder")),
        (on("name", x_holder="id"), ("properties/name/x-holder", "x-holder")),
        (on("staff", x_holder="code"), ("properties/staff/x-holder", "x-holder")),
        (on("legal_representative", title="名称"), ("properties/legal_representative/title", "title")),
        (rename("name", "LegalName"), ("properties/LegalName", "key")),
    ],
)
def test_schemas_breaking_a_hub_rule_are_refused(change: Any, expected: tuple[str, str]) -> None:
    bad = schema()
    change(bad)
    exc = schema_refusal(bad)
    assert expected in rules(exc), exc.extensions["errors"]
    assert exc.detail.startswith("the face schema breaks")


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["properties"]["name"].update(maxLength=-1),
        lambda s: s["properties"]["name"].update(pattern="(unclosed"),
        lambda s: s["properties"]["name"].update(maxLength="60"),
        lambda s: s.update(required="name"),
        lambda s: s.update(required=["name", "name"]),
        lambda s: s["properties"]["kind"].update(enum="有限责任公司"),
        lambda s: s.update(additionalProperties="no"),
        lambda s: s["properties"].update(name=[]),
    ],
)
def test_schemas_that_are_not_valid_2020_12_are_refused(change: Any) -> None:
    bad = schema()
    change(bad)
    exc = schema_refusal(bad)
    assert exc.detail == "the face schema is not valid JSON Schema 2020-12"
    assert exc.extensions["errors"]
    assert all(set(e) == {"field", "rule", "message"} for e in exc.extensions["errors"])


def test_a_schema_that_is_not_an_object_is_refused() -> None:
    not_objects: tuple[Any, ...] = (None, [], "schema", 3)
    for bad in not_objects:
        assert rules(schema_refusal(bad)) == {("", "type")}


def test_too_many_fields_are_refused() -> None:
    props = {f"field_{i}": {"type": "string", "title": f"字段{i}", "x-share-type": "none"} for i in range(41)}
    exc = schema_refusal(schema(properties=props, required=[]))
    assert ("properties", "maxProperties") in rules(exc)
    assert len(props) == MAX_PROPERTIES + 1
    validate_face_schema(schema(properties=dict(list(props.items())[:MAX_PROPERTIES]), required=[]))


def test_every_problem_in_a_schema_is_reported_at_once() -> None:
    bad = schema(additionalProperties=True)
    bad["properties"]["name"].pop("title")
    bad["properties"]["staff"]["x-share-type"] = "sometimes"
    assert rules(schema_refusal(bad)) >= {
        ("additionalProperties", "additionalProperties"),
        ("properties/name/title", "title"),
        ("properties/staff/x-share-type", "x-share-type"),
    }


# --- faces ----------------------------------------------------------------------------------------------


def test_a_good_face_is_returned() -> None:
    good = face()
    assert check(good) is good
    check(face(staff=..., area=..., chain=...))  # optional fields may be absent
    check(face(area=3, staff=4.0))  # JSON Schema 2020-12: 4.0 is an integer


def test_face_errors_carry_their_code_status_and_fields() -> None:
    exc = refusal(face(legal_representative=7))
    body = exc.problem()
    assert (body["status"], body["code"]) == (422, "licence_face_invalid")
    assert body["errors"] == [
        {"field": "legal_representative", "rule": "type", "message": "must be a string", "label": "法定代表人"}
    ]


@pytest.mark.parametrize(
    ("value", "field", "rule", "message"),
    [
        (face(staff="12"), "staff", "type", "must be an integer"),
        (face(area="120.5"), "area", "type", "must be a number"),
        (face(chain="否"), "chain", "type", "must be true or false"),
        (face(staff=True), "staff", "type", "must be an integer"),
        (face(legal_representative=...), "legal_representative", "required", "required field 法定代表人 is missing"),
        (face(nickname="示例"), "nickname", "additionalProperties", "nickname is not a field of this licence type"),
        (face(legal_representative="张" * 31), "legal_representative", "maxLength", "longer than 30 characters"),
        (face(kind="合伙企业"), "kind", "enum", "must be one of: 有限责任公司, 股份有限公司"),
        (face(established_on="2024-02-30"), "established_on", "format", "must be a calendar date written YYYY-MM-DD"),
        (face(established_on="2024/03/18"), "established_on", "format", "must be a calendar date written YYYY-MM-DD"),
        (face(established_on="20240318"), "established_on", "format", "must be a calendar date written YYYY-MM-DD"),
        (face(staff=-1), "staff", "minimum", "must be at least 0"),
        (face(area=0), "area", "exclusiveMinimum", "must be greater than 0"),
        (face(code="91330100ma2h7k3ax9"), "code", "pattern", "does not match the pattern ^[0-9A-Z]{18}$"),
        (face(legal_representative="张\u202e三"), "legal_representative", "characters", UNPRINTABLE),
        (face(legal_representative="张\n三"), "legal_representative", "characters", UNPRINTABLE),
        (face(area=math.inf), "area", "type", "must be a finite number"),
        (face(area=math.nan), "area", "type", "must be a finite number"),
        (face(staff=MAX_EXACT_INTEGER + 1), "staff", "range", f"must lie within ±{MAX_EXACT_INTEGER} (RFC 8259 §6)"),
    ],
)  # fmt: skip
def test_each_rule_is_named_in_our_words(value: dict[str, Any], field: str, rule: str, message: str) -> None:
    errors = refusal(value).extensions["errors"]
    assert [(e["field"], e["rule"], e["message"]) for e in errors] == [(field, rule, message)]


def test_a_face_that_is_not_an_object_is_refused() -> None:
    not_objects: tuple[Any, ...] = (None, [], "face", 3)
    for value in not_objects:
        assert refusal(value).extensions["errors"] == [
            {"field": "", "rule": "type", "message": "the face must be a JSON object"}
        ]


def test_every_problem_is_reported_at_once_in_schema_order() -> None:
    exc = refusal(face(name=..., kind="合伙", established_on="soon", staff="many", extra=1))
    assert [(e["field"], e["rule"]) for e in exc.extensions["errors"]] == [
        ("name", "required"),
        ("kind", "enum"),
        ("established_on", "format"),
        ("staff", "type"),
        ("extra", "additionalProperties"),
    ]


def test_long_enums_are_summarised() -> None:
    values = [f"类别{i}" for i in range(20)]
    s = with_property("category", {"type": "string", "title": "类别", "x-share-type": "none", "enum": values})
    (error,) = refusal(face(category="其他"), s).extensions["errors"]
    assert error["message"] == "must be one of the 20 values the licence type lists"


def test_a_face_naming_another_holder_is_refused_without_values() -> None:
    with pytest.raises(LicenceFaceHolderMismatch) as caught:
        check(face(name="临江市另一家科技有限公司", code="91330100MA2J9P4B05"))
    exc = caught.value
    assert isinstance(exc, LicenceFaceInvalid)
    body = exc.problem()
    assert body["code"] == "licence_face_holder_mismatch"
    assert rules(exc) == {("code", "x-holder"), ("name", "x-holder")}
    text = json.dumps(body, ensure_ascii=False)
    for value in ("临江市另一家科技有限公司", "91330100MA2J9P4B05", HOLDER_NAME, HOLDER_CODE):
        assert value not in text


def test_holder_checks_are_exact() -> None:
    assert ("code", "x-holder") in rules(refusal(face(code=HOLDER_CODE[:-1] + "8")))
    assert ("name", "x-holder") in rules(refusal(face(name=HOLDER_NAME + " ")))


def test_holder_mismatch_beside_other_errors_is_plain_face_invalid() -> None:
    exc = refusal(face(name="别家公司", kind="合伙"))
    assert type(exc) is LicenceFaceInvalid
    assert rules(exc) == {("name", "x-holder"), ("kind", "enum")}
    # A field refused for its shape is not also reported as another holder's.
    assert rules(refusal(face(name="别" * 61))) == {("name", "maxLength")}


@pytest.mark.parametrize(
    "value",
    [
        face(staff=ID_NUMBER),  # type
        face(kind=ID_NUMBER),  # enum
        face(established_on=ID_NUMBER),  # format
        face(code=ID_NUMBER[:-1]),  # pattern
        face(legal_representative=ID_NUMBER * 2),  # maxLength
        face(chain=ID_NUMBER),  # boolean
        face(legal_representative=ID_NUMBER + "\x07"),  # characters
        face(**{ID_NUMBER: "张三"}),  # an unknown key that is itself personal data
        face(nickname=ID_NUMBER),  # an unknown field's value
        face(name=ID_NUMBER, code=ID_NUMBER),  # x-holder
        ID_NUMBER,  # not an object at all
        [ID_NUMBER],
    ],
)
def test_errors_never_echo_the_submitted_value(value: Any) -> None:
    with pytest.raises(LicenceFaceInvalid) as caught:
        check(value)
    body = caught.value.problem()
    assert ID_NUMBER not in str(body)
    assert ID_NUMBER[:-1] not in json.dumps(body, ensure_ascii=False)
    assert ID_NUMBER not in str(caught.value)


def test_the_error_list_is_bounded() -> None:
    exc = refusal(face(**{f"extra_{i}": i for i in range(500)}))
    assert len(exc.extensions["errors"]) <= 50


def test_a_broken_schema_is_refused_before_any_face_check() -> None:
    with pytest.raises(FaceSchemaInvalid):
        validate_face(schema(additionalProperties=True), face(), holder_name=HOLDER_NAME, holder_code=HOLDER_CODE)


# --- display and sharing --------------------------------------------------------------------------------


def test_face_rows_follow_schema_order_and_print_like_a_licence() -> None:
    value = face(chain=True, area=1e-7, staff=4.0)
    shuffled = dict(reversed(list(value.items())))
    assert face_rows(schema(), shuffled) == [
        ("统一社会信用代码", HOLDER_CODE),
        ("名称", HOLDER_NAME),
        ("法定代表人", "张三"),
        ("类型", "有限责任公司"),
        ("成立日期", "2024年03月18日"),
        ("从业人数", "4"),
        ("面积", "0.0000001"),
        ("连锁经营", "是"),
    ]
    rows = dict(face_rows(schema(), face(staff=..., area=120.5, chain=False)))
    assert "从业人数" not in rows
    assert (rows["面积"], rows["连锁经营"]) == ("120.5", "否")
    assert dict(face_rows(schema(), face(area=2.0)))["面积"] == "2"
    assert dict(face_rows(schema(), face(area=12345678.25)))["面积"] == "12345678.25"


def test_chinese_dates_pad_month_and_day() -> None:
    assert chinese_date("2024-03-08") == "2024年03月08日"
    assert chinese_date("1999-12-31") == "1999年12月31日"


def test_share_types_in_display_order() -> None:
    s = schema()
    assert share_types(s) == {
        "code": "unconditional",
        "name": "unconditional",
        "legal_representative": "unconditional",
        "kind": "unconditional",
        "established_on": "conditional",
        "staff": "none",
        "area": "conditional",
        "chain": "none",
    }
    assert fields_with_share(s, "conditional") == ["established_on", "area"]
    assert fields_with_share(s, "none", "conditional") == ["established_on", "staff", "area", "chain"]
    assert fields_with_share(s) == []
    with pytest.raises(ValueError, match="public"):
        fields_with_share(s, "public")


# --- whatever arrives ----------------------------------------------------------------------------------

MARKER = "龘龖龗𪚥"  # characters no schema title, rule or message here uses
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.text(alphabet=MARKER, min_size=4, max_size=80),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["有限责任公司", "股份有限公司", HOLDER_NAME, HOLDER_CODE]),
)
faces = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(schema()["properties"], field_values) | {"extra": field_values},
)


@settings(max_examples=300, deadline=None)
@given(value=faces | json_values)
def test_any_input_either_passes_or_is_refused_cleanly(value: Any) -> None:
    refused: LicenceFaceInvalid | None = None
    try:
        result = check(value)
    except LicenceFaceInvalid as exc:
        refused = exc
    if refused is None:
        assert result is value
        assert len(face_rows(schema(), result)) == len(result)
        return
    errors = refused.extensions["errors"]
    assert errors
    assert all({"field", "rule", "message"} <= set(e) for e in errors)
    assert not any(ch in str(refused.problem()) for ch in MARKER)
