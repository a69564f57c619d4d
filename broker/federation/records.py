"""Directory records: what the federation root says about an agency, signed by the root.

One :class:`AgencyRecord` per agency holds everything a counterpart needs to trust it:
its id and name, its public signing and encryption keys (each a JWK with its validity),
and its grants (the category-and-jurisdiction pairs it may receive). Keys and grants live
in one record so that one signature, one ``revision`` and one log-compacted Kafka record
keyed by the agency id describe the agency completely: a reader never sees
new keys with old grants.

The wire form is a compact JWS (RFC 7515) signed by the root's Ed25519 key::

    BASE64URL({"alg":"Ed25519","kid":<root kid>,"typ":"fusionbus-directory+jws"})
    . BASE64URL(canonical JSON of the record: orjson, sorted keys, no whitespace)
    . BASE64URL(Ed25519 signature)

:func:`verify_record` accepts exactly that and nothing else: the header must have exactly
those three members, the payload must be the canonical serialisation of a valid record
(so a record has one signed form, which readers can hash and compare), and every failure
is a :class:`~broker.errors.ConfigError` naming the source and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from broker._crypto import EncryptionKey, SigningKey, VerifyKey
from broker._jose import b64d, sign_compact, signing_input, split_compact
from broker.errors import ConfigError
from broker.keys import kid_of, public_jwk, public_key_from_jwk
from schemas import AgencyId, UtcDatetime, normalise_jurisdiction
from schemas.jurisdiction import covers
from schemas.vocab import is_registered_category

__all__ = [
    "FORMAT_VERSION",
    "JWS_TYP",
    "MAX_RECORD_BYTES",
    "AgencyName",
    "AgencyRecord",
    "Grant",
    "KeyEntry",
    "PublicJwk",
    "canonical_json",
    "sign_record",
    "verify_record",
]

FORMAT_VERSION: Literal[1] = 1
"""The record format; a reader refuses any other (the directory fails closed)."""

JWS_TYP = "fusionbus-directory+jws"
"""Keeps a directory signature from being mistaken for an envelope signature and back."""

MAX_RECORD_BYTES = 65_536
"""No honest record comes near this; anything larger is refused before parsing."""

_ALG = "Ed25519"
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


_M = TypeVar("_M", bound=BaseModel)


class PublicJwk(_Frozen):
    """A public OKP JWK as :func:`broker.keys.public_jwk` writes it; ``kid`` is checked."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519", "X25519"]
    x: str = Field(min_length=1, max_length=64)
    kid: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _usable(self) -> Self:
        try:
            public_key_from_jwk(self.model_dump())
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @classmethod
    def of(cls, key: VerifyKey | EncryptionKey) -> PublicJwk:
        return cls.model_validate(public_jwk(key))

    def key(self) -> VerifyKey | EncryptionKey:
        return public_key_from_jwk(self.model_dump())


class KeyEntry(_Frozen):
    """One public key of an agency and its lifecycle (what a key record of the snapshot holds)."""

    jwk: PublicJwk
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    revoked_at: UtcDatetime | None = None

    @property
    def kid(self) -> str:
        return self.jwk.kid

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.valid_until <= self.valid_from:
            raise ValueError(
                f"key {self.jwk.kid}: valid_until {self.valid_until.isoformat()} must be "
                f"after valid_from {self.valid_from.isoformat()}"
            )
        return self

    def usable_at(self, now: datetime) -> bool:
        """Valid at ``now`` and not revoked by then."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.valid_from <= now < self.valid_until


def _category(value: str) -> str:
    if not is_registered_category(value):
        raise ValueError(
            f"category {value!r} is not registered: expected a registered trafficking "
            "category code such as narcotics or human_trafficking"
        )
    return value


def _jurisdiction(value: str) -> str:
    return normalise_jurisdiction(value)


class Grant(_Frozen):
    """The agency may receive reports of ``category`` about ``jurisdiction`` and below."""

    category: Annotated[str, Field(max_length=40), AfterValidator(_category)]
    jurisdiction: Annotated[str, Field(max_length=16), AfterValidator(_jurisdiction)]

    def covers(self, category: str, jurisdiction: str) -> bool:
        return self.category == category and covers(self.jurisdiction, jurisdiction)

    def __str__(self) -> str:
        return f"{self.category}@{self.jurisdiction}"


def _sorted_grants(grants: Iterable[Grant]) -> tuple[Grant, ...]:
    return tuple(sorted(set(grants), key=lambda g: (g.category, g.jurisdiction)))


AgencyName = Annotated[
    str,
    Field(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+$"
    ),
]
"""An agency's full name: 1 to 200 characters, no control or bidi-override characters."""


