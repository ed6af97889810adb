"""``licence-hub demo``: seeds a believable, fictional city (临江市) once, and writes its credentials."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hub.codes import make_id_number, make_uscc
from hub.identity import service as identity
from hub.identity.models import Department
from hub.runtime import Runtime

AREA = "330100"  # the demo city's GB/T 2260 code; the city and every name below are fictional

# (org code body, name, scopes) — registration "1" 机构编制, category "1" 机关 (GB 32100 Table 1).
DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("00201001", "临江市政务服务和数据管理局", "admin audit:read catalog:read catalog:write"),
    ("00201002", "临江市市场监督管理局", "licence:issue licence:read catalog:read catalog:write exchange:verify"),
    ("00201003", "临江市公安局", "licence:issue licence:read catalog:read catalog:write"),
    ("00201004", "临江市自然资源和规划局", "licence:issue licence:read catalog:read catalog:write"),
    ("00201005", "临江市卫生健康委员会", "licence:issue licence:read catalog:read catalog:write"),
    ("00201006", "临江市人力资源和社会保障局", "exchange:fetch exchange:verify catalog:read"),
)
CITIZENS: tuple[tuple[str, dt.date, str, str], ...] = (
    ("330102", dt.date(1985, 3, 12), "123", "张伟"),
    ("330106", dt.date(1992, 11, 2), "246", "李娜"),
    ("330105", dt.date(1978, 6, 30), "371", "王芳"),
)
# registration "9" 工商, category "1" 企业.
COMPANIES: tuple[tuple[str, str], ...] = (
    ("MA2H7K3A", "临江市青禾餐饮管理有限公司"),
    ("MA2J9P4B", "临江智造科技有限公司"),
)


def department_code(org8: str) -> str:
    return make_uscc("1", "1", AREA, org8)


def credentials_path(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "demo-credentials.json"


def _seed(session: Session) -> dict[str, Any]:
    departments = []
    for org8, name, scopes in DEPARTMENTS:
        department = identity.create_department(
            session, code=department_code(org8), name=name, level="municipal", area_code=AREA
        )
        client, secret = identity.create_client(session, department_code=department.code, scopes=scopes)
        departments.append(
            {
                "code": department.code,
                "name": name,
                "client_id": client.client_id,
                "client_secret": secret,
                "scopes": client.scopes,
            }
        )
    holders = []
    for area, birth, seq, name in CITIZENS:
        code = make_id_number(area, birth, seq)
        identity.resolve_holder(session, holder_type="111", holder_code=code, name=name)
        holders.append({"type": "111", "code": code, "name": name})
    for org8, name in COMPANIES:
        code = make_uscc("9", "1", AREA, org8)
        identity.resolve_holder(session, holder_type="001", holder_code=code, name=name)
        holders.append({"type": "001", "code": code, "name": name})
    # Exchange scenarios need licence types, grants and consents (issues 5–7); none exist yet.
    return {"departments": departments, "holders": holders, "scenarios": []}


def seed_demo(runtime: Runtime) -> tuple[dict[str, Any], bool]:
    """Seed once; later runs return the stored credentials. Returns (credentials, created_now)."""
    path = credentials_path(runtime)
    with runtime.session_scope() as session:
        if session.get(Department, department_code(DEPARTMENTS[0][0])) is not None:
            if path.exists():
                return json.loads(path.read_text()), False
            return {
                "departments": [],
                "holders": [],
                "scenarios": [],
                "note": "seeded earlier; secrets not kept",
            }, False
        credentials = _seed(session)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, ensure_ascii=False, indent=2)
    return credentials, True
