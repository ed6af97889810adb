"""Seal test kit: a department seal on the real hub PKI, sample PDFs, and the independent validators."""

from __future__ import annotations

import io
import re
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import factories
import pikepdf
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from hub.runtime import Runtime
from seals import lifecycle
from seals import service as pki
from seals.lifecycle import SealContext, SealOwner
from seals.models import Seal
from seals.sealing import Placement, PreparedSeals, seal_document
from seals.trust import trust_settings
from seals.verify import TrustSettings, Verifier

SEAL_RECT = Placement(rect=(380.0, 90.0, 500.0, 210.0))


def sample_pdf(text: str = "Business licence", pages: int = 1) -> bytes:
    """A small unsigned PDF with a classic xref table, like the renderer's output."""
    pdf = pikepdf.new()
    for n in range(pages):
        pdf.add_blank_page(page_size=(595, 842))
        page = pdf.pages[n]
        page.Contents = pdf.make_stream(f"BT /F1 24 Tf 100 700 Td ({text} {n + 1}) Tj ET".encode())
        page.Resources = pikepdf.Dictionary(
            Font=pikepdf.Dictionary(
                F1=pikepdf.Dictionary(
                    Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
                )
            )
        )
    buf = io.BytesIO()
    pdf.save(buf, object_stream_mode=pikepdf.ObjectStreamMode.disable, deterministic_id=True)
    return buf.getvalue()


@dataclass
class SealKit:
    """A committed department with an active licence seal, and everything needed to seal and verify."""

    runtime: Runtime
    context: SealContext
    cache: PreparedSeals
    owner: SealOwner
    seal_id: str

    def seal(self, session: Session) -> Seal:
        return lifecycle.get_seal_or_raise(session, self.seal_id)

    def sign(self, pdf: bytes, placement: Placement = SEAL_RECT, **kwargs: object) -> bytes:
        with self.runtime.session_scope() as session:
            return seal_document(
                session, self.context, self.cache, self.seal(session), pdf, placement=placement, **kwargs
            )  # type: ignore[arg-type]

    def trust(self) -> TrustSettings:
        with self.runtime.session_scope() as session:
            return trust_settings(session)

    def verifier(self) -> Verifier:
        return Verifier(self.trust())

    def root_pem(self, directory: Path) -> Path:
        with self.runtime.session_scope() as session:
            path = directory / "hub-root.pem"
            path.write_text(pki.roots_pem(session))
        return path


def make_kit(
    runtime: Runtime,
    *,
    name: str = "临江市市场监督管理局",
    image: bytes | None = None,
    valid_for: timedelta | None = None,
) -> SealKit:
    context = runtime.seal_context
    with runtime.session_scope() as session:
        dept = factories.department(session, name=name)
        owner = SealOwner(code=dept.code, name=dept.name, area_code=dept.area_code)
        seal = lifecycle.create_seal(
            session, context, owner=owner, name="电子证照专用章", kind="licence", image=image,
            valid_for=valid_for or pki.SEAL_VALIDITY,
        )  # fmt: skip
        seal_id = seal.id
    return SealKit(runtime, context, PreparedSeals(), owner, seal_id)


# ------------------------------------------------------------------------------ independent validators


def run(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), input=data, capture_output=True, check=False, timeout=60)


def nss_store(directory: Path, *pems: Path) -> str:
    """An NSS database for pdfsig holding ``pems`` as trusted CAs (the first) and intermediates."""
    db = directory / "nss"
    db.mkdir(exist_ok=True)
    assert run("certutil", "-N", "-d", f"sql:{db}", "--empty-password").returncode == 0
    for n, pem in enumerate(pems):
        trust = "CT,C,C" if n == 0 else ",,"
        done = run("certutil", "-A", "-n", f"ca{n}", "-t", trust, "-i", str(pem), "-d", f"sql:{db}")
        assert done.returncode == 0, done.stderr
    return f"sql:{db}"


def pdfsig(path: Path, nss: str) -> list[dict[str, str]]:
    """Pdfsig's findings per signature (it exits 0 even when a signature is bad, so read its text)."""
    # No -no-ocsp: poppler 22.12 then reports "Unknown issue" for every chain; our certificates carry
    # no OCSP URL, so nothing is fetched either way.
    done = run("pdfsig", "-nssdir", nss, str(path))
    text = done.stdout.decode()
    found = []
    for block in re.split(r"^Signature #\d+:", text, flags=re.MULTILINE)[1:]:
        fields = dict(re.findall(r"^[ \t]+- ([^:\n]+): (.*)$", block, flags=re.MULTILINE))
        flags = [line.strip("- ").strip() for line in block.splitlines() if "document signed" in line]
        fields["coverage"] = flags[0] if flags else ""
        found.append(fields)
    return found


def qpdf_check(path: Path) -> subprocess.CompletedProcess[bytes]:
    return run("qpdf", "--check", str(path))


def byte_ranges(pdf: bytes) -> list[tuple[list[int], bytes]]:
    """(/ByteRange, DER CMS) of every signature dictionary, read straight from the bytes."""
    found = []
    for match in re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf):
        numbers = [int(g) for g in match.groups()]
        hex_start = numbers[1]
        assert pdf[hex_start : hex_start + 1] == b"<"
        contents = bytes.fromhex(pdf[hex_start + 1 : numbers[2] - 1].decode())
        found.append((numbers, _der_prefix(contents)))
    return found


def _der_prefix(data: bytes) -> bytes:
    """The DER object at the start of ``data`` (the /Contents hex string is zero-padded)."""
    length = data[1]
    if length < 0x80:
        return data[: 2 + length]
    n = length & 0x7F
    return data[: 2 + n + int.from_bytes(data[2 : 2 + n], "big")]


def openssl_cms_verify(pdf: bytes, root_pem: Path, tmp: Path, index: int = 0) -> subprocess.CompletedProcess[bytes]:
    """``openssl cms -verify`` of signature ``index`` over exactly its signed byte ranges."""
    (a, b, c, d), cms = byte_ranges(pdf)[index]
    (tmp / "signed.bin").write_bytes(pdf[a : a + b] + pdf[c : c + d])
    (tmp / "sig.der").write_bytes(cms)
    return run(
        "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.der"),
        "-content", str(tmp / "signed.bin"), "-CAfile", str(root_pem), "-purpose", "any", "-out", "/dev/null",
    )  # fmt: skip


def certificate_pem(cert_der: bytes, path: Path) -> Path:
    path.write_bytes(x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM))
    return path
