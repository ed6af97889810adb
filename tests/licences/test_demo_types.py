"""The five demo licence types: valid codes and schemas, believable faces, and PDFs that hold even the longest face."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codes import make_id_number, make_uscc, uscc_check_char, validate_id_number, validate_uscc
from hub.errors import InvalidIdNumber
from licences.demo_types import CITIZEN, COMPANY, DEMO_TYPES, DemoType
from licences.errors import LicenceFaceInvalid
from licences.face import face_rows, fields_with_share, share_types, validate_face, validate_face_schema
from licences.identifiers import make_identifier, validate_type_code
from licences.render import TEMPLATES, LicenceDocument, render_licence

ISSUER = make_uscc("1", "1", "330100", "00201002")  # 临江市市场监督管理局 in hub/demo.py
COMPANY_HOLDER = ("临江市青禾餐饮管理有限公司", make_uscc("9", "1", "330100", "MA2H7K3A"))
CITIZEN_HOLDER = ("张伟", make_id_number("330102", dt.date(1985, 3, 12), "123"))
WOMAN_HOLDER = ("李娜", make_id_number("330106", dt.date(1992, 11, 2), "246"))
BY_NAME = {t.name: t for t in DEMO_TYPES}
IDS = [t.name for t in DEMO_TYPES]
SHARES = {"unconditional", "conditional", "none"}
PDFTOTEXT = shutil.which("pdftotext")


def holder(demo: DemoType) -> tuple[str, str]:
    return COMPANY_HOLDER if demo.holder_type == COMPANY else CITIZEN_HOLDER


def number(demo: DemoType, face: dict[str, Any], serial: int) -> str:
    """The certificate_number each licence prints: a face code where there is one, else the registry's number."""
    field = {
        "营业执照": "unified_social_credit_code",
        "食品经营许可证": "licence_number",
        "户口登记": "household_number",
        "医师执业证书": "certificate_code",
    }.get(demo.name)
    return str(face[field]) if field else f"浙(2024)临江市不动产权第{serial + 1:07d}号"


