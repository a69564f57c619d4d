"""Checks opening shares between envelope versions: base64url fields, the sender's key,
compact JWS headers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from broker._jose import split_compact
from broker.envelope._wire import ALG_SIG, HEADER_MEMBER, INNER_TYP, Limits, b64d, decode_header
from broker.errors import Reason, VerificationError
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory, SigningKeyRecord

__all__ = ["b64_field", "jws_header", "sender_key", "split_detached"]


def b64_field(text: str | bytes, what: str) -> bytes:
    try:
        return b64d(text)
    except ValueError as exc:
        raise VerificationError(Reason.MALFORMED, f"{what}: {exc}") from exc


def sender_key(header: RoutingHeader, directory: Directory, now: datetime) -> SigningKeyRecord:
    record = directory.snapshot.signing_key(header.sender_kid)
    if record is None:
        raise VerificationError(
            Reason.UNKNOWN_KEY, f"signing key {header.sender_kid} is not in the directory"
        )
    if record.agency != header.sender:
        raise VerificationError(
            Reason.HEADER_MISMATCH,
            f"header names sender {header.sender!r} but key {record.kid} is {record.agency!r}'s",
        )
    problem = record.problem(now=now, made_at=header.created_at)
    if problem is not None:
        raise VerificationError(Reason(problem[0]), problem[1])
    return record


def jws_header(text: str, kid: str, typ: str, limits: Limits) -> dict[str, Any]:
    header = decode_header(text, limits, f"{typ} header")
    allowed = {"alg", "kid", "typ", HEADER_MEMBER} if typ == INNER_TYP else {"alg", "kid", "typ"}
    if header.keys() != allowed:
        raise VerificationError(
            Reason.MALFORMED,
            f"{typ} header has members {sorted(header)}; expected {sorted(allowed)}",
        )
    if header.get("alg") != ALG_SIG or header.get("typ") != typ:
        raise VerificationError(
            Reason.BAD_SIGNATURE,
            f"{typ} must be alg={ALG_SIG}, typ={typ}; got alg={header.get('alg')!r}",
        )
    if header.get("kid") != kid:
        raise VerificationError(
            Reason.HEADER_MISMATCH,
            f"{typ} is signed with key {header.get('kid')!r}; the routing header says {kid}",
        )
    return header


def split_detached(text: str, what: str) -> tuple[bytes, bytes]:
    """The header and signature of a detached compact JWS (``header..signature``)."""
    try:
        header, body, signature = split_compact(text.encode("ascii"))
    except ValueError:
        body = b"-"
    if body:
        raise VerificationError(Reason.MALFORMED, f"{what} is not a detached JWS")
    return header, signature
