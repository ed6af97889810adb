"""Five demo licence types (营业执照, 食品经营许可证, 户口登记, 不动产权证书, 医师执业证书) with faces as printed.

They seed the demo city and the tests. Field sets and share types follow the printed licences and the public
disclosure rules cited beside each; every ``maxLength`` is sized so that a face with every field at its
longest still fits its template (tests/licences/test_demo_types.py renders that worst case).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hub.codes import make_uscc, validate_id_number
from licences.face import DIALECT, chinese_date

T = TypeVar("T")
COMPANY, CITIZEN = "001", "111"  # DESIGN.md §3 certificate_holder_type
PERMANENT: dict[str, Any] = {"kind": "permanent"}
# GB 32100 pattern: 18 characters, no I O S V Z (the check character is hub.codes' job, not a regex's).
USCC_PATTERN = "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
ID_NUMBER_PATTERN = "^[0-9]{17}[0-9X]$"  # GB 11643 shape; the MOD 11-2 check is validated with the holder


def _ministry_uscc(org8: str) -> str:
    """A central-government body's USCC: registration 1 (机构编制), category 1 (机关), area 100000."""
    return make_uscc("1", "1", "100000", org8)


SAMR = ("国家市场监督管理总局", _ministry_uscc("00001333"))  # = 11100000000013338W, DESIGN.md §3 test vector
# Illustrative codes with valid GB 32100 check characters; not these bodies' registered codes.
MPS = ("公安部", _ministry_uscc("00001298"))
MNR = ("自然资源部", _ministry_uscc("00001312"))
NHC = ("国家卫生健康委员会", _ministry_uscc("00001357"))


@dataclass(frozen=True)
class DemoType:
    """A licence type as its defining authority publishes it, plus a generator of believable faces.

    ``sample_face(holder_name, holder_code, serial)`` returns a face that passes ``validate_face`` for that
    holder; different serials give different faces (addresses, numbers, dates). Treat the dicts as read-only.
    """

    type_code: str
    name: str
    holder_type: str
    defining_authority_code: str
    defining_authority_name: str
    validity: dict[str, Any]
    template: str
    face_schema: dict[str, Any]
    sample_face: Callable[[str, str, int], dict[str, Any]]


def _schema(properties: dict[str, dict[str, Any]], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": [key for key in properties if key not in optional],
        "additionalProperties": False,
    }


def _text(title: str, share: str, max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "title": title, "x-share-type": share, "minLength": 1, "maxLength": max_length, **extra}


def _date(title: str, share: str) -> dict[str, Any]:
    return {"type": "string", "format": "date", "title": title, "x-share-type": share}


def _choice(title: str, share: str, values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "title": title, "x-share-type": share}


def _code(title: str, share: str, pattern: str, length: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "x-share-type": share,
        "pattern": pattern,
        "minLength": length,
        "maxLength": length,
        **extra,
    }


def _pick(options: tuple[T, ...], serial: int) -> T:
    return options[serial % len(options)]


def _day(serial: int, *, start: dt.date, spread: int = 3000) -> dt.date:
    """A date that differs per serial (37 is coprime with the spread, so nearby serials land far apart)."""
    return start + dt.timedelta(days=serial * 37 % spread)


