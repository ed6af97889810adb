"""Grants (共享授权): lifecycle over HTTP, the expiry job, the grant decision, its quota and its cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update

from audit.models import AuditEntry
from catalog import grant_check, grants
from catalog.grant_check import GrantCache, check_grant
from catalog.models import Grant
from catalog.workdays import local_day
from hub import jobs
from hub.clock import utcnow
from hub.runtime import Runtime
from hub.webhooks.models import WebhookEvent
from tests.catalog.catalogkit import CatalogKit
from tests.catalog.test_access_requests import MATTER, OPEN_ITEMS, granted, make_matter, request_body, submit

OTHER_MATTER = "11330100MB1234567X3000111002"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _post(  # noqa: PLR0917 - a test helper read as _post(kit, id, verb, body)
    ckit: CatalogKit, grant_id: str, verb: str, body: dict[str, Any], who: Any = None, expect: int = 200
) -> Any:
    response = ckit.client.post(
        f"/v1/catalog/grants/{grant_id}/{verb}", json=body, headers=(who or ckit.provider).headers
    )
    assert response.status_code == expect, response.text
    return response.json()


def _check(runtime: Runtime, cache: GrantCache, grant: dict[str, Any], **kwargs: Any) -> grant_check.GrantDecision:
    args: dict[str, Any] = {
        "consumer_code": grant["consumer_code"], "resource_code": grant["resource_code"], "matter_code": MATTER,
        "fields": None, "at": utcnow(),
    }  # fmt: skip
    args.update(kwargs)
    with runtime.session_scope() as session:
        return check_grant(session, cache, **args)


def _refused(runtime: Runtime, cache: GrantCache, grant: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(grant_check.GrantDenied) as caught:
        _check(runtime, cache, grant, **kwargs)
    return caught.value.code


def _generation(runtime: Runtime) -> int:
    with runtime.session_scope() as session:
        return grant_check.read_generation(session)


def _events(ckit: CatalogKit) -> list[str]:
    with ckit.runtime.session_scope() as session:
        stmt = select(WebhookEvent.type).where(WebhookEvent.department_code == ckit.consumer.code)
        return list(session.scalars(stmt.order_by(WebhookEvent.pk)))


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """SQL statements sent while the test runs (to prove the warm path sends none)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


# ----------------------------------------------------------------------------- lifecycle over HTTP


def test_suspend_reinstate_renew_and_revoke(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    start = _generation(ckit.runtime)
    assert _post(ckit, grant["id"], "suspend", {}, expect=422)["code"] == "request_invalid"  # reason required
    suspended = _post(ckit, grant["id"], "suspend", {"reason": "核查数据使用情况"})
    assert (suspended["status"], suspended["status_reason"], suspended["revision"]) == (
        "suspended",
        "核查数据使用情况",
        2,
    )
    assert suspended["receipt"]["leaf_index"] >= 0
    assert (
        _post(ckit, grant["id"], "suspend", {"reason": "again"}, expect=409)["code"] == "grant_transition_not_allowed"
    )
    reinstated = _post(ckit, grant["id"], "reinstate", {})
    assert (reinstated["status"], reinstated["status_reason"], reinstated["revision"]) == ("active", None, 3)
    renewed = _post(ckit, grant["id"], "renew", {"valid_days": 30})
    old_end = datetime.fromisoformat(grant["valid_until"])
    assert datetime.fromisoformat(renewed["valid_until"]) == old_end + timedelta(days=30)
    shorter = _post(ckit, grant["id"], "renew", {"valid_until": grant["valid_from"]}, expect=422)
    assert shorter["code"] == "grant_renewal_invalid"
    revoked = _post(ckit, grant["id"], "revoke", {"reason": "部门职能调整"})
    assert (revoked["status"], revoked["revision"]) == ("revoked", 5)
    for verb, body in (("reinstate", {}), ("renew", {"valid_days": 1}), ("suspend", {"reason": "x"})):
        assert _post(ckit, grant["id"], verb, body, expect=409)["code"] == "grant_transition_not_allowed"
    assert _generation(ckit.runtime) == start + 4  # every change bumps the generation, refusals do not
    assert _events(ckit) == [
        "cn.gov.licence-hub.catalog.grant.suspended", "cn.gov.licence-hub.catalog.grant.reinstated",
        "cn.gov.licence-hub.catalog.grant.renewed", "cn.gov.licence-hub.catalog.grant.revoked",
    ]  # fmt: skip
    with ckit.runtime.session_scope() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.resource_code == grant["resource_code"], AuditEntry.outcome == "ok"
            )
        ).all()
    assert {
        "catalog.grant.suspended",
        "catalog.grant.reinstated",
        "catalog.grant.renewed",
        "catalog.grant.revoked",
    } <= set(actions)


