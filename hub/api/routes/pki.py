"""Hub PKI publication: trust anchors, CA and TSA certificates, CRLs (public, cacheable)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from hub.api.deps import SessionDep
from seals import service as pki

router = APIRouter(prefix="/v1/pki", tags=["pki"])
PEM = "application/x-pem-file"
CERTIFICATE = "application/pkix-cert"  # DER, RFC 2585 §4.1
CRL = "application/pkix-crl"  # DER, RFC 2585 §4.2


@router.get("/roots.pem", response_class=Response, responses={200: {"content": {PEM: {}}}})
def roots(session: SessionDep) -> Response:
    """The hub's root CA certificate (PEM): install it to trust hub seals (pdfsig, openssl -CAfile)."""
    return Response(pki.roots_pem(session), media_type=PEM)


@router.get("/ca/{ca}.cer", response_class=Response, responses={200: {"content": {CERTIFICATE: {}}}})
def ca_certificate(ca: Literal["root", "issuing"], session: SessionDep) -> Response:
    """A CA certificate (DER, RFC 2585 §4.1)."""
    return Response(pki.get_ca_or_raise(session, ca).certificate, media_type=CERTIFICATE)


@router.get("/tsa.cer", response_class=Response, responses={200: {"content": {CERTIFICATE: {}}}})
def tsa_certificate(session: SessionDep) -> Response:
    """The hub TSA's certificate (DER, RFC 2585 §4.1), issued by the issuing CA; tokens also carry it."""
    return Response(pki.get_tsa_certificate_or_raise(session).certificate, media_type=CERTIFICATE)


@router.get("/crl/{ca}.crl", response_class=Response, responses={200: {"content": {CRL: {}}}})
def crl(ca: Literal["root", "issuing"], session: SessionDep) -> Response:
    """The CA's current CRL (DER, RFC 2585 §4.2).

    Re-signed at once on revocation, and by the periodic job once a day old (nextUpdate is a week
    ahead), so a GET never writes.
    """
    current = pki.get_ca_or_raise(session, ca)
    if current.crl is None:
        raise pki.CertificateAuthorityNotFound(f"the {ca} CA has not published a CRL yet; run `licence-hub init`")
    return Response(current.crl, media_type=CRL, headers={"Cache-Control": "public, max-age=3600"})
