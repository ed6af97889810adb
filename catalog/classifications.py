"""The classification tree of the catalogue (类/项/目/细目) and the allocation of resource code sequences.

Code scheme, after 《政务信息资源目录编制指南（试行）》 (发改高技〔2017〕1272号) §6 「政务信息资源分类码」:

* 类 (level 1): one digit — ``1`` 基础信息资源类, ``2`` 主题信息资源类, ``3`` 部门信息资源类;
* 项 (level 2): the 类 code plus two digits (``105`` 电子证照基础信息资源);
* 目 (level 3): the 项 code plus three digits (``105001``);
* 细目 (level 4): the 目 code plus one to six digits (the guide leaves its length open).

A code therefore names its ancestors as prefixes, which is what the search's classification filter uses
(a node and all its descendants). A resource code is the classification code, ``/`` and a six-digit
sequence (the guide's 前段码/后段码); the sequence comes from ``Classification.next_sequence`` under a row
lock and only ever grows, so no code is ever handed out twice, even after a withdrawal.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Classification
from hub.errors import Conflict, InvalidInput, NotFound

BASIC, THEMATIC, DEPARTMENTAL = "1", "2", "3"
LICENCE_NODE = "105"  # 电子证照基础信息资源: licence types are published here (catalog.licence_types)
MAX_SEQUENCE = 999_999  # six digits
_LEVEL_LENGTHS = ((1, 1), (3, 3), (6, 6), (7, 12))  # (min, max) code length of levels 1–4
_DIGITS = re.compile(r"^[1-3][0-9]{0,11}$")

# The guide's 类 and 项 (编制指南 6.1.1 资源属性分类); deployments add 目 and 细目 below them.
BASE_TREE: tuple[tuple[str, str], ...] = (
    ("1", "基础信息资源类"),
    ("101", "人口基础信息资源"),
    ("102", "法人单位基础信息资源"),
    ("103", "自然资源和空间地理基础信息资源"),
    ("104", "社会信用基础信息资源"),
    (LICENCE_NODE, "电子证照基础信息资源"),
    ("2", "主题信息资源类"),
    ("201", "公共服务"),
    ("202", "健康保障"),
    ("203", "社会保障"),
    ("204", "食品药品安全"),
    ("205", "安全生产"),
    ("206", "价格监管"),
    ("207", "能源安全"),
    ("208", "信用体系"),
    ("209", "城乡建设"),
    ("210", "社区治理"),
    ("211", "生态环保"),
    ("212", "应急保障"),
    ("3", "部门信息资源类"),
    ("301", "党中央部门"),
    ("302", "全国人大常委会"),
    ("303", "国务院部门"),
    ("304", "全国政协"),
    ("305", "最高人民法院"),
    ("306", "最高人民检察院"),
    ("307", "省（自治区、直辖市）及其下各级政务部门"),
    ("308", "计划单列市及其下各级政务部门"),
)


class ClassificationCodeInvalid(InvalidInput):
    code = "classification_code_invalid"
    title = "Not a classification code (类 1 digit, 项 +2, 目 +3, 细目 +1 to 6 digits)"


class ClassificationNotFound(NotFound):
    code = "classification_not_found"
    title = "No classification has this code"


class ClassificationUnknown(InvalidInput):
    code = "classification_unknown"
    title = "The classification named in the request does not exist (GET /v1/catalog/classifications)"


class ClassificationExists(Conflict):
    code = "classification_exists"
    title = "A classification with this code already exists"


class ClassificationExhausted(Conflict):
    code = "classification_sequence_exhausted"
    title = "This classification has used all 999999 resource sequence numbers"


def level_of(code: str) -> int:
    """The level (1–4) a well-formed code sits at; raises ``ClassificationCodeInvalid`` otherwise."""
    if _DIGITS.fullmatch(code):
        for level, (low, high) in enumerate(_LEVEL_LENGTHS, start=1):
            if low <= len(code) <= high:
                return level
    raise ClassificationCodeInvalid(f"{code!r} is not a classification code")


def parent_of(code: str) -> str | None:
    level = level_of(code)
    return None if level == 1 else code[: _LEVEL_LENGTHS[level - 2][1]]


def ensure_classifications(session: Session) -> int:
    """Insert the nodes of ``BASE_TREE`` that are missing (idempotent); returns how many were added."""
    existing = set(
        session.scalars(select(Classification.code).where(Classification.code.in_([c for c, _ in BASE_TREE])))
    )
    added = 0
    for code, name in BASE_TREE:
        if code not in existing:
            session.add(Classification(code=code, name=name, level=level_of(code), parent_code=parent_of(code)))
            session.flush()  # parents before children (self-referencing foreign key)
            added += 1
    return added


def create_classification(session: Session, code: str, name: str) -> Classification:
    """Add a 项, 目 or 细目 under an existing parent (the three 类 are fixed by the guide)."""
    level = level_of(code)
    parent = parent_of(code)
    if parent is None:
        raise ClassificationCodeInvalid("the three 类 (1, 2, 3) are fixed; add nodes below them")
    if session.get(Classification, parent) is None:
        raise ClassificationNotFound(f"the parent {parent} of {code} does not exist")
    if session.get(Classification, code) is not None:
        raise ClassificationExists(f"classification {code} already exists")
    node = Classification(code=code, name=name, level=level, parent_code=parent, next_sequence=1)
    session.add(node)
    session.flush()
    return node


def get_classification_or_raise(session: Session, code: str) -> Classification:
    node = session.get(Classification, code)
    if node is None:
        raise ClassificationNotFound(f"no classification {code}")
    return node


def list_classifications(session: Session) -> list[Classification]:
    return list(session.scalars(select(Classification).order_by(Classification.code)))


def allocate_sequence(session: Session, code: str) -> int:
    """The next resource sequence under ``code``, taken under a row lock so concurrent creators never share one.

    PostgreSQL holds the ``FOR UPDATE`` lock until commit; SQLite transactions begin IMMEDIATE (one
    writer). A rolled-back creation leaves a gap, never a reused number.
    """
    node = session.get(Classification, code, with_for_update=True, populate_existing=True)
    if node is None:
        raise ClassificationNotFound(f"no classification {code}")
    sequence = node.next_sequence
    if sequence > MAX_SEQUENCE:
        raise ClassificationExhausted(f"classification {code} has no resource sequence numbers left")
    node.next_sequence = sequence + 1
    session.flush()
    return sequence