def document(demo: DemoType, name: str, code: str, face: dict[str, Any], serial: int = 0) -> LicenceDocument:
    metadata = {
        "certificate_identifier": str(make_identifier(demo.type_code, ISSUER, str(1000 + serial))),
        "certificate_name": demo.name,
        "certificate_number": number(demo, face, serial),
        "certificate_type_code": demo.type_code,
        "certificate_type_name": demo.name,
        "certificate_version": "001",
        "certificate_issuing_authority_name": "临江市市场监督管理局",
        "certificate_issuing_authority_code": ISSUER,
        "certificate_issue_date": "2024-03-18",
        "certificate_validity_start": "2024-03-18",
        "certificate_validity_end": "9999-12-31",
        "certificate_area_code": "330100",
        "certificate_holder_name": name,
        "certificate_holder_code": code,
        "certificate_holder_type": demo.holder_type,
        "status": "valid",
    }
    return LicenceDocument(
        metadata=metadata,
        face=face_rows(demo.face_schema, face),
        qr_url=f"https://hub.example.gov.cn/v/demo-{serial:06d}",
    )


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "licence.pdf"
    path.write_bytes(pdf)
    with pikepdf.open(path) as opened:
        assert len(opened.pages) == 1
    assert PDFTOTEXT, "poppler-utils provides pdftotext"
    out = subprocess.run(
        [PDFTOTEXT, "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    )
    return re.sub(r"\s+", "", out.stdout)


# --- the types ------------------------------------------------------------------------------------------


def test_the_five_types() -> None:
    assert IDS == ["营业执照", "食品经营许可证", "户口登记", "不动产权证书", "医师执业证书"]
    assert len({t.type_code for t in DEMO_TYPES}) == len(DEMO_TYPES)
    assert BY_NAME["营业执照"].type_code == "11100000000013338W032"  # DESIGN.md §3 test vector
    assert {t.name: t.holder_type for t in DEMO_TYPES} == {
        "营业执照": COMPANY,
        "食品经营许可证": COMPANY,
        "户口登记": CITIZEN,
        "不动产权证书": CITIZEN,
        "医师执业证书": CITIZEN,
    }
    assert {t.name: t.defining_authority_name for t in DEMO_TYPES} == {
        "营业执照": "国家市场监督管理总局",
        "食品经营许可证": "国家市场监督管理总局",
        "户口登记": "公安部",
        "不动产权证书": "自然资源部",
        "医师执业证书": "国家卫生健康委员会",
    }


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_codes_are_valid_gb_32100_and_gb_t_36904(demo: DemoType) -> None:
    authority = demo.defining_authority_code
    assert validate_uscc(authority) == authority
    assert authority[17] == uscc_check_char(authority[:17])
    assert validate_type_code(demo.type_code) == demo.type_code
    assert demo.type_code[:18] == authority
    assert re.fullmatch(r"[0-9]{3}", demo.type_code[18:])


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_validity_and_template_are_known(demo: DemoType) -> None:
    assert demo.validity in ({"kind": "permanent"}, {"kind": "years", "years": 5})
    assert demo.template in TEMPLATES
    assert (demo.name == "营业执照") == (demo.template == "business-licence-a4-landscape")
    assert BY_NAME["食品经营许可证"].validity == {"kind": "years", "years": 5}


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_schemas_pass_the_hub_rules(demo: DemoType) -> None:
    schema = demo.face_schema
    assert validate_face_schema(schema) is schema
    for key, prop in schema["properties"].items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key)
        assert prop["title"]
        assert prop["x-share-type"] in SHARES
        if prop["type"] == "string" and "enum" not in prop and prop.get("format") != "date":
            assert "maxLength" in prop, f"{key} must be bounded so the face always fits"


def test_faces_carry_the_labels_real_licences_print() -> None:
    def titles(name: str) -> list[str]:
        return [p["title"] for p in BY_NAME[name].face_schema["properties"].values()]

    assert titles("营业执照") == [
        "统一社会信用代码", "名称", "类型", "法定代表人", "注册资本", "成立日期", "营业期限", "住所", "经营范围",
    ]  # fmt: skip
    assert set(titles("食品经营许可证")) >= {
        "经营者名称", "社会信用代码", "法定代表人（负责人）", "住所", "经营场所", "主体业态", "经营项目",
        "许可证编号", "日常监督管理机构", "有效期至",
    }  # fmt: skip
    assert titles("户口登记")[:11] == [
        "户别", "户主姓名", "户号", "住址", "姓名", "公民身份号码", "性别", "民族", "出生日期", "出生地", "与户主关系",
    ]  # fmt: skip
    assert titles("不动产权证书")[:10] == [
        "不动产单元号", "权利人", "共有情况", "坐落", "权利类型", "权利性质", "用途", "面积", "使用期限",
        "权利其他状况",
    ]  # fmt: skip
    assert titles("医师执业证书") == [
        "姓名", "性别", "出生日期", "身份证号", "医师级别", "执业类别", "执业范围", "执业地点", "主要执业机构",
        "医师执业证书编码",
    ]  # fmt: skip


def test_holder_fields_and_share_types_are_sensible() -> None:
    def holder_fields(name: str) -> dict[str, str]:
        props = BY_NAME[name].face_schema["properties"]
        return {p["x-holder"]: key for key, p in props.items() if "x-holder" in p}

    assert holder_fields("营业执照") == {"code": "unified_social_credit_code", "name": "name"}
    assert holder_fields("食品经营许可证") == {"code": "social_credit_code", "name": "operator_name"}
    assert holder_fields("户口登记") == {"code": "id_number", "name": "name"}
    assert holder_fields("医师执业证书") == {"code": "id_number", "name": "name"}
    assert holder_fields("不动产权证书") == {}  # 权利人 may list co-owners
    household = share_types(BY_NAME["户口登记"].face_schema)
    assert (household["name"], household["id_number"], household["address"]) == (
        "unconditional",
        "conditional",
        "conditional",
    )
    assert share_types(BY_NAME["医师执业证书"].face_schema)["id_number"] == "conditional"
    assert set(share_types(BY_NAME["营业执照"].face_schema).values()) == {"unconditional"}  # all publicly disclosed
    assert fields_with_share(BY_NAME["食品经营许可证"].face_schema, "none") == ["signatory"]
    assert fields_with_share(BY_NAME["不动产权证书"].face_schema, "unconditional") == []
    every = {share for t in DEMO_TYPES for share in share_types(t.face_schema).values()}
    assert every == SHARES


# --- sample faces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_sample_faces_are_valid_and_distinct(demo: DemoType) -> None:
    name, code = holder(demo)
    faces = [demo.sample_face(name, code, serial) for serial in range(40)]
    for face in faces:
        assert validate_face(demo.face_schema, face, holder_name=name, holder_code=code) is face
    assert len({repr(sorted(f.items())) for f in faces}) == len(faces)
    assert faces[0] == demo.sample_face(name, code, 0)  # deterministic


@pytest.mark.parametrize("demo", [t for t in DEMO_TYPES if t.holder_type == CITIZEN], ids=lambda t: t.name)
def test_citizen_faces_agree_with_the_id_number(demo: DemoType) -> None:
    for name, code, sex in ((*CITIZEN_HOLDER, "男"), (*WOMAN_HOLDER, "女")):
        face = demo.sample_face(name, code, 3)
        validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
        if "birth_date" in face:
            assert face["birth_date"] == f"{code[6:10]}-{code[10:12]}-{code[12:14]}"
            assert face["sex"] == sex
    with pytest.raises(InvalidIdNumber):
        demo.sample_face(*COMPANY_HOLDER, 0)


def test_sample_faces_cover_odd_dates() -> None:
    """Serials landing on 29 February still give valid end dates (five years on, seventy years on)."""
    for demo in (BY_NAME["食品经营许可证"], BY_NAME["不动产权证书"]):
        name, code = holder(demo)
        for serial in range(800):
            validate_face(demo.face_schema, demo.sample_face(name, code, serial), holder_name=name, holder_code=code)


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_sample_faces_render_as_chinese_pdfs(demo: DemoType, tmp_path: Path) -> None:
    name, code = holder(demo)
    face = demo.sample_face(name, code, 1)
    rendered = render_licence(document(demo, name, code, face, 1), template=TEMPLATES[demo.template])
    text = pdf_text(rendered.pdf, tmp_path)
    for label, value in face_rows(demo.face_schema, face):
        assert label in text
        assert re.sub(r"\s+", "", value) in text
    assert name in text


def test_a_sample_face_with_the_business_licence_test_vector(tmp_path: Path) -> None:
    demo = BY_NAME["营业执照"]
    name, code = "临江市示例科技有限公司", "91330100MA2000000" + uscc_check_char("91330100MA2000000")
    face = demo.sample_face(name, code, 0)
    doc = document(demo, name, code, face)
    doc.metadata["certificate_identifier"] = str(make_identifier(demo.type_code, "11220000013544541J", "2430599"))
    assert doc.metadata["certificate_identifier"].endswith(".2430599.001.F")
    text = pdf_text(render_licence(doc, template=TEMPLATES[demo.template]).pdf, tmp_path)
    assert "统一社会信用代码" in text
    assert "2015年01月08日" in text  # 成立日期 as a Chinese date


def worst_face(demo: DemoType, filler: str) -> tuple[str, str, dict[str, Any]]:
    """Every field at its longest: free text filled to maxLength, enums at their longest value, codes as sampled."""

    def fill(limit: int) -> str:
        return (filler * limit)[:limit]

    props = demo.face_schema["properties"]
    name = fill(next((p["maxLength"] for p in props.values() if p.get("x-holder") == "name"), 30))
    code = COMPANY_HOLDER[1] if demo.holder_type == COMPANY else CITIZEN_HOLDER[1]
    face = demo.sample_face(name, code, 7)
    for key, prop in props.items():
        if "x-holder" in prop or "pattern" in prop:
            continue
        if "enum" in prop:
            face[key] = max(prop["enum"], key=len)
        elif prop.get("format") == "date":
            face[key] = "2099-12-31"
        else:
            face[key] = fill(prop["maxLength"])
    return name, code, face


# Ideographs (1 em), the widest common Latin letter (W, 1.05 em; long words break anywhere), and brackets
# that may neither end nor start a line (kinsoku), which push characters to the next line early.
@pytest.mark.parametrize("filler", ["国", "W", "（国）"], ids=["ideographs", "wide-latin", "kinsoku"])
@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_the_longest_allowed_face_still_fits_the_page(demo: DemoType, filler: str, tmp_path: Path) -> None:
    name, code, face = worst_face(demo, filler)
    validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
    rendered = render_licence(document(demo, name, code, face), template=TEMPLATES[demo.template])
    assert pdf_text(rendered.pdf, tmp_path)


@pytest.mark.parametrize("demo", DEMO_TYPES, ids=IDS)
def test_one_character_more_is_refused(demo: DemoType) -> None:
    name, code = holder(demo)
    face = demo.sample_face(name, code, 0)
    key, prop = next(
        (k, p) for k, p in demo.face_schema["properties"].items() if "maxLength" in p and "x-holder" not in p
    )
    face[key] = "国" * (prop["maxLength"] + 1)
    with pytest.raises(LicenceFaceInvalid) as caught:
        validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
    assert caught.value.extensions["errors"][0]["rule"] in {"maxLength", "pattern"}


@pytest.mark.parametrize(
    "demo", [t for t in DEMO_TYPES if "id_number" in t.face_schema["properties"]], ids=lambda t: t.name
)
def test_an_id_number_in_the_wrong_place_is_not_echoed(demo: DemoType) -> None:
    name, code = holder(demo)
    face = demo.sample_face(name, code, 0)
    other = WOMAN_HOLDER[1]
    face["id_number"] = other  # another person's number
    face["sex"] = other  # and a number where an enum belongs
    face["birth_date"] = other
    with pytest.raises(LicenceFaceInvalid) as caught:
        validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
    body = str(caught.value.problem())
    assert {(e["field"], e["rule"]) for e in caught.value.extensions["errors"]} == {
        ("id_number", "x-holder"),
        ("sex", "enum"),
        ("birth_date", "format"),
    }
    assert other not in body
    assert code not in body
    assert validate_id_number(other) == other


@settings(max_examples=200, deadline=None)
@given(
    demo=st.sampled_from(DEMO_TYPES),
    serial=st.integers(min_value=0, max_value=10**7),
    changes=st.dictionaries(
        st.sampled_from(sorted({k for t in DEMO_TYPES for k in t.face_schema["properties"]})),
        st.text(max_size=300) | st.integers() | st.none() | st.booleans(),
        max_size=4,
    ),
)
def test_random_values_in_sample_faces_pass_or_are_refused(
    demo: DemoType, serial: int, changes: dict[str, Any]
) -> None:
    name, code = holder(demo)
    face = demo.sample_face(name, code, serial)
    validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
    face.update(changes)
    refused: LicenceFaceInvalid | None = None
    try:
        validate_face(demo.face_schema, face, holder_name=name, holder_code=code)
    except LicenceFaceInvalid as exc:
        refused = exc
    if refused is None:
        assert face_rows(demo.face_schema, face)
    else:
        assert refused.extensions["errors"]
