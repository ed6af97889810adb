"""Materials check (免证办): which of a matter's required materials the hub can supply for this holder.

For each material the answer is the licence that satisfies it, or the first reason none does, checked
in the fetch's order so that the check never reveals more than a fetch would: no grant for this
department (or the grant is expired, suspended, ...), no consent, none held, or the one held is not valid
or is disputed. Materials satisfied only by non-licence resources name the resource and say the record
must be fetched from its provider: the hub holds licences, not every department's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from catalog import objections
from catalog.grant_check import GrantCache
from catalog.matters import materials_for
from catalog.models import Material
from hub.codes import validate_holder_code
from hub.errors import DomainError
from hub.exchange import consents
from hub.exchange.fetch import FetchRequest, check_licence, decide, holders_licence


@dataclass(frozen=True)
class MaterialAnswer:
    material_code: str
    name: str
    required: bool
    certificate_identifier: str | None
    certificate_type_code: str | None
    reason: str  # "satisfied" or the stable code of why not


def check(
    session: Session, cache: GrantCache, *, department_code: str, matter_code: str, holder_type: str,
    holder_code: str, at: datetime,
) -> list[MaterialAnswer]:  # fmt: skip
    validate_holder_code(holder_type, holder_code)
    return [
        _answer(session, cache, material, department_code, matter_code, holder_type, holder_code, at)
        for material in materials_for(session, matter_code)
    ]


def _answer(  # noqa: PLR0917 - one material, the caller and the holder
    session: Session, cache: GrantCache, material: Material, department_code: str, matter_code: str,
    holder_type: str, holder_code: str, at: datetime,
) -> MaterialAnswer:  # fmt: skip
    reasons: list[str] = []
    for type_code in material.licence_type_codes:
        request = FetchRequest(
            department_code=department_code, matter_code=matter_code, case_number="",
            officer_id="", holder_type=holder_type, holder_code=holder_code, certificate_type_code=type_code,
            certificate_identifier=None, fields=None,
        )  # fmt: skip
        try:
            decision = decide(session, cache, request, type_code, at=at)
            if decision.consent_required:
                consents.check(
                    session, consents.HolderKey(holder_type, holder_code), department_code=department_code,
                    matter_code=matter_code, case_number=None, at=at,
                )  # fmt: skip
            licence = holders_licence(session, request, type_code)
            check_licence(licence)
        except DomainError as exc:
            reasons.append(exc.code)
            continue
        if objections.is_disputed(session, certificate_identifier=licence.identifier):
            reasons.append("licence_disputed")
            continue
        return MaterialAnswer(material.code, material.name, material.required, licence.identifier, type_code,
                              "satisfied")  # fmt: skip
    if not material.licence_type_codes and material.resource_codes:
        reasons.append("record_held_by_provider")
    return MaterialAnswer(material.code, material.name, material.required, None, None, reasons[0] if reasons else
                          "no_licence_type")  # fmt: skip
