"""Seal benchmark: the fast PAdES path against pyHanko's ``sign_pdf``, same PDFs, key material and image.

Run through ``python -m bench --only seal`` (``--quick`` seals 200 documents instead of 2,000). Both sides
sign with a P-256 key already in memory and the same seal image; pyHanko gets the signer object built
once (its fastest documented use). Every fast-path output is then checked by pyHanko's validator (our
seals.verify, TOTAL-PASSED) and by pdfsig with an NSS store holding the hub root. The B-LTA augmentation
(pyHanko: DSS with the CRLs, then a document time-stamp from the hub TSA) is timed on a sample.
"""

from __future__ import annotations

import base64
import io
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bench.audit_common import percentile
from bench.scenarios import log
from hub.bootstrap import initialise
from hub.clock import utcnow
from hub.codes import make_uscc
from hub.db import begin_read_only
from hub.identity import service as identity
from hub.runtime import Runtime, build_runtime
from hub.settings import Settings
from seals import image as seal_image
from seals import lifecycle, ltv
from seals import service as pki
from seals.lifecycle import SealContext, SealOwner
from seals.sealing import Placement, PreparedSeals, seal_document
from seals.trust import trust_settings
from seals.verify import PASSED, TrustSettings, Verifier

DOCUMENTS = 2000
QUICK_DOCUMENTS = 200
LTA_SAMPLE = 50
QUICK_LTA_SAMPLE = 10
TARGET_RATIO = 20.0
HEADING = "# licence-hub seal benchmark"
DEPARTMENT = "临江市市场监督管理局"
SEAL_NAME = "电子证照专用章"


@dataclass
class Fixture:
    runtime: Runtime
    context: SealContext
    seal_id: str
    placement: Placement
    documents: list[bytes]
    render_ms: float
    renderer: str


def _render(n: int) -> tuple[list[bytes], Placement, float, str]:
    """``n`` distinct licences from the hub's renderer (or the sample builder if it is missing)."""
    from licences import render  # noqa: PLC0415 - optional until the renderer lands

    started = time.perf_counter()
    docs: list[bytes] = []
    placement = Placement(rect=(380.0, 90.0, 500.0, 210.0))
    for i in range(n):
        rendered = render.render_licence(render.sample_business_licence(i), template=render.BUSINESS_LICENCE_TEMPLATE)
        docs.append(rendered.pdf)
        placement = Placement(rect=rendered.seal_rect, page_index=rendered.page_index)
    return docs, placement, 1000 * (time.perf_counter() - started) / n, "licences.render.render_licence (营业执照)"


@contextmanager
def fixture(documents: int) -> Iterator[Fixture]:
    with tempfile.TemporaryDirectory(prefix="licencehub-seal-bench-") as tmp:
        settings = Settings(
            env="test",
            data_dir=Path(tmp) / "var",
            database_url=f"sqlite:///{Path(tmp) / 'hub.db'}",
            master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
            public_url="http://127.0.0.1:1",
            scheduler_enabled=False,
        )
        runtime = build_runtime(settings)
        initialise(runtime)
        context = SealContext(runtime.seal_keystore, runtime.master_keys, runtime.storage, settings.public_url)
        with runtime.session_scope() as session:
            code = make_uscc("1", "1", "330100", "MB0000AB")
            dept = identity.create_department(
                session, code=code, name=DEPARTMENT, level="municipal", area_code="330100"
            )
            owner = SealOwner(dept.code, dept.name, dept.area_code)
            seal_id = lifecycle.create_seal(session, context, owner=owner, name=SEAL_NAME, kind="licence").id
        log(f"seal: rendering {documents} licences")
        docs, placement, render_ms, renderer = _render(documents)
        try:
            yield Fixture(runtime, context, seal_id, placement, docs, render_ms, renderer)
        finally:
            runtime.close()


def _timed(documents: list[bytes], sign: Callable[[bytes], bytes]) -> tuple[list[bytes], dict[str, Any]]:
    outputs, latencies = [], []
    started = time.perf_counter()
    for doc in documents:
        began = time.perf_counter()
        outputs.append(sign(doc))
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return outputs, {
        "documents": len(documents),
        "elapsed_s": round(elapsed, 3),
        "docs_per_s": round(len(documents) / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 3),
        "p99_ms": round(1000 * percentile(latencies, 99), 3),
    }


def _pyhanko_signer(fx: Fixture) -> tuple[signers.SimpleSigner, bytes]:
    """A second seal key certified by the same issuing CA, loaded once into pyHanko's SimpleSigner."""
    key = ec.generate_private_key(ec.SECP256R1())
    with fx.runtime.session_scope() as session:
        issuing = pki.get_ca_or_raise(session, pki.ISSUING).certificate
        _, cert = pki.issue_seal_certificate(
            session, fx.runtime.master_keys, department_code=make_uscc("1", "1", "330100", "MB0000AB"),
            department_name=DEPARTMENT, seal_name=SEAL_NAME, public_key=key.public_key(),
            public_url=fx.runtime.settings.public_url, valid_for=timedelta(days=30),
        )  # fmt: skip
        seal = lifecycle.get_seal_or_raise(session, fx.seal_id)
        png = fx.runtime.storage.get(seal.image_sha256)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
        cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(issuing)]),  # type: ignore[no-untyped-call]
    )
    return signer, png


