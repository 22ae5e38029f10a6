"""The trust anchor: checks self-descriptions, issues compliance credentials, revokes them;
receivers refuse participants without valid, unrevoked compliance."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from rhenus.trust import credentials, participant, service
from rhenus.trust.credentials import digest
from tests.support.federation import (
    ANCHOR,
    PARTICIPANTS,
    Federation,
    FedNode,
    certify,
    sign_self_description,
)

PING = "/api/v1/federation/ping"


@pytest.fixture
async def fed(tmp_path: Path, db_url: str) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path)
    await federation.add("anchor", anchor=True, db_url=db_url)
    await federation.add("fr-mininterieur")
    await federation.add("de-berlin")
    yield federation
    await federation.close()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def _ping(sender: FedNode, receiver: FedNode) -> httpx.Response:
    async with sender.client() as client:
        return await client.post(receiver.url + PING, json={"message": "hallo"})


async def test_compliance_credential_verifies_with_plain_joserfc(fed: Federation) -> None:
    anchor, paris, _ = fed.nodes
    token = await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    # The self-description certify signed (a second signing could carry another timestamp).
    async with paris.node.db.session() as session:
        stored = await service.latest_credential(session, kind="participant")
    assert stored is not None
    participant_token = stored.token
    # A verifier that knows nothing of Rhenus: fetch the anchor's did.json, take the key the
    # JWT header names, verify with joserfc.
    async with httpx.AsyncClient(transport=fed.router) as http:
        did_doc = (await http.get(ANCHOR + "/.well-known/did.json")).json()
    header = jws.extract_compact(token.encode()).headers()
    assert header["typ"] == "vc+jwt"
    method = next(m for m in did_doc["verificationMethod"] if m["id"] == header["kid"])
    verified = jws.deserialize_compact(
        token, OKPKey.import_key(method["publicKeyJwk"]), algorithms=["Ed25519"]
    )
    credential = json.loads(verified.payload)
    assert credential["issuer"] == anchor.did
    subject = credential["credentialSubject"]
    assert subject["id"] == paris.did
    assert subject["rhenus:labels"] == ["sovereign"]
    assert {c["gx:integrity"] for c in subject["gx:credentials"]} == {digest(participant_token)}
    assert credential["credentialStatus"]["type"] == "BitstringStatusListEntry"


async def test_compliant_participants_call_each_other(fed: Federation) -> None:
    _, paris, berlin = fed.nodes
    await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    await certify(berlin, **PARTICIPANTS["de-berlin"])
    for sender, receiver in ((paris, berlin), (berlin, paris)):
        response = await _ping(sender, receiver)
        assert response.status_code == 200, response.text
        assert response.json()["sender"] == sender.did


async def test_participant_without_compliance_is_refused(fed: Federation) -> None:
    _, paris, berlin = fed.nodes
    await certify(berlin, **PARTICIPANTS["de-berlin"])
    response = await _ping(paris, berlin)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "has no compliance credential" in response.json()["detail"]


async def test_revoked_participant_is_refused_and_cannot_recertify(fed: Federation) -> None:
    anchor, paris, berlin = fed.nodes
    await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    await certify(berlin, **PARTICIPANTS["de-berlin"])
    assert (await _ping(paris, berlin)).status_code == 200
    async with anchor.node.db.transaction() as session:
        await service.revoke_participant(session, did=paris.did)
    refused = await _ping(paris, berlin)
    assert refused.status_code == 403
    assert "was revoked" in refused.json()["detail"]
    with pytest.raises(participant.AnchorRefused) as again:
        await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    assert again.value.status == 403
    async with httpx.AsyncClient(transport=fed.router) as http:
        registry = (await http.get(ANCHOR + "/api/v1/trust/participants")).json()
    assert {p["did"]: p["revoked"] for p in registry} == {paris.did: True, berlin.did: False}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"legal_name": ""}, "gx:legalName"),
        ({"headquarters": "France"}, "gx:countrySubdivisionCode"),
        ({"headquarters": "FR-99"}, "is not an ISO 3166-2 subdivision code"),
        ({"vat_id": "FR-12 34"}, "gx:vatID"),
        ({"vat_id": "FR00000000000"}, "is not a valid EU VAT number"),
    ],
)
async def test_non_compliant_self_description_is_refused(
    fed: Federation, change: dict[str, str], reason: str
) -> None:
    _, paris, _ = fed.nodes
    facts = {**PARTICIPANTS["fr-mininterieur"], **change}
    with pytest.raises(participant.AnchorRefused) as refused:
        await certify(paris, **facts)
    assert refused.value.status == 403
    assert any(reason in error for error in refused.value.errors), refused.value.errors


async def test_headquarters_outside_the_eu_get_no_sovereign_label(fed: Federation) -> None:
    _, paris, _ = fed.nodes
    facts = {
        **PARTICIPANTS["fr-mininterieur"],
        "vat_id": None,
        "lei_code": "5299000J2N45DDNE4Y28",
        "headquarters": "CH-ZH",
    }
    token = await certify(paris, **facts)
    assert _claims(token)["credentialSubject"]["rhenus:labels"] == []  # type: ignore[index]


async def test_compliance_api_needs_a_signed_request(fed: Federation) -> None:
    anchor, paris, _ = fed.nodes
    token = await sign_self_description(paris, **PARTICIPANTS["fr-mininterieur"])
    async with anchor.http() as http:
        response = await http.post(
            "/api/v1/trust/compliance", json={"verifiableCredentials": [token]}
        )
    assert response.status_code == 401
    assert "not signed" in response.json()["detail"]


async def test_credentials_must_be_issued_by_the_sender(fed: Federation) -> None:
    _, paris, berlin = fed.nodes
    berlins = await sign_self_description(berlin, **PARTICIPANTS["de-berlin"])
    async with paris.client() as client:
        response = await client.post(
            ANCHOR + "/api/v1/trust/compliance", json={"verifiableCredentials": [berlins]}
        )
    assert response.status_code == 403
    assert "signed by did:web:fr-mininterieur.test" in response.json()["detail"]


async def _store_service(member: FedNode, token: str) -> None:
    async with member.node.db.transaction() as session:
        await service.store_credential(
            session, kind="service", token=token, issuer=member.did, valid_until=None
        )


async def test_service_offerings_are_checked_and_listed(fed: Federation) -> None:
    _, paris, _ = fed.nodes
    offering = participant.service_offering(
        settings=paris.settings,
        keyring=paris.node.keyring,
        name="Statistiques de sécurité",
        description="Délinquance enregistrée par commune",
        terms_url="https://paris.test/cgu",
    )
    await _store_service(paris, offering)
    token = await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    listed = {c["gx:integrity"] for c in _claims(token)["credentialSubject"]["gx:credentials"]}  # type: ignore[index]
    assert digest(offering) in listed
    assert len(listed) == 2


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ({"gx:name": "No terms"}, "gx:termsAndConditions"),
        (
            {
                "gx:name": "Not mine",
                "gx:termsAndConditions": {"gx:URL": "https://x.test"},
                "gx:providedBy": {"id": "did:web:de-berlin.test"},
            },
            "gx:providedBy",
        ),
    ],
)
async def test_non_compliant_service_offering_is_refused(
    fed: Federation, subject: dict[str, object], reason: str
) -> None:
    _, paris, _ = fed.nodes
    full = {
        "id": "https://paris.test/services/x",
        "type": "gx:ServiceOffering",
        "gx:providedBy": {"id": paris.did},
        **subject,
    }
    await _store_service(
        paris, credentials.issue(keyring=paris.node.keyring, did=paris.did, types=[], subject=full)
    )
    with pytest.raises(participant.AnchorRefused) as refused:
        await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    assert any(reason in error for error in refused.value.errors), refused.value.errors


async def test_refusal_is_a_problem_document_listing_each_violation(fed: Federation) -> None:
    _, paris, _ = fed.nodes
    token = await sign_self_description(
        paris, **{**PARTICIPANTS["fr-mininterieur"], "legal_name": "", "vat_id": "FR-1"}
    )
    async with paris.client() as client:
        response = await client.post(
            ANCHOR + "/api/v1/trust/compliance", json={"verifiableCredentials": [token]}
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Credential refused"
    assert len(body["errors"]) >= 2
