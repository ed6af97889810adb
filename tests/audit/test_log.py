"""The audit log on a real database: sequencing, receipts, integration, proofs, the API and what gets audited."""

from __future__ import annotations

import base64
import itertools
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from factories import audit_event, random_id_number, secret_client
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit import merkle, service, tree
from audit.entries import Receipt, ReceiptInvalid, canonical, entry_leaf_hash, holder_ref
from audit.errors import ProofRequestInvalid
from audit.models import AuditEntry
from audit.note import Verifier, open_checkpoint
from hub import audited
from hub.clock import utcnow
from hub.runtime import Runtime

event = audit_event


def record_many(runtime: Runtime, count: int, **overrides: Any) -> list[Receipt]:
    with runtime.session_scope() as session:
        return [service.record(session, runtime.audit_signer, event(**overrides)) for _ in range(count)]


def integrate(runtime: Runtime, **kwargs: Any) -> Any:
    with runtime.session_scope() as session:
        return tree.integrate(session, runtime.audit_signer, **kwargs)


def verifier(runtime: Runtime) -> Verifier:
    signer = runtime.audit_signer
    return Verifier(signer.origin, signer.private_key.public_key().public_bytes_raw())


def next_index(runtime: Runtime) -> int:
    with runtime.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# --------------------------------------------------------------------------- append path


def test_indexes_are_gap_free_and_a_rollback_gives_its_indexes_back(runtime: Runtime) -> None:
    start = next_index(runtime)
    first = record_many(runtime, 3)
    assert [r.leaf_index for r in first] == [start, start + 1, start + 2]

    def failing_decision() -> None:
        with runtime.session_scope() as session:
            service.record(session, runtime.audit_signer, event())
            raise RuntimeError  # the decision failed: its entry goes with it

    with pytest.raises(RuntimeError):
        failing_decision()
    (after,) = record_many(runtime, 1)
    assert after.leaf_index == start + 3


def test_stored_entry_is_the_canonical_bytes_and_its_leaf_hash(runtime: Runtime) -> None:
    (receipt,) = record_many(runtime, 1, certificate_identifier="1.2.156.3005.2.11100000000013338W032.x")
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, receipt.leaf_index)
        assert row is not None
        assert row.body is not None
        assert canonical(service.entry_body(row) or {}) == row.body
        assert entry_leaf_hash(row.body) == row.leaf_hash == receipt.leaf_hash
        assert row.body.startswith(b'{"action":"exchange.licence.fetched","actor":')  # RFC 8785 key order


def test_receipt_verifies_and_any_change_breaks_it(runtime: Runtime) -> None:
    (receipt,) = record_many(runtime, 1)
    public = runtime.audit_signer.private_key.public_key()
    origin = runtime.audit_signer.origin
    receipt.verify(public, origin)
    forged = Receipt(receipt.leaf_index + 1, receipt.leaf_hash, receipt.integrated_time, receipt.signature)
    with pytest.raises(ReceiptInvalid):
        forged.verify(public, origin)
    with pytest.raises(ReceiptInvalid):
        receipt.verify(public, "another-log.example/audit")
    with pytest.raises(ReceiptInvalid):
        receipt.verify(Ed25519PublicKey.from_public_bytes(secrets.token_bytes(32)), origin)


def test_holder_ref_is_an_hmac_and_never_the_id_number(runtime: Runtime) -> None:
    code = random_id_number()
    ref = audited.holder_ref(runtime, "111", code)
    assert ref == holder_ref(runtime.audit_signer.holder_secret, "111", code)
    assert code not in ref
    assert ref != holder_ref(secrets.token_bytes(32), "111", code)


def test_events_refuse_unknown_outcomes_and_action_names() -> None:
    with pytest.raises(ValueError, match="outcome"):
        event(outcome="maybe")
    with pytest.raises(ValueError, match=r"domain\.subject\.verb"):
        event(action="fetched")


def test_group_committer_returns_receipts_in_order(runtime: Runtime) -> None:
    start = next_index(runtime)
    receipts = runtime.audit.record([event(), event(), event()])
    assert [r.leaf_index for r in receipts] == [start, start + 1, start + 2]
    for receipt in receipts:
        receipt.verify(runtime.audit_signer.private_key.public_key(), runtime.audit_signer.origin)
    assert runtime.audit.entries >= 3


# --------------------------------------------------------------------------- tree, checkpoints, proofs