class AgencyRecord(_Frozen):
    """Everything the root says about one agency, at one ``revision``.

    ``revision`` starts at 1 and grows by one with every re-signing; a reader refuses a
    record whose revision is not above the highest it has seen for the agency (rollback
    protection). The *last* key of each list is the current one; earlier ones
    stay listed (with ``valid_until``/``revoked_at``) so old messages still verify.
    """

    v: Literal[1] = FORMAT_VERSION
    kind: Literal["agency"] = "agency"
    id: AgencyId
    name: AgencyName
    revision: int = Field(ge=1, le=2**53)
    issued_at: UtcDatetime
    signing_keys: tuple[KeyEntry, ...] = Field(min_length=1, max_length=16)
    encryption_keys: tuple[KeyEntry, ...] = Field(min_length=1, max_length=16)
    grants: tuple[Grant, ...] = Field(default=(), max_length=1_000)

    @field_validator("grants")
    @classmethod
    def _canonical_grants(cls, grants: tuple[Grant, ...]) -> tuple[Grant, ...]:
        return _sorted_grants(grants)

    @model_validator(mode="after")
    def _key_kinds(self) -> Self:
        for usage, entries, crv in (
            ("signing", self.signing_keys, "Ed25519"),
            ("encryption", self.encryption_keys, "X25519"),
        ):
            kids = [e.kid for e in entries]
            if len(set(kids)) != len(kids):
                raise ValueError(f"{usage}_keys lists a key twice")
            wrong = [e.kid for e in entries if e.jwk.crv != crv]
            if wrong:
                raise ValueError(f"{usage}_keys must be {crv} keys; {wrong[0]} is not")
        return self

    @property
    def signing_kid(self) -> str:
        """The kid of the current (last listed) signing key."""
        return self.signing_keys[-1].kid

    @property
    def encryption_kid(self) -> str:
        """The kid of the current (last listed) encryption key."""
        return self.encryption_keys[-1].kid

    def encryption_key_at(self, now: datetime) -> KeyEntry | None:
        """The newest encryption key usable at ``now``, or ``None``."""
        usable = [e for e in self.encryption_keys if e.usable_at(now)]
        return usable[-1] if usable else None

    def entitled(self, category: str, jurisdiction: str) -> bool:
        """Whether a grant covers reports of ``category`` about ``jurisdiction``."""
        return any(g.covers(category, jurisdiction) for g in self.grants)

    def with_grants(self, grants: Iterable[Grant], *, now: datetime) -> AgencyRecord:
        """This record with ``grants`` added; itself if nothing is new."""
        merged = _sorted_grants((*self.grants, *grants))
        if merged == self.grants:
            return self
        return AgencyRecord.model_validate(
            self.model_dump() | {"grants": merged, "revision": self.revision + 1, "issued_at": now}
        )

    def without_grants(self, grants: Iterable[Grant], *, now: datetime) -> AgencyRecord:
        """This record with exactly ``grants`` removed; itself if it holds none of them."""
        removed = set(grants)
        kept = tuple(g for g in self.grants if g not in removed)
        if kept == self.grants:
            return self
        return AgencyRecord.model_validate(
            self.model_dump() | {"grants": kept, "revision": self.revision + 1, "issued_at": now}
        )