def _pyhanko_sign(fx: Fixture, *, visible: bool) -> Callable[[bytes], bytes]:
    """The PdfSigner of pyHanko with the seal image in the widget (like ours), or invisible (its cheapest path)."""
    from PIL import Image  # noqa: PLC0415

    signer, png = _pyhanko_signer(fx)
    style = StaticStampStyle(background=PdfImage(Image.open(io.BytesIO(png))), border_width=0) if visible else None
    x1, y1, x2, y2 = fx.placement.rect
    box = (int(x1), int(y1), int(x2), int(y2)) if visible else None

    def sign(doc: bytes) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(doc))
        meta = signers.PdfSignatureMetadata(field_name="Seal", subfilter=SigSeedSubFilter.PADES)
        spec = fields.SigFieldSpec("Seal", on_page=fx.placement.page_index, box=box)
        out = io.BytesIO()
        signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=spec).sign_pdf(writer, output=out)
        return out.getvalue()

    return sign


def _fast_sign(fx: Fixture, *, timestamped: bool) -> Callable[[bytes], bytes]:
    """The issuance path's sealing step, warmed up once (per-seal material built) like a live process."""
    cache = PreparedSeals()
    with fx.runtime.session_factory() as session:
        begin_read_only(session)  # no SQLite write lock: sealing reads the seal, its key and certificates
        seal = lifecycle.get_seal_or_raise(session, fx.seal_id)
        stamper = pki.get_timestamper(session, fx.runtime.master_keys) if timestamped else None
        timestamp = stamper.stamp_digest if stamper is not None else None
        seal_document(session, fx.context, cache, seal, fx.documents[0], placement=fx.placement, timestamp=timestamp)

        def sign(doc: bytes) -> bytes:
            return seal_document(session, fx.context, cache, seal, doc, placement=fx.placement, timestamp=timestamp)

    return sign


def _trust(fx: Fixture) -> TrustSettings:
    with fx.runtime.session_scope() as session:
        return trust_settings(session)


def _pdfsig_all(outputs: list[bytes], root_pem: str, tmp: Path) -> dict[str, int]:
    nss = tmp / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    (tmp / "root.pem").write_text(root_pem)
    add = ["certutil", "-A", "-n", "hub", "-t", "CT,C,C", "-i", str(tmp / "root.pem"), "-d", f"sql:{nss}"]
    subprocess.run(add, check=True, capture_output=True)

    def check(item: tuple[int, bytes]) -> bool:
        path = tmp / f"doc{item[0]}.pdf"
        path.write_bytes(item[1])
        done = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(path)], capture_output=True, check=False)
        path.unlink()
        text = done.stdout.decode()
        return "Signature is Valid." in text and "Certificate is Trusted." in text

    with ThreadPoolExecutor(max_workers=2) as pool:
        ok = sum(pool.map(check, enumerate(outputs)))
    return {"checked": len(outputs), "valid_and_trusted": ok}


def _validate(fx: Fixture, outputs: list[bytes], label: str) -> dict[str, Any]:
    log(f"seal: validating {len(outputs)} {label} outputs (pyHanko via seals.verify, then pdfsig)")
    verifier = Verifier(_trust(fx))
    started = time.perf_counter()
    passed = sum(verifier.verify(doc).verdict == PASSED for doc in outputs)
    pyhanko_s = time.perf_counter() - started
    with fx.runtime.session_scope() as session:
        root_pem = pki.roots_pem(session)
    with tempfile.TemporaryDirectory(prefix="licencehub-pdfsig-") as tmp:
        pdfsig = _pdfsig_all(outputs, root_pem, Path(tmp))
    return {
        "pyhanko_total_passed": passed,
        "pyhanko_checked": len(outputs),
        "pyhanko_validation_ms_per_doc": round(1000 * pyhanko_s / len(outputs), 2),
        "pdfsig": pdfsig,
        "all_valid": passed == len(outputs) and pdfsig["valid_and_trusted"] == len(outputs),
    }


def _lta(fx: Fixture, sealed: list[bytes]) -> dict[str, Any]:
    with fx.runtime.session_factory() as session:
        begin_read_only(session)
        stamper = pki.get_timestamper(session, fx.runtime.master_keys)
    trust = _trust(fx)
    outputs, timing = _timed(sealed, lambda doc: ltv.augment_to_lta(doc, trust, stamper))
    verifier = Verifier(trust)
    timing["total_passed"] = sum(verifier.verify(doc).verdict == PASSED for doc in outputs)
    return timing


