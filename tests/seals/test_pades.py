"""The fast PAdES sealer, checked by pdfsig, pyHanko, openssl cms and qpdf; tampering is caught."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from asn1crypto import cms
from celery import Celery
from conftest import PIN, TOKEN
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from factories import random_uscc
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

import hub.jobs
import hub.tasks
from hub.api.app import create_app
from hub.clock import utcnow
from hub.errors import DomainError
from hub.runtime import Runtime, set_runtime
from hub.settings import Settings
from licences import render
from seals import lifecycle, ltv, pades, tsa
from seals import pki as x509_pki
from seals import service as pki
from seals.image import bitmap_for_pdf, generate_seal_image
from seals.models import SealKey
from seals.pades import PreparedSeal, SealingFailed
from seals.sealing import Placement
from seals.verify import FAILED, INDETERMINATE, PASSED, TrustSettings, Verifier
from tests.seals.sealkit import (
    SEAL_RECT,
    SealKit,
    byte_ranges,
    certificate_pem,
    make_kit,
    nss_store,
    openssl_cms_verify,
    pdfsig,
    qpdf_check,
    sample_pdf,
)


@pytest.fixture
def kit(runtime: Runtime) -> SealKit:
    return make_kit(runtime)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_sealed_pdf_validates_in_pdfsig_pyhanko_openssl_and_qpdf(kit: SealKit, tmp_path: Path) -> None:
    sealed = kit.sign(sample_pdf())
    path = write(tmp_path, "sealed.pdf", sealed)

    [found] = pdfsig(path, nss_store(tmp_path, kit.root_pem(tmp_path)))
    assert found["Signature Validation"] == "Signature is Valid."
    assert found["Certificate Validation"] == "Certificate is Trusted."
    assert found["Signature Type"] == "ETSI.CAdES.detached"
    assert found["coverage"] == "Total document signed"
    assert kit.owner.code in found["Signer full Distinguished Name"]

    report = kit.verifier().verify(sealed)
    assert report.verdict == PASSED, report
    [sig] = report.signatures
    assert sig.signer is not None
    assert sig.signer.organization == kit.owner.name
    assert sig.signer.organization_identifier == kit.owner.code
    assert sig.revocation == "good"
    assert sig.covers_whole_document

    done = openssl_cms_verify(sealed, kit.root_pem(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"Verification successful" in done.stderr

    checked = qpdf_check(path)
    assert checked.returncode == 0, checked.stdout
    assert b"No syntax or stream encoding errors" in checked.stdout


def test_rendered_licence_sealed_b_t_validates_everywhere(kit: SealKit, tmp_path: Path) -> None:
    """A real 营业执照 from the renderer (CJK subset font, XMP, QR), sealed where the renderer says."""
    rendered = render.render_licence(render.sample_business_licence(7), template=render.BUSINESS_LICENCE_TEMPLATE)
    placement = Placement(rect=rendered.seal_rect, page_index=rendered.page_index)
    sealed = kit.sign(rendered.pdf, placement=placement, timestamp=timestamper(kit).stamp_digest)
    path = write(tmp_path, "licence.pdf", sealed)
    [found] = pdfsig(path, nss_store(tmp_path, kit.root_pem(tmp_path)))
    assert (found["Signature Validation"], found["Certificate Validation"]) == (
        "Signature is Valid.",
        "Certificate is Trusted.",
    )
    assert kit.verifier().verify(sealed).verdict == PASSED
    assert openssl_cms_verify(sealed, kit.root_pem(tmp_path), tmp_path).returncode == 0
    assert qpdf_check(path).returncode == 0
    with pikepdf.open(io.BytesIO(sealed)) as pdf:
        assert "/Metadata" in pdf.Root  # the renderer's XMP survives the incremental update


def test_signed_attributes_follow_pades_baseline(kit: SealKit) -> None:
    """ETSI EN 319 142-1 §5.2: content-type, message-digest, signing-certificate-v2; no signing-time."""
    sealed = kit.sign(sample_pdf())
    [(_, der)] = byte_ranges(sealed)
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    assert signed["encap_content_info"]["content"].native is None  # detached
    [signer] = signed["signer_infos"]
    names = {attr["type"].native for attr in signer["signed_attrs"]}
    assert names == {"content_type", "message_digest", "signing_certificate_v2"}
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    assert re.search(rb"/SubFilter /ETSI\.CAdES\.detached", sealed)
    assert re.search(rb"/M \(D:\d{14}Z\)", sealed)  # the claimed time lives in the dictionary
    # The re-encoding by asn1crypto is byte-identical: our DER is canonical.
    assert info.dump(force=True) == der


def test_visible_widget_carries_the_seal_image(kit: SealKit) -> None:
    sealed = kit.sign(sample_pdf())
    with pikepdf.open(io.BytesIO(sealed)) as pdf:
        [annot] = pdf.pages[0].Annots
        assert annot.Subtype == "/Widget"
        assert annot.FT == "/Sig"
        assert [float(x) for x in annot.Rect] == list(SEAL_RECT.rect)
        image = annot.AP.N.Resources.XObject.Im0
        assert image.Subtype == "/Image"
        assert "/SMask" in image
        assert int(image.Width) == int(image.Height) > 100
        assert int(pdf.Root.AcroForm.SigFlags) == 3


def test_second_seal_keeps_the_first_intact(runtime: Runtime, kit: SealKit, tmp_path: Path) -> None:
    other = make_kit(runtime, name="临江市卫生健康委员会")
    twice = other.sign(kit.sign(sample_pdf()), placement=Placement(rect=(100.0, 90.0, 220.0, 210.0)))
    report = kit.verifier().verify(twice)
    assert report.verdict == PASSED, report
    first, second = report.signatures
    assert first.modifications_after == "form_filling"
    assert not first.covers_whole_document
    assert second.covers_whole_document
    # pdfsig (poppler 22 + NSS) finds the issuing CA only when it is in the store for multi-signature
    # files; with it there, both signatures are valid and trusted.
    with kit.runtime.session_scope() as session:
        issuing_pem = certificate_pem(pki.get_ca_or_raise(session, pki.ISSUING).certificate, tmp_path / "issuing.pem")
    found = pdfsig(write(tmp_path, "twice.pdf", twice), nss_store(tmp_path, kit.root_pem(tmp_path), issuing_pem))
    assert [f["Signature Validation"] for f in found] == ["Signature is Valid."] * 2
    assert [f["Certificate Validation"] for f in found] == ["Certificate is Trusted."] * 2


# ------------------------------------------------------------------------------------------ tampering


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_flipped_byte_inside_the_signed_range_fails(kit: SealKit, tmp_path: Path) -> None:
    original = sample_pdf()
    sealed = kit.sign(original)
    at = original.index(b"595")  # the page width: the PDF still parses, its sealed bytes do not match
    tampered = flip(sealed, at)
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED
    assert report.sub_indication == "HASH_FAILURE"
    [found] = pdfsig(write(tmp_path, "t.pdf", tampered), nss_store(tmp_path, kit.root_pem(tmp_path)))
    assert found["Signature Validation"] != "Signature is Valid."
    assert openssl_cms_verify(tampered, kit.root_pem(tmp_path), tmp_path).returncode != 0


def test_altered_byte_range_fails(kit: SealKit) -> None:
    sealed = kit.sign(sample_pdf())
    [(numbers, _)] = byte_ranges(sealed)
    old = b"[0 %d %d %d]" % tuple(numbers[1:])
    new = b"[0 %d %d %d]" % (numbers[1], numbers[2], numbers[3] - 10)
    tampered = sealed.replace(old, new.ljust(len(old)))
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED, report


def pyhanko_incremental(sealed: bytes, edit: object) -> bytes:
    """An attacker's incremental update (ISO 32000-1 §7.5.6) written by pyHanko's writer."""
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    edit(writer)  # type: ignore[operator]
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_incremental_update_changing_page_content_is_reported(kit: SealKit) -> None:
    def overwrite_content(writer: object) -> None:
        page = writer.root["/Pages"]["/Kids"][0].get_object()  # type: ignore[attr-defined]
        stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (Forged licence) Tj ET")
        page["/Contents"] = writer.add_object(stream)  # type: ignore[attr-defined]
        writer.update_container(page)  # type: ignore[attr-defined]

    tampered = pyhanko_incremental(kit.sign(sample_pdf()), overwrite_content)
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED
    assert report.sub_indication == "FORMAT_FAILURE"
    assert "changed after sealing" in report.detail
    [sig] = report.signatures
    assert sig.intact  # the sealed revision itself is untouched ...
    assert not sig.covers_whole_document  # ... but the document shown is not what was sealed


def test_incremental_update_adding_an_annotation_is_reported(kit: SealKit) -> None:
    def add_annotation(writer: object) -> None:
        page = writer.root["/Pages"]["/Kids"][0].get_object()  # type: ignore[attr-defined]
        note = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/FreeText"),
                generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in (50, 50, 300, 90)]),
                generic.NameObject("/Contents"): generic.TextStringObject("有效期延长至2099年"),
                generic.NameObject("/DA"): generic.TextStringObject("/Helv 12 Tf 0 g"),
            }
        )
        annots = page["/Annots"]
        annots.append(writer.add_object(note))  # type: ignore[attr-defined]
        writer.update_container(page)  # type: ignore[attr-defined]

    tampered = pyhanko_incremental(kit.sign(sample_pdf()), add_annotation)
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED
    assert "changed after sealing" in report.detail


def test_overlaid_new_page_is_reported(kit: SealKit) -> None:
    def overlay(writer: object) -> None:
        content = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (Replacement) Tj ET"))  # type: ignore[attr-defined]
        page = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Page"),
                generic.NameObject("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(n) for n in (0, 0, 595, 842)]
                ),
                generic.NameObject("/Contents"): content,
            }
        )
        writer.insert_page(page, after=None)  # type: ignore[attr-defined]

    tampered = pyhanko_incremental(kit.sign(sample_pdf()), overlay)
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED
    assert "changed after sealing" in report.detail


def test_unsigned_revision_replacing_the_seal_appearance_is_reported(kit: SealKit) -> None:
    def replace_appearance(writer: object) -> None:
        page = writer.root["/Pages"]["/Kids"][0].get_object()  # type: ignore[attr-defined]
        widget = page["/Annots"][0].get_object()
        fake = generic.StreamObject(
            {generic.NameObject("/Type"): generic.NameObject("/XObject"),
             generic.NameObject("/Subtype"): generic.NameObject("/Form"),
             generic.NameObject("/BBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 120, 120)])},
            stream_data=b"1 0 0 rg 0 0 120 120 re f",
        )  # fmt: skip
        widget["/AP"] = generic.DictionaryObject({generic.NameObject("/N"): writer.add_object(fake)})  # type: ignore[attr-defined]
        writer.update_container(widget)  # type: ignore[attr-defined]

    tampered = pyhanko_incremental(kit.sign(sample_pdf()), replace_appearance)
    report = kit.verifier().verify(tampered)
    assert report.verdict == FAILED
    assert "changed after sealing" in report.detail


def test_pikepdf_resave_breaks_the_seal(kit: SealKit) -> None:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(kit.sign(sample_pdf()))) as pdf:
        pdf.save(out)
    report = kit.verifier().verify(out.getvalue())
    assert report.verdict == FAILED, report


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_file_gets_a_verdict(kit: SealKit, cut: float) -> None:
    sealed = kit.sign(sample_pdf())
    report = kit.verifier().verify(sealed[: int(len(sealed) * cut)])
    assert report.verdict == FAILED


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\n%%EOF", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64])
def test_not_a_pdf_gets_a_verdict(kit: SealKit, data: bytes) -> None:
    report = kit.verifier().verify(data)
    assert report.verdict == FAILED
    assert report.sub_indication == "FORMAT_FAILURE"


def test_unsigned_pdf_is_not_passed(kit: SealKit) -> None:
    report = kit.verifier().verify(sample_pdf())
    assert report.verdict == FAILED
    assert "no seal" in report.detail


def test_sealer_refuses_what_it_cannot_follow(kit: SealKit) -> None:
    with kit.runtime.session_scope() as session:
        prepared = kit.cache.get(session, kit.context, kit.seal(session))
    for bad in (b"", b"not a pdf", sample_pdf()[:-40], b"%PDF-1.7\nstartxref\n99999\n%%EOF"):
        with pytest.raises(SealingFailed):
            pades.seal_pdf(bad, prepared, rect=SEAL_RECT.rect)
    # Cross-reference streams (object streams) are refused with a clear error, not mis-sealed.
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(sample_pdf())) as pdf:
        pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    with pytest.raises(SealingFailed, match="cross-reference stream"):
        pades.seal_pdf(out.getvalue(), prepared, rect=SEAL_RECT.rect)
    # Encrypted files would get new objects in the clear: refused, not half-sealed.
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(sample_pdf())) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(owner="o", user="", R=6),
                 object_stream_mode=pikepdf.ObjectStreamMode.disable)  # fmt: skip
    with pytest.raises(SealingFailed, match="encrypted"):
        pades.seal_pdf(out.getvalue(), prepared, rect=SEAL_RECT.rect)
    with pytest.raises(SealingFailed, match="no page 3"):
        pades.seal_pdf(sample_pdf(), prepared, rect=SEAL_RECT.rect, page_index=2)


# ------------------------------------------------------------------------------------- B-T and B-LTA


def timestamper(kit: SealKit) -> tsa.TimeStamper:
    with kit.runtime.session_scope() as session:
        return pki.get_timestamper(session, kit.runtime.master_keys)


def test_b_t_carries_a_trusted_signature_time_stamp(kit: SealKit, tmp_path: Path) -> None:
    sealed = kit.sign(sample_pdf(), timestamp=timestamper(kit).stamp_digest)
    report = kit.verifier().verify(sealed)
    assert report.verdict == PASSED, report
    [sig] = report.signatures
    assert sig.timestamp_trusted is True
    assert sig.timestamp_time is not None
    assert sig.best_signature_time == sig.timestamp_time
    [(_, der)] = byte_ranges(sealed)
    [signer] = cms.ContentInfo.load(der)["content"]["signer_infos"]
    assert [a["type"].native for a in signer["unsigned_attrs"]] == ["signature_time_stamp_token"]
    [found] = pdfsig(write(tmp_path, "bt.pdf", sealed), nss_store(tmp_path, kit.root_pem(tmp_path)))
    assert found["Signature Validation"] == "Signature is Valid."
    assert found["Certificate Validation"] == "Certificate is Trusted."
    assert openssl_cms_verify(sealed, kit.root_pem(tmp_path), tmp_path).returncode == 0
    assert qpdf_check(tmp_path / "bt.pdf").returncode == 0


def test_b_t_seal_revoked_after_signing_still_passes_but_b_b_does_not(kit: SealKit) -> None:
    """Revocation is judged at the best signature time: the time-stamp proves the seal signed first."""
    b_t = kit.sign(sample_pdf(), timestamp=timestamper(kit).stamp_digest)
    b_b = kit.sign(sample_pdf())
    time.sleep(2.1)  # beyond pyHanko's one-second time tolerance between time-stamp and revocation
    with kit.runtime.session_scope() as session:
        lifecycle.revoke_seal(session, kit.context, kit.seal_id, reason="key_compromise")
    verifier = kit.verifier()
    assert verifier.verify(b_t).verdict == PASSED
    report = verifier.verify(b_b)
    assert report.verdict == INDETERMINATE
    assert report.sub_indication == "REVOKED_NO_POE"
    assert report.signatures[0].revocation == "revoked"


def test_seal_revoked_before_the_time_stamp_fails(kit: SealKit) -> None:
    with kit.runtime.session_scope() as session:
        revoked_at = lifecycle.get_seal_or_raise(session, kit.seal_id)
        serial = revoked_at.certificate_serial
        pki.revoke(session, kit.runtime.master_keys, serial, reason=x509.ReasonFlags.key_compromise)
    # The seal row is still active, so the hub would sign: the verifier must still refuse the result.
    sealed = kit.sign(sample_pdf(), timestamp=timestamper(kit).stamp_digest)
    report = kit.verifier().verify(sealed)
    assert report.verdict == FAILED
    assert report.sub_indication == "REVOKED"


def test_untrusted_root_is_not_passed(runtime: Runtime, kit: SealKit) -> None:
    sealed = kit.sign(sample_pdf())
    stranger = ec.generate_private_key(ec.SECP256R1())
    other_root = x509_pki.make_root(stranger, organization="another hub", now=utcnow())
    verifier = Verifier(TrustSettings(roots=(other_root.public_bytes(serialization.Encoding.DER),)))
    report = verifier.verify(sealed)
    assert report.verdict == INDETERMINATE
    assert report.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    # Cross-domain (跨域验签): trusting the other hub's root as well makes it pass.
    trust = kit.trust()
    roots = (*trust.roots, other_root.public_bytes(serialization.Encoding.DER))
    assert Verifier(TrustSettings(roots, trust.crls, trust.other_certs)).verify(sealed).verdict == PASSED


def test_expired_seal_certificate_is_not_passed_but_b_t_made_in_time_is(runtime: Runtime) -> None:
    kit = make_kit(runtime, valid_for=timedelta(seconds=3))
    b_b = kit.sign(sample_pdf())
    b_t = kit.sign(sample_pdf(), timestamp=timestamper(kit).stamp_digest)
    time.sleep(4.5)  # the seal certificate has now expired (pyHanko allows one second of tolerance)
    verifier = kit.verifier()
    report = verifier.verify(b_b)
    assert report.verdict == INDETERMINATE
    assert report.sub_indication in {"OUT_OF_BOUNDS_NO_POE", "OUT_OF_BOUNDS_NOT_REVOKED", "EXPIRED"}
    assert verifier.verify(b_t).verdict == PASSED  # the time-stamp proves it was sealed while valid


def test_b_lta_augmentation_adds_dss_and_a_document_time_stamp(kit: SealKit, tmp_path: Path) -> None:
    stamper = timestamper(kit)
    sealed = kit.sign(sample_pdf(), timestamp=stamper.stamp_digest)
    lta = ltv.augment_to_lta(sealed, kit.trust(), stamper)
    with pikepdf.open(io.BytesIO(lta)) as pdf:
        assert "/DSS" in pdf.Root
        assert len(pdf.Root.DSS.CRLs) >= 1
    report = kit.verifier().verify(lta)
    assert report.verdict == PASSED, report.detail
    seal_report = report.signatures[0]
    assert seal_report.modifications_after == "lta_updates"
    assert any(s.sub_filter == "/ETSI.RFC3161" for s in report.signatures)
    assert qpdf_check(write(tmp_path, "lta.pdf", lta)).returncode == 0


# ------------------------------------------------------------------- cross-domain verification, 跨域验签


def foreign_hub_seal(tmp_path: Path) -> tuple[PreparedSeal, bytes, tuple[bytes, ...]]:
    """Another hub's PKI and seal, entirely outside this hub's database: (prepared seal, root DER, CRLs)."""
    now = utcnow()
    root_key, issuing_key, seal_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    org = "邻江市大数据中心"
    root = x509_pki.make_root(root_key, organization=org, now=now)
    issuing = x509_pki.make_issuing(
        issuing_key, root_key=root_key, root=root, organization=org, crl_url="http://hub.other.example/root.crl",
        now=now,
    )  # fmt: skip
    cert = x509_pki.make_seal_certificate(
        seal_key.public_key(), issuing_key=issuing_key, issuing=issuing, department_name="邻江市市场监督管理局",
        department_code=random_uscc(), seal_name="电子证照专用章", crl_url="http://hub.other.example/issuing.crl",
        not_before=now - timedelta(minutes=5), not_after=now + timedelta(days=365),
    )  # fmt: skip
    crls = tuple(
        x509_pki.make_crl(key, ca, [], number=1, now=now).public_bytes(serialization.Encoding.DER)
        for key, ca in ((root_key, root), (issuing_key, issuing))
    )
    prepared = PreparedSeal.build(
        sign_digest=lambda digest: seal_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
        certificate=cert,
        chain=[issuing],
        bitmap=bitmap_for_pdf(generate_seal_image("邻江市市场监督管理局", seal_name="电子证照专用章")),
    )
    (tmp_path / "other-hub-root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return prepared, root.public_bytes(serialization.Encoding.DER), crls


def test_other_hubs_seal_verifies_when_its_root_is_trusted_and_its_revocation_data_travels(
    kit: SealKit, tmp_path: Path, make_settings: Any, make_runtime: Any
) -> None:
    prepared, other_root, other_crls = foreign_hub_seal(tmp_path)
    stamper = timestamper(kit)
    b_t = pades.seal_pdf(sample_pdf(), prepared, rect=SEAL_RECT.rect, timestamp=stamper.stamp_digest)
    ours = kit.trust()
    # The other hub makes it B-LTA: its CRLs go into the document's DSS.
    both = TrustSettings((*ours.roots, other_root), ours.crls + other_crls, ours.other_certs)
    lta = ltv.augment_to_lta(b_t, both, stamper)

    assert kit.verifier().verify(lta).sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"  # root not in our trust list
    trusting = Verifier(TrustSettings((*ours.roots, other_root), ours.crls, ours.other_certs))
    assert trusting.verify(lta).verdict == PASSED  # revocation data from the DSS
    report = trusting.verify(b_t)  # trusted root, but no CRL of the other hub at hand: cannot decide
    assert report.verdict == INDETERMINATE

    # The same through the API, with the trust list configured as HUB_TRUSTED_ROOTS_FILE.
    runtime = make_runtime(make_settings(trusted_roots_file=tmp_path / "other-hub-root.pem"))
    with TestClient(create_app(runtime), raise_server_exceptions=False) as other:
        body = other.post("/v1/verify/file", files={"file": ("x.pdf", lta, "application/pdf")}).json()
    assert body["verdict"] == PASSED, body["detail"]
    assert body["signatures"][0]["signer"]["organization"] == "邻江市市场监督管理局"


def test_seal_key_in_a_pkcs11_token_seals_through_the_same_interface(
    softhsm: Path, make_settings: Any, make_runtime: Any, tmp_path: Path
) -> None:
    """The key is generated on SoftHSM2 and never leaves it; the sealed file validates like any other."""
    runtime = make_runtime(make_settings(seal_keystore="pkcs11", pkcs11_pin=PIN, pkcs11_token_label=TOKEN))
    hsm_kit = make_kit(runtime)
    with runtime.session_scope() as session:
        assert session.get(SealKey, hsm_kit.seal(session).key_id).encrypted_private is None  # type: ignore[union-attr]
    sealed = hsm_kit.sign(sample_pdf(), timestamp=timestamper(hsm_kit).stamp_digest)
    assert hsm_kit.verifier().verify(sealed).verdict == PASSED
    [found] = pdfsig(write(tmp_path, "hsm.pdf", sealed), nss_store(tmp_path, hsm_kit.root_pem(tmp_path)))
    assert found["Certificate Validation"] == "Certificate is Trusted."


def test_b_lta_job_augments_a_stored_b_t_licence(kit: SealKit, tmp_path: Path) -> None:
    """The Celery task body, run eagerly: stored B-T in, stored B-LTA out, the input untouched."""
    app = Celery("licence-hub-test", set_as_current=False)
    hub.jobs.configure(app, Settings(broker_url="memory://"))
    task = app.task(name="seals.document.augment_lta")(hub.tasks.augment_lta.run)
    b_t = kit.sign(sample_pdf(), timestamp=timestamper(kit).stamp_digest)
    key = kit.runtime.storage.put(b_t)
    set_runtime(kit.runtime)
    try:
        lta_key = task.apply_async(args=[key]).get()
    finally:
        set_runtime(None)
        app.close()
    assert lta_key != key
    assert kit.runtime.storage.get(key) == b_t
    lta = kit.runtime.storage.get(lta_key)
    assert lta.startswith(b_t)  # an incremental update: the sealed revision is kept byte for byte
    assert kit.verifier().verify(lta).verdict == PASSED
    found = pdfsig(write(tmp_path, "lta.pdf", lta), nss_store(tmp_path, kit.root_pem(tmp_path)))
    assert found[0]["Signature Validation"] == "Signature is Valid."
    assert openssl_cms_verify(lta, kit.root_pem(tmp_path), tmp_path).returncode == 0


def test_a_revocation_that_rolls_back_leaves_the_seal_sealing(kit: SealKit) -> None:
    """disable_key stops the cached signer at once; if its transaction then rolls back, the seal still works."""
    first = kit.sign(sample_pdf("before"))
    with kit.runtime.session_scope() as session:
        seal = kit.seal(session)
        kit.context.keystore.disable_key(session, seal.key_id)
        session.rollback()  # the revocation failed after disabling the key (say, its audit entry was refused)
    again = kit.sign(sample_pdf("after a rolled-back revocation"))
    assert first.startswith(b"%PDF") and again.startswith(b"%PDF") and again != first
    with kit.runtime.session_scope() as session:  # a committed disable still stops it
        kit.context.keystore.disable_key(session, kit.seal(session).key_id)
    with pytest.raises(DomainError):
        kit.sign(sample_pdf("after the revocation committed"))