def validation_problems(exc: ValidationError) -> str:
    """One line naming each invalid field and why (values are not repeated)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {_message(e['msg'])}"
        for e in exc.errors()
    )


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def canonical_json(record: BaseModel) -> bytes:
    """The one byte string a record (or any signed document of the federation) is signed
    as: its JSON with sorted keys and no whitespace."""
    return orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def _b64d(text: str, what: str, source: str) -> bytes:
    try:
        return b64d(text)
    except ValueError:
        raise ConfigError(f"{source}: the JWS {what} is not canonical base64url") from None


def sign_record(record: AgencyRecord, root: SigningKey) -> bytes:
    """The compact JWS of ``record`` signed by the federation ``root`` key."""
    return sign_document(record, root, typ=JWS_TYP)


def sign_document(document: BaseModel, key: SigningKey, *, typ: str) -> bytes:
    """``document``'s canonical JSON as a compact JWS signed by ``key``, with the header
    ``{"alg":"Ed25519","kid":<kid of key>,"typ":typ}``."""
    header = {"alg": _ALG, "kid": kid_of(key), "typ": typ}
    return sign_compact(header, canonical_json(document), key, sort_keys=True)


def _parse_json(raw: bytes, what: str, source: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{source}: the JWS {what} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: the JWS {what} is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class SignedBy:
    """What a compact JWS must be to be opened: its ``typ``, what it is (``what``, for
    messages), and who signs it: ``key(kid, payload)`` returns the key to verify with, or
    raises :class:`ConfigError` for a ``kid`` that may not sign it."""

    typ: str
    what: str
    signer: str
    role: str
    key: Callable[[str, bytes], VerifyKey]
    limit: int = MAX_RECORD_BYTES


def open_signed(token: bytes, signed_by: SignedBy, *, source: str) -> bytes:
    """The payload of ``token`` if it is a compact JWS whose header is exactly ``alg``
    Ed25519, ``kid`` and ``typ``, and whose signature verifies by the key
    ``signed_by.key`` returns; else ConfigError naming ``source`` and what is wrong."""
    what = signed_by.what
    if len(token) > signed_by.limit:
        raise ConfigError(f"{source}: over {signed_by.limit} bytes; no {what} is that large")
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a compact JWS (non-ASCII bytes)") from None
    try:
        parts = [part.decode("ascii") for part in split_compact(text.encode("ascii"))]
    except ValueError:
        parts = []
    if len(parts) != 3 or not all(parts):
        raise ConfigError(
            f"{source}: not a signed {what}; expected a compact JWS "
            f"(header.payload.signature) signed by {signed_by.signer}"
        )
    header = _parse_json(_b64d(parts[0], "header", source), "header", source)
    if (
        set(header) != _HEADER_MEMBERS
        or header["alg"] != _ALG
        or header["typ"] != signed_by.typ
        or not isinstance(header["kid"], str)
    ):
        raise ConfigError(
            f"{source}: unexpected JWS header {sorted(header)!r}; expected exactly "
            f'alg "{_ALG}", kid and typ "{signed_by.typ}"'
        )
    payload = _b64d(parts[1], "payload", source)
    try:
        key = signed_by.key(header["kid"], payload)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    signature = _b64d(parts[2], "signature", source)
    if not key.verify(signature, signing_input(parts[0].encode(), parts[1].encode())):
        raise ConfigError(
            f"{source}: the {signed_by.role} signature does not verify (the {what} was "
            "altered or signed by another key); refusing it"
        )
    return payload


def parse_signed(payload: bytes, model: type[_M], *, what: str, source: str) -> _M:
    """``payload`` (a verified JWS payload) as ``model``, if it is the canonical JSON of a
    valid one; else ConfigError naming each invalid field."""
    try:
        document = model.model_validate(_parse_json(payload, "payload", source))
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: signed but not a valid {what}: {validation_problems(exc)}"
        ) from None
    if canonical_json(document) != payload:
        noun = what.rsplit(" ", 1)[-1]
        raise ConfigError(f"{source}: the signed payload is not the {noun}'s canonical JSON")
    return document


def root_signed(root: VerifyKey, *, typ: str = JWS_TYP, what: str = "directory record") -> SignedBy:
    """A JWS of ``typ`` the federation ``root`` must have signed."""
    root_kid = kid_of(root)

    def key(kid: str, _payload: bytes) -> VerifyKey:
        if kid != root_kid:
            raise ConfigError(
                f"signed by key {kid!r}, not by the federation root {root_kid}; refusing it"
            )
        return root

    return SignedBy(typ=typ, what=what, signer="the federation root", role="root", key=key)


def verify_record(token: bytes, root: VerifyKey, *, source: str) -> AgencyRecord:
    """The record in ``token`` if the federation ``root`` signed it; else ConfigError.

    ``source`` names where the token came from (a file, later a topic and offset) in
    every error message.
    """
    payload = open_signed(token, root_signed(root), source=source)
    return parse_signed(payload, AgencyRecord, what="agency record", source=source)
