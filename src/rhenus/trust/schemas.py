"""Wire formats of the trust API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PingIn(BaseModel):
    message: str = Field(default="", max_length=1000)


class PingOut(BaseModel):
    """The answer to a signed federation ping: who was recognised, by whom."""

    sender: str
    receiver: str
    key_id: str
    echo: str


class ParticipantIn(BaseModel):
    """What an administrator states about the organisation (Gaia-X LegalParticipant)."""

    legal_name: str = Field(min_length=1, max_length=255)
    headquarters: str = Field(description="ISO 3166-2 subdivision code, e.g. FR-75C, DE-BE.")
    legal_address: str = Field(description="ISO 3166-2 subdivision code of the legal seat.")
    vat_id: str | None = Field(default=None, max_length=20)
    eori: str | None = Field(default=None, max_length=20)
    lei_code: str | None = Field(default=None, max_length=20)


class CredentialOut(BaseModel):
    token: str
    digest: str


class ComplianceRequest(BaseModel):
    verifiableCredentials: list[str] = Field(min_length=1, max_length=20)


class ComplianceOut(BaseModel):
    complianceCredential: str
    labels: list[str]


class ParticipantOut(BaseModel):
    did: str
    legal_name: str
    country: str
    labels: list[str]
    revoked: bool


class RevokeIn(BaseModel):
    did: str = Field(min_length=8, max_length=255)


class TrustStatusOut(BaseModel):
    did: str
    participant_credential: str | None
    compliance_credential: str | None
    compliance_issuer: str | None
    compliance_valid_until: str | None


class ObtainComplianceIn(BaseModel):
    anchor_url: str = Field(
        min_length=8, max_length=500, description="The trust anchor's base URL."
    )


class ObtainComplianceOut(BaseModel):
    anchor: str
    digest: str
    labels: list[str]


class ServiceOfferingIn(BaseModel):
    """A service (or data resource) the organisation offers, for its Gaia-X self-description."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    terms_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    terms_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