def test_only_the_provider_or_an_admin_changes_a_grant(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    by_consumer = _post(ckit, grant["id"], "suspend", {"reason": "x"}, who=ckit.consumer, expect=403)
    assert by_consumer["code"] == "grant_change_forbidden"
    third = ckit.department("临江市交通运输局")
    assert _post(ckit, grant["id"], "revoke", {"reason": "x"}, who=third, expect=404)["code"] == "grant_not_found"
    assert ckit.client.get(f"/v1/catalog/grants/{grant['id']}", headers=third.headers).status_code == 404
    with ckit.runtime.session_scope() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "catalog.grant.revoked", AuditEntry.outcome == "denied")
        ).all()
    assert [(e.department_code, e.error_code) for e in denied] == [(third.code, "grant_not_found")]
    assert _post(ckit, grant["id"], "suspend", {"reason": "管理员暂停"}, who=ckit.admin)["status"] == "suspended"


def test_listing_grants_by_side(ckit: CatalogKit) -> None:
    grant = granted(ckit)

    def ids(who: Any, **params: Any) -> list[str]:
        response = ckit.client.get("/v1/catalog/grants", params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        return [g["id"] for g in response.json()]

    assert ids(ckit.consumer, role="consumer") == [grant["id"]]
    assert ids(ckit.consumer, role="provider") == []
    assert ids(ckit.provider) == [grant["id"]]
    assert ids(ckit.provider, status="suspended") == []
    assert ids(ckit.provider, resource_code=grant["resource_code"]) == [grant["id"]]
    assert ids(ckit.department("临江市交通运输局")) == []
    assert grant["id"] in ids(ckit.admin)


def test_expiry_job_marks_grants_past_their_window(ckit: CatalogKit) -> None:
    grant = granted(ckit, valid_days=10)
    runtime = ckit.runtime
    later = utcnow() + timedelta(days=11)

    def run(now: datetime) -> int:
        return grants.expire_due(runtime.session_scope, runtime.settings, lambda: runtime.audit_signer, now=now)

    assert run(utcnow()) == 0
    assert run(later) == 1
    assert run(later) == 0  # repeatable
    got = ckit.client.get(f"/v1/catalog/grants/{grant['id']}", headers=ckit.consumer.headers).json()
    assert (got["status"], got["revision"]) == ("expired", 2)
    assert _events(ckit)[-1] == "cn.gov.licence-hub.catalog.grant.expired"
    with runtime.session_scope() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "catalog.grant.expired")).one()
    assert (entry.actor_type, entry.resource_code) == ("system", grant["resource_code"])
    assert json.loads(entry.body or b"{}")["grant_id"] == grant["id"]
    # The decision refuses it even at a time inside the old window: the job's mark is final until renewed.
    assert _refused(runtime, GrantCache(), grant) == "grant_expired"
    renewed = _post(ckit, grant["id"], "renew", {"valid_days": 5})
    assert renewed["status"] == "active"
    assert _check(runtime, GrantCache(), grant).grant_id == grant["id"]


def test_the_expiry_job_is_scheduled() -> None:
    assert jobs.PERIODIC_JOBS["catalog.grants.expire"] > 0
    jobs.celery_app.loader.import_default_modules()
    assert "catalog.grants.expire" in jobs.celery_app.tasks


# ----------------------------------------------------------------------------- the decision