def test_integration_publishes_signed_checkpoints_with_verifiable_proofs(runtime: Runtime) -> None:
    base = next_index(runtime)
    record_many(runtime, 37)
    first = integrate(runtime)
    assert first.tree_size == base + 37
    checkpoint = open_checkpoint(first.signed_note, verifier(runtime))
    assert checkpoint.size == first.tree_size
    assert checkpoint.root_hash == first.root_hash
    with runtime.session_scope() as session:
        leaves = service.leaf_hashes(session, 0, first.tree_size)
        assert merkle.root_from_leaves(leaves) == first.root_hash
        for index in range(first.tree_size):
            proof = tree.inclusion_proof(session, index, first.tree_size)
            merkle.verify_inclusion(leaves[index], index, first.tree_size, proof, first.root_hash)
    record_many(runtime, 20)
    second = integrate(runtime)
    assert second.tree_size == first.tree_size + 20
    with runtime.session_scope() as session:
        proof = tree.consistency_proof(session, first.tree_size, second.tree_size)
    merkle.verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first.tree_size, second.tree_size, second.root_hash, second.root_hash, proof)
    assert integrate(runtime) is None  # nothing new


def test_integration_in_chunks_gives_the_same_root(runtime: Runtime) -> None:
    record_many(runtime, 45)
    sizes = []
    while (made := integrate(runtime, max_entries=10)) is not None:
        sizes.append(made.tree_size)
    assert len(sizes) >= 5
    assert all(b - a <= 10 for a, b in itertools.pairwise(sizes))
    with runtime.session_scope() as session:
        assert tree.stored_root(session, sizes[-1]) == merkle.root_from_leaves(
            service.leaf_hashes(session, 0, sizes[-1])
        )


def test_proofs_beyond_the_latest_checkpoint_are_refused(runtime: Runtime) -> None:
    """The covering checkpoint is read in the proof's own query, or on its own when a proof reads no node."""
    record_many(runtime, 1)
    with runtime.session_scope() as session, pytest.raises(ProofRequestInvalid, match="beyond the latest checkpoint"):
        tree.inclusion_proof(session, 0, 1)  # the audit path of a one-leaf tree is empty: nothing is read
    record_many(runtime, 4)
    made = integrate(runtime)
    record_many(runtime, 5)  # their leaves are stored, but no checkpoint covers them yet
    beyond = made.tree_size + 3
    refused: list[Callable[[Session], object]] = [
        lambda session: tree.inclusion_proof(session, 0, beyond),
        lambda session: tree.inclusion_proof(session, beyond - 1, beyond),
        lambda session: tree.consistency_proof(session, made.tree_size, beyond),
        lambda session: tree.consistency_proof(session, beyond, beyond),  # empty proof: nothing is read
    ]
    for prove in refused:
        with runtime.session_scope() as session, pytest.raises(ProofRequestInvalid, match="beyond the latest"):
            prove(session)
    with runtime.session_scope() as session:
        assert tree.consistency_proof(session, made.tree_size, made.tree_size) == []
        path = tree.inclusion_proof(session, 2, made.tree_size)
        leaf = service.leaf_hashes(session, 2, 3)[0]
        merkle.verify_inclusion(leaf, 2, made.tree_size, path, made.root_hash)


def test_redacted_entries_keep_the_tree_and_proofs(runtime: Runtime) -> None:
    record_many(runtime, 8, time=utcnow() - timedelta(days=4000))
    record_many(runtime, 2)
    made = integrate(runtime)
    with runtime.session_scope() as session:
        assert service.redact(session, before=utcnow() - timedelta(days=3650), now=utcnow()) >= 8
    with runtime.session_scope() as session:
        leaves = service.leaf_hashes(session, 0, made.tree_size)
        redacted = session.scalars(select(AuditEntry).where(AuditEntry.body.is_(None))).all()
        assert len(redacted) >= 8
        for row in redacted:
            assert row.holder_ref is None
            assert row.case_number is None
            proof = tree.inclusion_proof(session, row.leaf_index, made.tree_size)
            merkle.verify_inclusion(leaves[row.leaf_index], row.leaf_index, made.tree_size, proof, made.root_hash)


# --------------------------------------------------------------------------- HTTP


def token(client: TestClient, runtime: Runtime, scopes: str) -> tuple[dict[str, str], str]:
    api_client, secret = secret_client(runtime, scopes)
    auth = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    body = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {auth}"}
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}, secret


