"""Enrolment by request: an agency's keys are born and kept on its own machine.

The agency and the federation admin exchange two documents, each a compact JWS (RFC 7515)
over canonical JSON, read as strictly as directory records
(:func:`~broker.federation.records.open_signed`):

* the **enrolment request** (:mod:`~broker.federation.enrolment.request`), signed by the
  agency's new signing key: its id and name, its public signing and encryption JWKs, a
  PKCS#10 request for its Kafka client certificate and ``created_at``; a **rotation
  request** is one endorsed by the agency's current signing key as well;
* the **response bundle** (:mod:`~broker.federation.enrolment.bundle`), signed by the
  federation root: the agency's root-signed record, the rest of the directory, its
  certificate, the cluster CA certificate, the root public key and where Kafka is.

:func:`admit` is the admin's side (it verifies a request, signs the record, issues the
certificate from the CSR and writes the bundle, never seeing a private key);
:class:`AgencySite` is the agency's (it makes the keys and the request, and imports the
bundle after checking it is for the keys it made). Nothing proves possession of the X25519
encryption key, which cannot sign: the agency checks at import that its record lists the
key it holds (``docs/federation.md``, Enrolment by request).
"""

from broker.federation.enrolment._shared import Fingerprints
from broker.federation.enrolment.admit import Admission, admit
from broker.federation.enrolment.bundle import (
    BUNDLE_TYP,
    MAX_BUNDLE_BYTES,
    Bundle,
    BundleClaims,
    KafkaHint,
    read_bundle,
    sign_bundle,
)
from broker.federation.enrolment.request import (
    MAX_REQUEST_BYTES,
    REQUEST_MAX_AGE,
    REQUEST_TYP,
    ROTATION_TYP,
    EnrolmentRequest,
    RequestClaims,
    make_request,
    read_request,
)
from broker.federation.enrolment.site import AgencySite, Imported

__all__ = [
    "BUNDLE_TYP",
    "MAX_BUNDLE_BYTES",
    "MAX_REQUEST_BYTES",
    "REQUEST_MAX_AGE",
    "REQUEST_TYP",
    "ROTATION_TYP",
    "Admission",
    "AgencySite",
    "Bundle",
    "BundleClaims",
    "EnrolmentRequest",
    "Fingerprints",
    "Imported",
    "KafkaHint",
    "RequestClaims",
    "admit",
    "make_request",
    "read_bundle",
    "read_request",
    "sign_bundle",
]
