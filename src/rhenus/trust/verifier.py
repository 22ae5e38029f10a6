"""What a receiving node checks about a signed sender: a valid, unrevoked compliance credential
issued by a trust anchor it trusts. Results are cached for a minute, so a revocation takes
effect across the federation within that time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from rhenus.core.errors import Forbidden, Problem
from rhenus.trust import credentials, statuslist
from rhenus.trust.did import DidResolver

COMPLIANCE_SERVICE = "ComplianceCredential"


@dataclass(frozen=True)
class Compliance:
    """What a trusted anchor certified about a participant."""

    did: str
    anchor: str
    labels: list[str]
    country: str


class ComplianceChecker:
    """Checks (and caches) the compliance of other nodes."""

    def __init__(self, resolver: DidResolver, trusted_anchors: list[str], ttl: float = 60) -> None:
        self.resolver, self.trusted, self.ttl = resolver, set(trusted_anchors), ttl
        self._cache: dict[str, tuple[float, Compliance]] = {}

    async def _fetch(self, url: str) -> str:
        try:
            response = await self.resolver.client.get(url, headers={"accept": "application/vc+jwt"})
        except httpx.HTTPError as exc:
            raise Forbidden(f"cannot fetch {url}: {exc}") from exc
        if response.status_code != 200:
            raise Forbidden(f"{url} answered {response.status_code}")
        return response.text.strip()

    async def check(self, did: str) -> Compliance:
        """The sender's compliance; :class:`Forbidden` naming why it is not accepted."""
        cached = self._cache.get(did)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        if not self.trusted:
            raise Forbidden("this node trusts no trust anchor yet (RHENUS_TRUSTED_ANCHORS)")
        document = await self.resolver.document(did)
        endpoints = [
            s.get("serviceEndpoint")
            for s in document.get("service", [])
            if isinstance(s, dict) and s.get("type") == COMPLIANCE_SERVICE
        ]
        if not endpoints or not isinstance(endpoints[0], str):
            raise Forbidden(f"{did} publishes no compliance credential")
        try:
            vc = await credentials.verify(await self._fetch(endpoints[0]), self.resolver)
        except Forbidden:
            raise Forbidden(f"{did} has no compliance credential") from None
        except Problem as exc:
            raise Forbidden(f"the compliance credential of {did} is invalid: {exc.detail}") from exc
        if vc.issuer not in self.trusted:
            raise Forbidden(
                f"{did} is certified by {vc.issuer}, a trust anchor this node does not trust"
            )
        if vc.subject.get("id") != did:
            raise Forbidden(f"the compliance credential presented by {did} is about someone else")
        await self._check_not_revoked(did, vc.issuer, vc.credential.get("credentialStatus"))
        labels = vc.subject.get("rhenus:labels", [])
        result = Compliance(
            did,
            vc.issuer,
            [str(x) for x in labels] if isinstance(labels, list) else [],
            str(vc.subject.get("rhenus:headquartersCountry", "")),
        )
        self._cache[did] = (time.monotonic() + self.ttl, result)
        return result

    async def _check_not_revoked(self, did: str, anchor: str, status: Any) -> None:
        if not isinstance(status, dict) or status.get("type") != "BitstringStatusListEntry":
            raise Forbidden(f"the compliance credential of {did} has no revocation status entry")
        url, index = status.get("statusListCredential"), status.get("statusListIndex")
        if not isinstance(url, str) or not str(index).isdigit():
            raise Forbidden(f"the compliance credential of {did} has a malformed status entry")
        try:
            listing = await credentials.verify(await self._fetch(url), self.resolver)
        except Problem as exc:
            raise Forbidden(f"the revocation list of {anchor} is unusable: {exc.detail}") from exc
        if listing.issuer != anchor:
            raise Forbidden("the revocation list is not signed by the anchor that certified")
        try:
            revoked = statuslist.is_set(
                str(listing.subject.get("encodedList", "")), int(str(index))
            )
        except ValueError as exc:
            raise Forbidden(f"the revocation list of {anchor} is malformed: {exc}") from exc
        if revoked:
            raise Forbidden(f"the compliance of {did} was revoked by {anchor}")