def test_decision_returns_granted_fields(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    cache = GrantCache()
    whole = _check(ckit.runtime, cache, grant)
    assert (whole.grant_id, whole.fields, whole.consent_required, whole.calls_today) == (
        grant["id"], ("uscc", "name"), False, None,
    )  # fmt: skip
    some = _check(ckit.runtime, cache, grant, fields=["name", "name"])
    assert some.fields == ("name",)
    assert _refused(ckit.runtime, cache, grant, fields=["name", "salary"]) == "grant_field_not_granted"


def test_refusals_in_order(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    runtime, cache = ckit.runtime, GrantCache()
    now = utcnow()
    assert _refused(runtime, cache, grant, consumer_code=ckit.provider.code) == "grant_missing"
    assert _refused(runtime, cache, grant, resource_code="3990/999999") == "grant_missing"
    assert _refused(runtime, cache, grant, matter_code=OTHER_MATTER) == "grant_matter_mismatch"
    assert _refused(runtime, cache, grant, at=now - timedelta(hours=1)) == "grant_not_yet_valid"
    assert _refused(runtime, cache, grant, at=now + timedelta(days=366)) == "grant_expired"
    _post(ckit, grant["id"], "suspend", {"reason": "核查"})
    assert _refused(runtime, cache, grant) == "grant_suspended"
    # order: the matter and the window are checked before the status
    assert _refused(runtime, cache, grant, matter_code=OTHER_MATTER) == "grant_matter_mismatch"
    assert _refused(runtime, cache, grant, at=now + timedelta(days=366)) == "grant_expired"
    _post(ckit, grant["id"], "revoke", {"reason": "撤销"})
    assert _refused(runtime, cache, grant) == "grant_revoked"
    assert _refused(runtime, cache, grant, fields=["salary"]) == "grant_revoked"  # status before fields


def test_window_is_checked_even_if_the_job_has_not_run(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    with ckit.runtime.session_scope() as session:
        session.execute(
            update(Grant).where(Grant.id == grant["id"]).values(valid_until=utcnow() - timedelta(seconds=1))
        )
        grant_check.note_grants_changed(session)
    with ckit.runtime.session_scope() as session:
        assert session.get(Grant, grant["id"]).status == "active"  # type: ignore[union-attr]
    assert _refused(ckit.runtime, GrantCache(), grant) == "grant_expired"


def test_a_decision_counts_nothing_and_says_the_quota(ckit: CatalogKit) -> None:
    grant = granted(ckit, quota_per_day=3)
    runtime, cache, at = ckit.runtime, GrantCache(), utcnow()
    decisions = [_check(runtime, cache, grant, at=at) for _ in range(5)]
    assert {(d.quota_per_day, d.calls_today) for d in decisions} == {(3, None)}
    with runtime.session_scope() as session:
        assert grant_check.usage(session, grant["id"], local_day(at)) == 0  # the caller spends the quota


def test_usage_rows_are_created_at_zero_locked_and_counted_per_day(ckit: CatalogKit) -> None:
    grant = granted(ckit, quota_per_day=3)
    other = granted(ckit, quota_per_day=1)
    day = date(2026, 3, 6)
    with ckit.runtime.session_scope() as session:
        assert grant_check.lock_usage(session, [grant["id"], other["id"], grant["id"]], day) == {
            grant["id"]: 0, other["id"]: 0,
        }  # fmt: skip
        grant_check.set_usage(session, {grant["id"]: 2}, day)
    with ckit.runtime.session_scope() as session:
        assert grant_check.lock_usage(session, [grant["id"]], day) == {grant["id"]: 2}  # an existing row is kept
        assert grant_check.lock_usage(session, [grant["id"]], day + timedelta(days=1)) == {grant["id"]: 0}
        assert grant_check.lock_usage(session, [], day) == {}
        assert grant_check.usage(session, other["id"], day) == 0


def test_a_rolled_back_count_gives_its_quota_back(ckit: CatalogKit) -> None:
    grant = granted(ckit, quota_per_day=1)
    day = date(2026, 3, 6)
    session = ckit.runtime.session_factory()
    try:
        used = grant_check.lock_usage(session, [grant["id"]], day)
        grant_check.set_usage(session, {grant["id"]: used[grant["id"]] + 1}, day)
        assert grant_check.usage(session, grant["id"], day) == 1
        session.rollback()  # the exchange's batch failed after counting
    finally:
        session.close()
    with ckit.runtime.session_scope() as session:
        assert grant_check.usage(session, grant["id"], day) == 0


def test_seconds_to_local_midnight() -> None:
    at = datetime(2026, 3, 6, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    assert grant_check.seconds_to_local_midnight(at) == 60
    assert grant_check.seconds_to_local_midnight(datetime(2026, 3, 6, 16, 0, tzinfo=UTC)) == 86_400


def test_several_grants_one_covering_the_fields_is_chosen(ckit: CatalogKit) -> None:
    make_matter(ckit)
    resource = ckit.insert_resource(share_type="unconditional", items=OPEN_ITEMS)
    narrow = submit(ckit, request_body(resource, ["uscc"]))
    wide = submit(ckit, request_body(resource, ["uscc", "name"]))
    cache = GrantCache()
    grant = {"consumer_code": ckit.consumer.code, "resource_code": resource}
    assert _check(ckit.runtime, cache, grant).grant_id == wide["grant_id"]
    assert _check(ckit.runtime, cache, grant, fields=["name"]).grant_id == wide["grant_id"]
    _post(ckit, wide["grant_id"], "suspend", {"reason": "核查"})
    assert _check(ckit.runtime, cache, grant).grant_id == narrow["grant_id"]
    assert _refused(ckit.runtime, cache, grant, fields=["name"]) == "grant_field_not_granted"


# ----------------------------------------------------------------------------- the cache


def test_warm_decisions_send_no_sql(ckit: CatalogKit, statements: list[str]) -> None:
    grant = granted(ckit)
    clock = Clock()
    cache = GrantCache(monotonic=clock)
    runtime = ckit.runtime
    with runtime.session_scope() as session:
        args = {"consumer_code": grant["consumer_code"], "resource_code": grant["resource_code"],
                "matter_code": MATTER, "fields": ["uscc"], "at": utcnow()}  # fmt: skip
        check_grant(session, cache, **args)
        statements.clear()
        for _ in range(100):
            check_grant(session, cache, **args)
        assert statements == []
        assert cache.loads == 1
        clock.now += grant_check.REFRESH_SECONDS
        check_grant(session, cache, **args)
        assert len(statements) == 1  # one generation read per refresh interval, rows stay cached
        assert cache.loads == 1


def test_a_change_in_this_process_is_seen_by_the_next_check(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    clock = Clock()  # never moves: only the after-commit invalidation can make the change visible
    cache = GrantCache(monotonic=clock)
    assert _check(ckit.runtime, cache, grant).grant_id == grant["id"]
    _post(ckit, grant["id"], "suspend", {"reason": "核查"})
    assert _refused(ckit.runtime, cache, grant) == "grant_suspended"
    _post(ckit, grant["id"], "reinstate", {})
    assert _check(ckit.runtime, cache, grant).grant_id == grant["id"]
    registered = grant_check.cache_for(ckit.runtime)
    assert registered is grant_check.cache_for(ckit.runtime)
    assert _check(ckit.runtime, registered, grant).grant_id == grant["id"]


def test_a_change_by_another_process_is_seen_within_the_bound(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    clock = Clock()
    remote = GrantCache(monotonic=clock, follow_local_changes=False)  # hears nothing but the counter
    assert _check(ckit.runtime, remote, grant).grant_id == grant["id"]
    _post(ckit, grant["id"], "revoke", {"reason": "撤销"})
    clock.now += grant_check.REFRESH_SECONDS / 2
    assert _check(ckit.runtime, remote, grant).grant_id == grant["id"]  # stale, but within the bound
    clock.now += grant_check.REFRESH_SECONDS / 2
    assert _refused(ckit.runtime, remote, grant) == "grant_revoked"


def test_a_rolled_back_change_does_not_poison_the_cache(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    runtime, clock = ckit.runtime, Clock()
    local = GrantCache(monotonic=clock)
    remote = GrantCache(monotonic=clock, follow_local_changes=False)
    for cache in (local, remote):
        assert _check(runtime, cache, grant).grant_id == grant["id"]
    before = _generation(runtime)
    session = runtime.session_factory()
    try:
        row = grants.grant_for_change(session, grant["id"], grants.Viewer(ckit.provider.code))
        grants.change_status(session, runtime.settings, row, "suspend", reason="未提交")
        for cache in (local, remote):  # the changing session sees its own change, from the database
            with pytest.raises(grant_check.GrantSuspended):
                check_grant(
                    session, cache, consumer_code=grant["consumer_code"], resource_code=grant["resource_code"],
                    matter_code=MATTER, fields=None, at=utcnow(),
                )  # fmt: skip
        session.rollback()
    finally:
        session.close()
    assert _generation(runtime) == before
    clock.now += grant_check.REFRESH_SECONDS
    for cache in (local, remote):
        assert _check(runtime, cache, grant).grant_id == grant["id"]
    # A committed change now takes the generation number the rolled-back one had: still seen correctly.
    _post(ckit, grant["id"], "revoke", {"reason": "撤销"})
    assert _generation(runtime) == before + 1
    assert _refused(runtime, local, grant) == "grant_revoked"
    clock.now += grant_check.REFRESH_SECONDS
    assert _refused(runtime, remote, grant) == "grant_revoked"


def test_a_disabled_cache_reads_the_database_every_time(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    cache = GrantCache(enabled=False, follow_local_changes=False)
    for _ in range(3):
        assert _check(ckit.runtime, cache, grant).grant_id == grant["id"]
    assert cache.loads == 0  # nothing is kept; every call went to the database


def test_a_commit_to_another_database_leaves_the_cache_alone(ckit: CatalogKit) -> None:
    grant = granted(ckit)
    cache = GrantCache(monotonic=Clock())
    assert _check(ckit.runtime, cache, grant).grant_id == grant["id"]
    cache.invalidate(10**9, database="postgresql+psycopg://elsewhere/other")
    assert _check(ckit.runtime, cache, grant).grant_id == grant["id"]
    assert cache.loads == 1  # still warm: only changes to its own database's grants drop entries
