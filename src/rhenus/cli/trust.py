"""``rhenus trust``: this node's self-description and compliance; revocation on an anchor."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rhenus.cli.common import console, err_console, with_node
from rhenus.core.errors import Problem
from rhenus.core.node import Node
from rhenus.trust import participant, service
from rhenus.trust.client import federation_client, public_client
from rhenus.trust.credentials import VerifiedCredential
from rhenus.trust.did import DidResolver, did_for_url

app = typer.Typer(help="Identity, self-description and compliance.", no_args_is_help=True)
participant_app = typer.Typer(help="This organisation's self-description.", no_args_is_help=True)
app.add_typer(participant_app, name="participant")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{message}[/]")
    return typer.Exit(1)


@participant_app.command("create")
def participant_create(
    legal_name: Annotated[str, typer.Option(help="Registered legal name.")],
    headquarters: Annotated[str, typer.Option(help="ISO 3166-2 code, e.g. FR-75C.")],
    legal_address: Annotated[str, typer.Option(help="ISO 3166-2 code of the legal seat.")],
    vat: Annotated[str | None, typer.Option(help="EU VAT number.")] = None,
    eori: Annotated[str | None, typer.Option(help="EORI number.")] = None,
    lei: Annotated[str | None, typer.Option(help="LEI code (ISO 17442).")] = None,
) -> None:
    """Sign this organisation's gx:LegalParticipant credential."""
    if not (vat or eori or lei):
        raise _fail("give a registration number: --vat, --eori or --lei")

    async def work(node: Node) -> str:
        token = participant.self_description(
            settings=node.settings,
            keyring=node.keyring,
            legal_name=legal_name,
            headquarters=headquarters,
            legal_address=legal_address,
            vat_id=vat,
            eori=eori,
            lei_code=lei,
        )
        return await participant.keep_own_credential(
            node, kind="participant", token=token, actor="cli"
        )

    console.print(f"Self-description signed ({with_node(work)}).")


@app.command("service-offering")
def service_offering(
    name: Annotated[str, typer.Option(help="Name of the service or data resource.")],
    terms_url: Annotated[str, typer.Option(help="URL of its terms and conditions.")],
    description: Annotated[str, typer.Option(help="One or two sentences.")] = "",
) -> None:
    """Sign a gx:ServiceOffering; the next compliance request presents it too."""

    async def work(node: Node) -> str:
        token = participant.service_offering(
            settings=node.settings,
            keyring=node.keyring,
            name=name,
            description=description,
            terms_url=terms_url,
        )
        return await participant.keep_own_credential(node, kind="service", token=token, actor="cli")

    console.print(f"Service offering signed ({with_node(work)}).")


@app.command("request-compliance")
def request_compliance(
    anchor: Annotated[str, typer.Option(help="The trust anchor's base URL.")],
) -> None:
    """Present the self-description to a trust anchor and keep its compliance credential."""

    async def work(node: Node) -> VerifiedCredential:
        resolver = DidResolver(
            allow_http_loopback=node.settings.federation_insecure_http,
            client=public_client(node.settings),
        )
        try:
            async with federation_client(node.settings, node.keyring) as client:
                return await participant.obtain_compliance(
                    node=node, anchor_url=anchor, client=client, resolver=resolver
                )
        finally:
            await resolver.close()

    try:
        vc = with_node(work)
    except participant.AnchorRefused as exc:
        raise _fail(f"the anchor refused: {exc.detail}\n  " + "\n  ".join(exc.errors)) from exc
    labels = vc.subject.get("rhenus:labels", [])
    console.print(
        f"[green]Compliant[/] according to {vc.issuer}; labels: {labels or 'none'}; "
        f"valid until {vc.credential.get('validUntil')}."
    )


@app.command("status")
def status() -> None:
    """This node's DID and the credentials it holds."""

    async def work(node: Node) -> Table:
        async with node.db.session() as session:
            held = {
                kind: await service.latest_credential(session, kind=kind)
                for kind in ("participant", "compliance")
            }
        table = Table("item", "value", title="Trust status")
        table.add_row("DID", did_for_url(node.settings.public_url))
        table.add_row("trust anchor role", "yes" if node.settings.trust_anchor else "no")
        table.add_row("trusted anchors", ", ".join(node.settings.trusted_anchors) or "none")
        for kind, row in held.items():
            if row is None:
                table.add_row(f"{kind} credential", "[yellow]none[/]")
            else:
                until = row.valid_until.date().isoformat() if row.valid_until else "—"
                table.add_row(
                    f"{kind} credential", f"{row.digest[:23]}… by {row.issuer} (until {until})"
                )
        return table

    console.print(with_node(work))


@app.command("revoke")
def revoke(did: Annotated[str, typer.Argument(help="The participant's DID.")]) -> None:
    """On a trust anchor: revoke a participant's compliance."""

    async def work(node: Node) -> None:
        if not node.settings.trust_anchor:
            raise Problem("this node is not a trust anchor (RHENUS_TRUST_ANCHOR)")
        async with node.db.transaction() as session:
            await service.revoke_participant(session, did=did)
            await node.audit.record(
                session,
                actor="cli",
                action="trust.compliance.revoked",
                object_type="participant",
                object_id=did,
            )

    with_node(work)
    console.print(f"Revoked {did}: its status bit is set in the revocation list.")