def run(*, quick: bool) -> dict[str, Any]:
    documents = QUICK_DOCUMENTS if quick else DOCUMENTS
    with fixture(documents) as fx:
        sizes = sorted(len(d) for d in fx.documents)
        log(f"seal: fast path B-B over {documents} documents")
        fast_bb, fast = _timed(fx.documents, _fast_sign(fx, timestamped=False))
        log(f"seal: fast path B-T over {documents} documents (in-process hub TSA)")
        fast_bt, fast_t = _timed(fx.documents, _fast_sign(fx, timestamped=True))
        log(f"seal: pyHanko sign_pdf over {documents} documents, visible seal image")
        _, slow = _timed(fx.documents, _pyhanko_sign(fx, visible=True))
        log(f"seal: pyHanko sign_pdf over {documents} documents, invisible signature")
        _, invisible = _timed(fx.documents, _pyhanko_sign(fx, visible=False))
        baseline = max(slow["docs_per_s"], invisible["docs_per_s"])  # judge against pyHanko's faster path
        summary: dict[str, Any] = {
            "date": utcnow().isoformat(timespec="seconds"),
            "documents": documents,
            "renderer": fx.renderer,
            "render_ms_per_doc": round(fx.render_ms, 2),
            "input_bytes_median": sizes[len(sizes) // 2],
            "fast_b_b": fast,
            "fast_b_t": fast_t,
            "pyhanko_b_b": slow,
            "pyhanko_b_b_invisible": invisible,
            "baseline_docs_per_s": baseline,
            "ratio_b_b": round(fast["docs_per_s"] / baseline, 1),
            "ratio_b_b_same_visible_seal": round(fast["docs_per_s"] / slow["docs_per_s"], 1),
            "ratio_b_t_vs_pyhanko_b_b": round(fast_t["docs_per_s"] / baseline, 1),
            "target_ratio": TARGET_RATIO,
        }
        summary["target_met"] = summary["ratio_b_b"] >= TARGET_RATIO
        summary["validation_b_b"] = _validate(fx, fast_bb, "B-B")
        summary["validation_b_t"] = _validate(fx, fast_bt, "B-T")
        sample = QUICK_LTA_SAMPLE if quick else LTA_SAMPLE
        log(f"seal: B-LTA augmentation of {sample} B-T documents (pyHanko)")
        summary["lta"] = _lta(fx, fast_bt[:sample])
        summary["image_bytes"] = len(seal_image.generate_seal_image(DEPARTMENT, seal_name=SEAL_NAME))
        summary["failures"] = int(not summary["validation_b_b"]["all_valid"]) + int(
            not summary["validation_b_t"]["all_valid"]
        )
    return summary


def render(seal: dict[str, Any]) -> str:
    """The Markdown section for bench/RESULTS.md."""
    fast, fast_t, slow, lta = seal["fast_b_b"], seal["fast_b_t"], seal["pyhanko_b_b"], seal["lta"]
    invisible, baseline = seal["pyhanko_b_b_invisible"], seal["baseline_docs_per_s"]
    lta_ratio = round(lta["docs_per_s"] / baseline, 2)
    table = [
        ("pyHanko `PdfSigner.sign_pdf`, B-B, same visible seal image", slow, round(slow["docs_per_s"] / baseline, 2)),
        ("pyHanko `PdfSigner.sign_pdf`, B-B, invisible", invisible, round(invisible["docs_per_s"] / baseline, 2)),
        ("fast path B-B", fast, seal["ratio_b_b"]),
        ("fast path B-T (in-process hub TSA)", fast_t, seal["ratio_b_t_vs_pyhanko_b_b"]),
        ("B-LTA augmentation (pyHanko: DSS + document time-stamp)", lta, lta_ratio),
    ]
    rows = ["| path | docs/s | × pyHanko | p50 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: |"]
    rows += [f"| {name} | {r['docs_per_s']} | {ratio} | {r['p50_ms']} | {r['p99_ms']} |" for name, r, ratio in table]
    met = "met" if seal["target_met"] else "not met"
    intro = (
        f"{seal['date']}: {seal['documents']} licences from {seal['renderer']} (median {seal['input_bytes_median']} "
        f"bytes, {seal['render_ms_per_doc']} ms each to render), one P-256 key and seal image. "
        f"Ratios are to pyHanko's faster configuration measured in the same run (key loaded once, one "
        f"`SimpleSigner` for all documents). Target ≥ {seal['target_ratio']}× pyHanko: **{met}**."
    )
    checks = [
        f"- Every {level} output checked: pyHanko {v['pyhanko_total_passed']}/{v['pyhanko_checked']} TOTAL-PASSED, "
        f"pdfsig {v['pdfsig']['valid_and_trusted']}/{v['pdfsig']['checked']} valid and trusted."
        for level, v in (("B-B", seal["validation_b_b"]), ("B-T", seal["validation_b_t"]))
    ]
    lta_line = f"- B-LTA sample: {lta['total_passed']}/{lta['documents']} TOTAL-PASSED after augmentation."
    return "\n".join([HEADING, "", intro, "", *rows, "", *checks, lta_line, ""])