def test_checkpoint_verifier_key_and_proofs_over_http(client: TestClient, runtime: Runtime) -> None:
    admin, _ = token(client, runtime, "admin audit:read")
    record_many(runtime, 12)
    made = client.post("/v1/audit/checkpoints", headers=admin)
    assert made.status_code == 200, made.text
    size = made.json()["tree_size"]
    note = client.get("/v1/audit/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    key = Verifier.from_verifier_key(client.get("/v1/audit/verifier-key").text.strip())
    checkpoint = open_checkpoint(note.text, key)
    assert checkpoint.size == size
    assert client.get("/v1/audit/checkpoint", params={"tree_size": size}).text == note.text
    entry = client.get(f"/v1/audit/entries/{size - 1}", headers=admin).json()
    proof = client.get("/v1/audit/proof/inclusion", params={"leaf_index": size - 1, "tree_size": size}).json()
    merkle.verify_inclusion(
        base64.b64decode(entry["leaf_hash"]),
        size - 1,
        size,
        [base64.b64decode(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )
    assert entry_leaf_hash(canonical(entry["entry"])) == base64.b64decode(entry["leaf_hash"])
    beyond = client.get("/v1/audit/proof/inclusion", params={"leaf_index": 0, "tree_size": size + 100})
    assert beyond.status_code == 422
    assert beyond.json()["code"] == "proof_request_invalid"
    assert client.get("/v1/audit/checkpoint", params={"tree_size": size + 100}).json()["code"] == "checkpoint_not_found"


def test_entries_need_audit_read(client: TestClient, runtime: Runtime) -> None:
    headers, _ = token(client, runtime, "licence:read")
    response = client.get("/v1/audit/entries", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"


def test_token_issuance_is_audited_with_a_receipt(client: TestClient, runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:read")
    auth = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    body = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {auth}"}
    ).json()
    receipt = Receipt.from_json(body["receipt"])
    receipt.verify(runtime.audit_signer.private_key.public_key(), runtime.audit_signer.origin)
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, receipt.leaf_index)
        assert row is not None
        entry = service.entry_body(row)
    assert entry is not None
    assert entry["action"] == "auth.token.issued"
    assert entry["outcome"] == "ok"
    assert entry["client_id"] == api_client.client_id
    assert entry["actor"] == api_client.department_code
    assert secret not in str(entry)
    assert body["access_token"] not in str(entry)


def test_refused_token_request_is_audited_and_carries_its_receipt(client: TestClient, runtime: Runtime) -> None:
    api_client, secret = secret_client(runtime, "licence:read")
    wrong = base64.b64encode(f"{api_client.client_id}:{secret}x".encode()).decode()
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {wrong}"}
    )
    assert response.status_code == 401
    problem = response.json()
    receipt = Receipt.from_json(problem["receipt"])
    receipt.verify(runtime.audit_signer.private_key.public_key(), runtime.audit_signer.origin)
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, receipt.leaf_index)
        assert row is not None
        assert (row.action, row.outcome, row.error_code) == (
            "auth.token.issued",
            "denied",
            "client_authentication_failed",
        )
        assert secret not in (row.body or b"").decode()
        assert (service.entry_body(row) or {})["client_id"] == api_client.client_id


def test_failed_holder_sign_in_is_audited(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    receipt = Receipt.from_json(response.json()["receipt"])
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, receipt.leaf_index)
        assert row is not None
        assert (row.action, row.outcome, row.error_code) == ("identity.holder.signed_in", "denied", "id_token_invalid")


def test_admin_changes_are_audited_in_their_transaction(client: TestClient, runtime: Runtime) -> None:
    from factories import random_uscc

    admin, _ = token(client, runtime, "admin")
    code = random_uscc()
    created = client.post(
        "/v1/admin/departments",
        json={"code": code, "name": "临江市审计局", "level": "municipal", "area_code": "330100"},
        headers=admin,
    ).json()
    with runtime.session_scope() as session:
        row = session.get(AuditEntry, created["receipt"]["leaf_index"])
        assert row is not None
        assert row.action == "identity.department.created"
        assert (service.entry_body(row) or {})["department_code"] == code
    before = next_index(runtime)
    duplicate = client.post(
        "/v1/admin/departments",
        json={"code": code, "name": "临江市审计局", "level": "municipal", "area_code": "330100"},
        headers=admin,
    )
    assert duplicate.status_code == 409
    assert next_index(runtime) == before  # the refused change left no entry behind


def test_holder_reads_who_used_their_data_except_hidden_entries(client: TestClient, runtime: Runtime) -> None:
    from factories import department

    with runtime.session_scope() as session:
        dept = department(session, "临江市人力资源和社会保障局")
    code = random_id_number()
    ref = audited.holder_ref(runtime, "111", code)
    other = audited.holder_ref(runtime, "111", random_id_number())
    record_many(runtime, 2, holder_ref=ref, actor=dept.code)
    record_many(runtime, 1, holder_ref=ref, hidden_until=utcnow() + timedelta(days=90), case_number="SECRET-1")
    record_many(runtime, 1, holder_ref=ref, hidden_until=utcnow() - timedelta(days=1), case_number="OPENED-1")
    record_many(runtime, 3, holder_ref=other)
    id_token = client.post("/dev/idp/token", json={"holder_type": "111", "holder_code": code, "name": "张伟"}).json()
    log = client.get("/v1/me/access-log", headers={"Authorization": f"Bearer {id_token['id_token']}"})
    assert log.status_code == 200, log.text
    items = log.json()
    assert len(items) == 3
    assert {i["case_number"] for i in items} == {"LJ2026112300001", "OPENED-1"}
    assert all(i["matter_code"] == "330100-000-XK-001" for i in items)
    assert items[0]["fields"] == ["name", "valid_until"]
    assert items[0]["department_name"] == "临江市人力资源和社会保障局"


def test_auditor_searches_by_holder_and_exports_with_proofs(client: TestClient, runtime: Runtime) -> None:
    auditor, _ = token(client, runtime, "audit:read admin")
    code = random_id_number()
    ref = audited.holder_ref(runtime, "111", code)
    record_many(runtime, 4, holder_ref=ref, case_number="LJ-CASE-7")
    record_many(runtime, 2)
    client.post("/v1/audit/checkpoints", headers=auditor)
    found = client.get("/v1/audit/entries", params={"holder_type": "111", "holder_code": code}, headers=auditor)
    assert found.status_code == 200, found.text
    assert len(found.json()) == 4
    searches = client.get("/v1/audit/entries", params={"action": "audit.entries.searched"}, headers=auditor).json()
    assert searches[-1]["entry"]["holder_ref"] == ref  # the search shows in the holder's access log
    assert code not in found.text
    by_case = client.get("/v1/audit/entries", params={"case": "LJ-CASE-7", "limit": 2}, headers=auditor).json()
    assert len(by_case) == 2
    page2 = client.get(
        "/v1/audit/entries", params={"case": "LJ-CASE-7", "after": by_case[-1]["leaf_index"]}, headers=auditor
    ).json()
    assert len(page2) == 2
    jsonl = client.get(
        "/v1/audit/entries", params={"case": "LJ-CASE-7", "format": "jsonl"}, headers=auditor
    ).text.splitlines()
    assert len(jsonl) == 4
    import json

    row = json.loads(jsonl[0])
    checkpoint = open_checkpoint(client.get("/v1/audit/checkpoint").text, verifier(runtime))
    merkle.verify_inclusion(
        base64.b64decode(row["leaf_hash"]),
        row["leaf_index"],
        row["tree_size"],
        [base64.b64decode(h) for h in row["inclusion_proof"]],
        checkpoint.root_hash,
    )
    csv_text = client.get("/v1/audit/entries", params={"case": "LJ-CASE-7", "format": "csv"}, headers=auditor).text
    assert csv_text.splitlines()[0].startswith("leaf_index,leaf_hash,time,action")
    assert len(csv_text.splitlines()) == 5
    half = client.get("/v1/audit/entries", params={"holder_type": "111"}, headers=auditor)
    assert half.status_code == 422
    bad = client.get("/v1/audit/entries", params={"holder_type": "111", "holder_code": "123"}, headers=auditor)
    assert bad.json()["code"] == "invalid_id_number"


def test_nul_characters_in_a_search_are_a_clear_error_not_a_500(client: TestClient, runtime: Runtime) -> None:
    auditor, _ = token(client, runtime, "audit:read")
    response = client.get("/v1/audit/entries", params={"case": "LJ\x00-1"}, headers=auditor)
    if response.status_code == 200:  # SQLite stores NUL in text; PostgreSQL refuses it
        assert response.json() == []
    else:
        assert response.status_code == 422
        assert response.json()["code"] == "value_not_storable"


def test_integration_refuses_to_sign_over_an_edited_or_missing_entry(runtime: Runtime) -> None:
    from sqlalchemy import delete, update

    from audit.errors import AuditLogTampered

    receipts = record_many(runtime, 6)
    with runtime.session_scope() as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.leaf_index == receipts[2].leaf_index).values(body=canonical({"x": 1}))
        )
    with pytest.raises(AuditLogTampered, match=f"entry {receipts[2].leaf_index} does not match"):
        integrate(runtime)
    with runtime.session_scope() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.leaf_index == receipts[2].leaf_index))
    with pytest.raises(AuditLogTampered, match=f"entry {receipts[2].leaf_index} is missing"):
        integrate(runtime)


def test_the_origin_is_fixed_at_init_not_by_later_settings(
    runtime: Runtime, make_settings: Any, make_runtime: Any
) -> None:
    moved = make_runtime(make_settings(public_url="https://new-name.example"))
    assert moved.audit_signer.origin == runtime.audit_signer.origin == "testserver/audit"
