"""The trust anchor's judgement: is a participant's self-description compliant?

The anchor (the role the Gaia-X Digital Clearing House plays) checks each credential's
signature against its issuer's did:web key, its SHACL shapes and the federation's rules, then
issues a compliance credential that lists the sha-256 of every credential it checked and points
to the anchor's revocation list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio.to_thread

from rhenus import __version__
from rhenus.core.keys import Keyring
from rhenus.trust import credentials, statuslist
from rhenus.trust.compliance import participant_rules, shacl_errors
from rhenus.trust.credentials import CredentialError, VerifiedCredential
from rhenus.trust.did import DidResolver

COMPLIANCE_VALIDITY = timedelta(days=90)
STATUS_LIST_PATH = "/api/v1/trust/status-list"


@dataclass(frozen=True)
class Assessment:
    did: str
    legal_name: str
    country: str
    labels: list[str]
    checked: list[VerifiedCredential]


def _subject_types(vc: VerifiedCredential) -> list[str]:
    value = vc.subject.get("type", [])
    return [value] if isinstance(value, str) else list(value)


async def assess(tokens: list[str], *, sender: str, resolver: DidResolver) -> Assessment:
    """Check a participant's credentials; :class:`CredentialError` listing every problem."""
    if not tokens:
        raise CredentialError("send at least your gx:LegalParticipant credential")
    checked = [await credentials.verify(token, resolver) for token in tokens]
    for vc in checked:
        if vc.issuer != sender:
            raise CredentialError(
                f"a credential is issued by {vc.issuer}, but the request is signed by {sender}"
            )
    participants = [vc for vc in checked if "gx:LegalParticipant" in _subject_types(vc)]
    if len(participants) != 1:
        raise CredentialError("send exactly one gx:LegalParticipant credential")
    participant = participants[0]
    if participant.subject.get("id") != sender:
        raise CredentialError("the participant credential's subject must be the sender's DID")
    errors: list[str] = []
    for vc in checked:
        if "gx:ServiceOffering" in _subject_types(vc):
            provider = vc.subject.get("gx:providedBy")
            provider_id = provider.get("id") if isinstance(provider, dict) else provider
            if provider_id != sender:
                errors.append(f"gx:providedBy of {vc.subject.get('id')} must be {sender}")
        # pyshacl is CPU-bound; keep the event loop free for other requests.
        errors += await anyio.to_thread.run_sync(shacl_errors, vc.credential)
    rules = participant_rules(participant.subject)
    errors += rules.errors
    if errors:
        raise CredentialError("the self-description is not compliant", errors=errors)
    name = participant.subject.get("gx:legalName")
    return Assessment(sender, str(name), rules.country, rules.labels, checked)


def compliance_credential(
    *, keyring: Keyring, anchor_did: str, anchor_url: str, assessment: Assessment, index: int
) -> str:
    """The anchor's vc+jwt saying ``assessment.did`` is compliant, revocable at ``index``."""
    subject: dict[str, Any] = {
        "id": assessment.did,
        "type": "gx:compliance",
        "gx:legalName": assessment.legal_name,
        "rhenus:labels": assessment.labels,
        "rhenus:headquartersCountry": assessment.country,
        "gx:engineVersion": f"rhenus {__version__}",
        "gx:credentials": [
            {"id": vc.credential.get("id", vc.key_id), "gx:integrity": vc.digest}
            for vc in assessment.checked
        ],
    }
    status_url = anchor_url + STATUS_LIST_PATH
    status = {
        "id": f"{status_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(index),
        "statusListCredential": status_url,
    }
    return credentials.issue(
        keyring=keyring,
        did=anchor_did,
        types=[],
        subject=subject,
        status=status,
        valid_for=COMPLIANCE_VALIDITY,
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        contexts=(credentials.VC_CONTEXT, credentials.GX_CONTEXT),
    )


def status_list_credential(
    *, keyring: Keyring, anchor_did: str, anchor_url: str, revoked: list[int]
) -> str:
    """The anchor's revocation list as a BitstringStatusListCredential (vc+jwt)."""
    url = anchor_url + STATUS_LIST_PATH
    return credentials.issue(
        keyring=keyring,
        did=anchor_did,
        types=["BitstringStatusListCredential"],
        subject={
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": statuslist.encode(revoked),
        },
        credential_id=url,
        valid_for=timedelta(hours=1),
        contexts=(credentials.VC_CONTEXT,),
    )