def _years_later(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` on; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _citizen(holder_code: str) -> tuple[dt.date, str]:
    """Birth date and sex as GB 11643 encodes them (characters 7-14; the 17th is odd for men), so faces agree."""
    code = validate_id_number(holder_code)
    birth = dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    return birth, "男" if int(code[16]) % 2 else "女"


_SURNAMES = ("张", "李", "王", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙")
_GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明")
_DISTRICTS = ("上城区", "滨江区", "西湖区", "拱墅区", "钱塘区")
_STREETS = ("示例路", "解放路", "文三路", "江南大道", "凤起路", "建国北路")


def _person(serial: int) -> str:
    return _pick(_SURNAMES, serial) + _pick(_GIVEN, serial // len(_SURNAMES))


def _address(serial: int, *, with_room: bool = True) -> str:
    district, street = _pick(_DISTRICTS, serial), _pick(_STREETS, serial // 5)
    room = f"{serial % 6 + 1}幢{serial % 18 + 1}{serial % 4 + 1:02d}室" if with_room else ""
    return f"浙江省临江市{district}{street}{serial % 300 + 1}号{room}"


# --- 营业执照 ------------------------------------------------------------------------------------------
# Every printed field is public: 《企业信息公示暂行条例》第六条 publishes registration data on the national
# enterprise credit information publicity system (国家企业信用信息公示系统), so all are shared unconditionally.
BUSINESS_LICENCE_SCHEMA = _schema(
    {
        "unified_social_credit_code": _code(
            "统一社会信用代码", "unconditional", USCC_PATTERN, 18, **{"x-holder": "code"}
        ),
        "name": _text("名称", "unconditional", 60, **{"x-holder": "name"}),
        "entity_type": _text("类型", "unconditional", 40),
        "legal_representative": _text("法定代表人", "unconditional", 30),
        "registered_capital": _text("注册资本", "unconditional", 30),
        "established_on": _date("成立日期", "unconditional"),
        "business_term": _text("营业期限", "unconditional", 30),
        "domicile": _text("住所", "unconditional", 100),
        # A real scope can run longer; the registry then prints the rest as "详见…". 480 characters is what
        # the landscape face holds with every other field at its longest, at the 8 pt floor.
        "business_scope": _text("经营范围", "unconditional", 480),
    },
    optional=("business_term",),  # partnerships print 合伙期限 and sole proprietorships none
)
_ENTITY_TYPES = (
    "有限责任公司（自然人投资或控股）",
    "有限责任公司（自然人独资）",
    "股份有限公司（非上市、自然人投资或控股）",
    "有限责任公司（非自然人投资或控股的法人独资）",
)
_CAPITALS = ("壹佰万元整", "伍拾万元整", "叁佰万元整", "壹仟万元整", "贰佰伍拾万元整")
_SCOPES = (
    (
        "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；信息系统集成服务；"
        "数据处理和存储支持服务；计算机软硬件及辅助设备零售（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"
    ),
    (
        "许可项目：餐饮服务；食品销售（依法须经批准的项目，经相关部门批准后方可开展经营活动，具体经营项目以审批结果为准）。"
        "一般项目：餐饮管理；食品销售（仅销售预包装食品）（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"
    ),
    (
        "一般项目：货物进出口；技术进出口；服装服饰批发；服装服饰零售；日用百货销售；互联网销售（除销售需要许可的商品）"
        "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"
    ),
)


def _business_face(holder_name: str, holder_code: str, serial: int) -> dict[str, Any]:
    founded = _day(serial, start=dt.date(2015, 1, 8))
    return {
        "unified_social_credit_code": holder_code,
        "name": holder_name,
        "entity_type": _pick(_ENTITY_TYPES, serial),
        "legal_representative": _person(serial),
        "registered_capital": _pick(_CAPITALS, serial),
        "established_on": founded.isoformat(),
        "business_term": f"{chinese_date(founded)}至长期",
        "domicile": _address(serial),
        "business_scope": _pick(_SCOPES, serial),
    }


# --- 食品经营许可证 --------------------------------------------------------------------------------------
# Permits are public (《食品经营许可和备案管理办法》2023 makes authorities publish them); only the signatory
# and the named inspectors are people rather than the permit, so they are shared on request or not at all.
_BUSINESS_FORMS = (
    "食品销售经营者",
    "食品销售经营者（网络经营）",
    "餐饮服务经营者",
    "餐饮服务经营者（网络经营）",
    "集中用餐单位食堂",
)
FOOD_LICENCE_SCHEMA = _schema(
    {
        "operator_name": _text("经营者名称", "unconditional", 60, **{"x-holder": "name"}),
        "social_credit_code": _code("社会信用代码", "unconditional", USCC_PATTERN, 18, **{"x-holder": "code"}),
        "legal_representative": _text("法定代表人（负责人）", "unconditional", 30),
        "domicile": _text("住所", "unconditional", 100),
        "business_premises": _text("经营场所", "unconditional", 100),
        "main_business_form": _choice("主体业态", "unconditional", _BUSINESS_FORMS),
        "business_items": _text("经营项目", "unconditional", 200),
        # JY + 主体业态 digit (1 销售, 2 餐饮, 3 食堂) + 6-digit area + 6-digit sequence + 1 check digit.
        "licence_number": _code("许可证编号", "unconditional", "^JY[1-3][0-9]{13}$", 16),
        "supervising_authority": _text("日常监督管理机构", "unconditional", 36),
        "supervising_officers": _text("日常监督管理人员", "conditional", 30),
        "complaint_hotline": _text("投诉举报电话", "unconditional", 20, pattern="^[0-9][0-9-]*$"),
        "signatory": _text("签发人", "none", 20),
        "valid_until": _date("有效期至", "unconditional"),
    },
    optional=("supervising_officers", "complaint_hotline", "signatory"),
)
_FOOD_ITEMS = (
    "热食类食品制售；冷食类食品制售（不含烧卤熟肉）；自制饮品制售（不含自酿酒）；预包装食品（含冷藏冷冻食品）销售。",
    "预包装食品（不含冷藏冷冻食品）销售；散装食品（不含散装熟食）销售；保健食品销售；特殊医学用途配方食品销售。",
    "热食类食品制售；糕点类食品（含裱花蛋糕）制售；自制饮品制售（不含自酿酒）。",
)


def _food_face(holder_name: str, holder_code: str, serial: int) -> dict[str, Any]:
    form = _pick(_BUSINESS_FORMS, serial)
    form_digit = "1" if form.startswith("食品销售") else "2" if form.startswith("餐饮") else "3"
    issued = _day(serial, start=dt.date(2023, 12, 1), spread=700)
    district = _pick(_DISTRICTS, serial)
    # The check digit is computed by the provincial permit system; the demo uses the serial's last digit.
    number = f"JY{form_digit}330106{serial % 1_000_000:06d}{serial % 10}"
    return {
        "operator_name": holder_name,
        "social_credit_code": holder_code,
        "legal_representative": _person(serial + 3),
        "domicile": _address(serial),
        "business_premises": _address(serial + 1),
        "main_business_form": form,
        "business_items": _pick(_FOOD_ITEMS, serial),
        "licence_number": number,
        "supervising_authority": f"临江市{district}市场监督管理局",
        "supervising_officers": f"{_person(serial + 5)}、{_person(serial + 7)}",
        "complaint_hotline": "12315",
        "signatory": _person(serial + 11),
        # Five years from issue, ending the day before the anniversary.
        "valid_until": (_years_later(issued, 5) - dt.timedelta(days=1)).isoformat(),
    }


# --- 户口登记 (居民户口簿 首页 + 常住人口登记卡) --------------------------------------------------------
# Personal information (《个人信息保护法》第十三条): beyond the name, fields go out only with a legal basis
# (conditional); marital status is self-declared here and authoritative only in 民政 records, so never shared.
ETHNIC_GROUPS = (  # GB/T 3304 names as the 户口簿 prints them (without 族), then codes 97 and 98
    "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家",
    "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜",
    "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒",
    "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴",
    "珞巴", "基诺", "其他", "外国血统中国籍人士",
)  # fmt: skip
HOUSEHOLD_SCHEMA = _schema(
    {
        "household_type": _choice("户别", "conditional", ("家庭户", "集体户")),
        "householder_name": _text("户主姓名", "conditional", 30),
        "household_number": _code("户号", "conditional", "^[0-9]{9,12}$", 9, maxLength=12),
        "address": _text("住址", "conditional", 100),
        "name": _text("姓名", "unconditional", 30, **{"x-holder": "name"}),
        "id_number": _code("公民身份号码", "conditional", ID_NUMBER_PATTERN, 18, **{"x-holder": "code"}),
        "sex": _choice("性别", "conditional", ("男", "女")),
        "ethnicity": _choice("民族", "conditional", ETHNIC_GROUPS),
        "birth_date": _date("出生日期", "conditional"),
        "birthplace": _text("出生地", "conditional", 60),
        "relation_to_householder": _text("与户主关系", "conditional", 10),
        "former_name": _text("曾用名", "conditional", 30),
        "native_place": _text("籍贯", "conditional", 40),
        "education": _text("文化程度", "conditional", 20),
        "marital_status": _choice("婚姻状况", "none", ("未婚", "已婚", "丧偶", "离婚")),
    },
    optional=("former_name", "native_place", "education", "marital_status"),
)
_BIRTHPLACES = ("浙江省临江市", "浙江省杭州市", "江苏省苏州市", "安徽省合肥市", "江西省上饶市")
_EDUCATION = ("大学本科", "研究生", "大学专科", "普通高中", "初中")


def _household_face(holder_name: str, holder_code: str, serial: int) -> dict[str, Any]:
    birth, sex = _citizen(holder_code)
    is_head = serial % 3 == 0
    face: dict[str, Any] = {
        "household_type": "家庭户" if serial % 7 else "集体户",
        "householder_name": holder_name if is_head else _person(serial + 2),
        "household_number": f"330106{serial % 1_000_000:06d}",
        "address": _address(serial),
        "name": holder_name,
        "id_number": holder_code,
        "sex": sex,
        "ethnicity": "汉" if serial % 5 else _pick(("回", "满", "畲", "土家"), serial),
        "birth_date": birth.isoformat(),
        "birthplace": _pick(_BIRTHPLACES, serial),
        "relation_to_householder": "户主" if is_head else ("子" if sex == "男" else "女"),
        "native_place": _pick(_BIRTHPLACES, serial + 1),
        "education": _pick(_EDUCATION, serial),
    }
    if birth.year < 2000:  # children's cards leave marital status empty
        face["marital_status"] = _pick(("已婚", "未婚"), serial)
    return face


# --- 不动产权证书 ----------------------------------------------------------------------------------------
# 《不动产登记资料查询暂行办法》: only right holders and interested parties may query registrations, so
# the face is conditional; 附记 carries registry-internal notes (mortgages, seizures) and is not shared.
# 不动产单元号 (GB/T 37346-2019): 6-digit county + 6-digit 地籍区/子区 + 宗地特征码 (G 国有 / J 集体 / Z 争议,
# then the right type letter) + 5-digit 宗地顺序号 + 定着物特征码 (F 房屋, L 林木, Q 其他, W 无) + 8 digits.
REAL_ESTATE_UNIT_PATTERN = "^[0-9]{12}[GJZ][A-Z][0-9]{5}[FLQW][0-9]{8}$"
REAL_ESTATE_SCHEMA = _schema(
    {
        # The 不动产权证号 (浙(2024)临江市不动产权第0012345号) is the licence's certificate_number, not a face row.
        "unit_number": _code("不动产单元号", "conditional", REAL_ESTATE_UNIT_PATTERN, 28),
        # Not x-holder: a jointly owned property lists every owner here, the holder among them.
        "right_holder": _text("权利人", "conditional", 60),
        "co_ownership": _choice("共有情况", "conditional", ("单独所有", "共同共有", "按份共有")),
        "location": _text("坐落", "conditional", 100),
        "right_type": _text("权利类型", "conditional", 40),
        "right_nature": _text("权利性质", "conditional", 30),
        "usage": _text("用途", "conditional", 30),
        "area": _text("面积", "conditional", 60),
        "term_of_use": _text("使用期限", "conditional", 60),
        "other_rights_status": _text("权利其他状况", "conditional", 200),
        "remarks": _text("附记", "none", 100),
    },
    optional=("remarks",),
)


def _real_estate_face(holder_name: str, holder_code: str, serial: int) -> dict[str, Any]:
    _citizen(holder_code)  # a person's certificate: refuse a non-citizen code early
    joint = serial % 4 == 1
    land_start = _day(serial, start=dt.date(2004, 7, 1), spread=4000)
    building = 60 + serial * 7 % 90 + (serial % 100) / 100
    exclusive = round(building * 0.84, 2)
    # County 330106, 地籍区/子区, 宗地 GB (国有, 建设用地使用权) + number, F (房屋) + 幢号 + 户号.
    unit = f"330106{serial % 1000:03d}001GB{serial % 100_000:05d}F{serial % 10_000:04d}{serial % 9000 + 1:04d}"
    face: dict[str, Any] = {
        "unit_number": unit,
        "right_holder": f"{holder_name}、{_person(serial + 1)}" if joint else holder_name,
        "co_ownership": "共同共有" if joint else "单独所有",
        "location": _address(serial),
        "right_type": "国有建设用地使用权/房屋所有权",
        "right_nature": "出让/市场化商品房",
        "usage": "城镇住宅用地/住宅",
        "area": f"共有宗地面积{1000 + serial * 131 % 90000}.00㎡/房屋建筑面积{building:.2f}㎡",
        "term_of_use": f"国有建设用地使用权{chinese_date(land_start)}起"
        f"{chinese_date(_years_later(land_start, 70) - dt.timedelta(days=1))}止",
        "other_rights_status": (
            f"专有建筑面积：{exclusive:.2f}㎡，分摊建筑面积：{building - exclusive:.2f}㎡；房屋结构：钢筋混凝土结构；"
            f"房屋总层数：{18 + serial % 16}层，所在层：{serial % 18 + 1}层；房屋竣工时间：{land_start.year + 3}年"
        ),
    }
    if serial % 5 == 2:
        face["remarks"] = "该房屋已办理抵押登记，详见不动产登记簿。"
    return face


# --- 医师执业证书 ----------------------------------------------------------------------------------------
# Registration data are public (国家卫生健康委 医师执业注册信息查询 shows name, sex, level, category, scope,
# place and institution), so they are unconditional; the ID number and birth date are not published.
PHYSICIAN_SCHEMA = _schema(
    {
        "name": _text("姓名", "unconditional", 30, **{"x-holder": "name"}),
        "sex": _choice("性别", "unconditional", ("男", "女")),
        "birth_date": _date("出生日期", "conditional"),
        "id_number": _code("身份证号", "conditional", ID_NUMBER_PATTERN, 18, **{"x-holder": "code"}),
        "physician_level": _choice("医师级别", "unconditional", ("执业医师", "执业助理医师")),
        "practice_category": _choice("执业类别", "unconditional", ("临床", "中医", "口腔", "公共卫生")),
        "practice_scope": _text("执业范围", "unconditional", 60),
        "practice_place": _text("执业地点", "unconditional", 30),
        "principal_institution": _text("主要执业机构", "unconditional", 60),
        # 15 digits: 医师级别 (1 执业医师, 2 助理), 执业类别 (1-4 as listed), then 13; the hub checks only the shape.
        "certificate_code": _code("医师执业证书编码", "unconditional", "^[12][1-4][0-9]{13}$", 15),
    }
)
_CATEGORIES = (("临床", "内科专业"), ("临床", "外科专业"), ("中医", "中医专业"), ("口腔", "口腔专业"))
_INSTITUTIONS = ("临江市第一人民医院", "临江市中医院", "临江市妇幼保健院", "临江市滨江区社区卫生服务中心")


def _physician_face(holder_name: str, holder_code: str, serial: int) -> dict[str, Any]:
    birth, sex = _citizen(holder_code)
    category, scope = _pick(_CATEGORIES, serial)
    level = "执业医师" if serial % 4 else "执业助理医师"
    level_digit = "1" if level == "执业医师" else "2"
    category_digit = str(("临床", "中医", "口腔", "公共卫生").index(category) + 1)
    return {
        "name": holder_name,
        "sex": sex,
        "birth_date": birth.isoformat(),
        "id_number": holder_code,
        "physician_level": level,
        "practice_category": category,
        "practice_scope": scope,
        "practice_place": "浙江省",
        "principal_institution": _pick(_INSTITUTIONS, serial),
        "certificate_code": f"{level_digit}{category_digit}330106{birth.year % 100:02d}{serial % 100_000:05d}",
    }


BUSINESS_LICENCE = DemoType(
    type_code=SAMR[1] + "032",  # the type code of DESIGN.md §3's national test-vector identifier
    name="营业执照",
    holder_type=COMPANY,
    defining_authority_code=SAMR[1],
    defining_authority_name=SAMR[0],
    validity=PERMANENT,  # the licence itself does not expire; 营业期限 on the face bounds the business
    template="business-licence-a4-landscape",
    face_schema=BUSINESS_LICENCE_SCHEMA,
    sample_face=_business_face,
)
FOOD_LICENCE = DemoType(
    type_code=SAMR[1] + "045",
    name="食品经营许可证",
    holder_type=COMPANY,
    defining_authority_code=SAMR[1],
    defining_authority_name=SAMR[0],
    validity={"kind": "years", "years": 5},  # 《食品经营许可和备案管理办法》: 食品经营许可证有效期为五年
    template="certificate-a4-portrait",
    face_schema=FOOD_LICENCE_SCHEMA,
    sample_face=_food_face,
)
HOUSEHOLD_REGISTRATION = DemoType(
    type_code=MPS[1] + "001",
    name="户口登记",
    holder_type=CITIZEN,
    defining_authority_code=MPS[1],
    defining_authority_name=MPS[0],
    validity=PERMANENT,  # a 户口 entry stands until it is moved or cancelled (a lifecycle event, not expiry)
    template="certificate-a4-portrait",
    face_schema=HOUSEHOLD_SCHEMA,
    sample_face=_household_face,
)
REAL_ESTATE_CERTIFICATE = DemoType(
    type_code=MNR[1] + "001",
    name="不动产权证书",
    holder_type=CITIZEN,
    defining_authority_code=MNR[1],
    defining_authority_name=MNR[0],
    validity=PERMANENT,  # the right's own term (使用期限) is a face field; the certificate has no expiry
    template="certificate-a4-portrait",
    face_schema=REAL_ESTATE_SCHEMA,
    sample_face=_real_estate_face,
)
PHYSICIAN_LICENCE = DemoType(
    type_code=NHC[1] + "002",
    name="医师执业证书",
    holder_type=CITIZEN,
    defining_authority_code=NHC[1],
    defining_authority_name=NHC[0],
    # The certificate carries no expiry date (《医师执业注册管理办法》2017): it stays valid until the
    # registration is cancelled; competence is checked by 定期考核 every three years (《医师法》2021).
    validity=PERMANENT,
    template="certificate-a4-portrait",
    face_schema=PHYSICIAN_SCHEMA,
    sample_face=_physician_face,
)
DEMO_TYPES: tuple[DemoType, ...] = (
    BUSINESS_LICENCE,
    FOOD_LICENCE,
    HOUSEHOLD_REGISTRATION,
    REAL_ESTATE_CERTIFICATE,
    PHYSICIAN_LICENCE,
)
