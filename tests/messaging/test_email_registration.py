"""Self-registration by e-mail (Tchap's rule: only the organisation's domains), through a real
SMTP server on loopback: the spec's requestToken, the mailed link, then User-Interactive Auth
with ``m.login.email.identity``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rhenus.config import Settings
from rhenus.messaging import registration, threepids
from tests.messaging.conftest import PASSWORD, Mailbox, mail_settings
from tests.support.smtp import body, links, path_of

REQUEST_TOKEN = "/_matrix/client/v3/register/email/requestToken"
REGISTER = "/_matrix/client/v3/register"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, mailbox: Mailbox) -> Settings:
    return mail_settings(tmp_path, db_url, mailbox)


async def ask(
    client: httpx.AsyncClient, email: str, attempt: int = 1, secret: str = "s3cr3t"
) -> httpx.Response:
    return await client.post(
        REQUEST_TOKEN, json={"client_secret": secret, "email": email, "send_attempt": attempt}
    )


def test_domain_patterns_match_the_domain_or_its_subdomains(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, matrix_allowed_email_domains=["interieur.gouv.fr", "*.gouv.fr"]
    )
    allowed = ["a@interieur.gouv.fr", "b@prefecture.gouv.fr", "c@x.y.gouv.fr"]
    refused = ["d@gouv.fr", "e@evilgouv.fr", "f@gouv.fr.example.com", "g@example.com"]
    assert all(threepids.domain_allowed(settings, a) for a in allowed)
    assert not any(threepids.domain_allowed(settings, a) for a in refused)
    assert (
        threepids.canonical_email("Jean.Dupont@Interieur.GOUV.fr")
        == "jean.dupont@interieur.gouv.fr"
    )
    assert not threepids.email_registration_enabled(Settings(home=tmp_path))  # no SMTP server
    assert registration.registration_flows() == [["m.login.registration_token", "m.login.dummy"]]
    with pytest.raises(ValueError, match="not a domain"):
        Settings(home=tmp_path, matrix_allowed_email_domains=["*"])


async def test_an_address_outside_the_organisation_is_refused_and_gets_no_mail(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    for address in ("someone@example.com", "x@gouv.fr.example.com"):
        refused = await ask(client, address)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errcode"] == "M_THREEPID_DENIED"
        assert "interieur.gouv.fr" in refused.json()["error"]
    bad = await ask(client, "not an address")
    assert bad.status_code == 400
    assert bad.json()["errcode"] == "M_INVALID_PARAM"
    assert mailbox.messages == []


async def test_the_email_flow_registers_an_agent_who_logs_in_and_has_the_address_bound(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first = await client.post(REGISTER, json={"username": "jean", "password": PASSWORD})
    assert first.status_code == 401
    assert {"stages": ["m.login.email.identity", "m.login.dummy"]} in first.json()["flows"]
    assert {"stages": ["m.login.registration_token", "m.login.dummy"]} in first.json()["flows"]

    asked = await ask(client, "Jean.Dupont@Interieur.gouv.fr", secret="jeans-secret")
    assert asked.status_code == 200, asked.text
    sid = asked.json()["sid"]
    (message,) = mailbox.messages
    assert message["To"] == "jean.dupont@interieur.gouv.fr"
    assert message["From"] == "matrix@interieur.gouv.fr"
    (link,) = links(message)
    assert link.startswith("http://127.0.0.1:8080/_matrix/client/v3/register/email/submitToken?")

    # Before the link is followed, the stage is not done (clients ask again).
    session = first.json()["session"]
    creds = {"sid": sid, "client_secret": "jeans-secret"}
    stage = {"type": "m.login.email.identity", "threepid_creds": creds, "session": session}
    account = {"username": "jean", "password": PASSWORD}
    early = await client.post(REGISTER, json={**account, "auth": stage})
    assert early.status_code == 401
    assert early.json()["errcode"] == "M_UNAUTHORIZED"
    assert early.json()["completed"] == []

    followed = await client.get(path_of(link))
    assert followed.status_code == 200
    assert "confirmed" in followed.text
    again = await client.get(path_of(link), headers={"Accept": "application/json"})
    assert again.status_code == 400  # single use
    assert again.json() == {"success": False}

    wrong_secret = {**stage, "threepid_creds": {"sid": sid, "client_secret": "not-it"}}
    assert (await client.post(REGISTER, json={**account, "auth": wrong_secret})).status_code == 401
    done_email = await client.post(REGISTER, json={**account, "auth": stage})
    assert done_email.status_code == 401
    assert done_email.json()["completed"] == ["m.login.email.identity"]
    dummy = {"type": "m.login.dummy", "session": session}
    done = await client.post(REGISTER, json={**account, "auth": dummy})
    assert done.status_code == 200, done.text
    jean_token = done.json()["access_token"]
    headers = {"Authorization": f"Bearer {jean_token}"}
    whoami = await client.get("/_matrix/client/v3/account/whoami", headers=headers)
    assert whoami.json()["user_id"] == "@jean:127.0.0.1:8080"
    bound = (await client.get("/_matrix/client/v3/account/3pid", headers=headers)).json()
    assert [(t["medium"], t["address"]) for t in bound["threepids"]] == [
        ("email", "jean.dupont@interieur.gouv.fr")
    ]
    profile = await client.get("/_matrix/client/v3/profile/@jean:127.0.0.1:8080", headers=headers)
    assert "eu.rhenus.external" not in profile.json()  # an agent of the organisation

    login = await client.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "jean"},
            "password": PASSWORD,
        },
    )
    assert login.status_code == 200, login.text

    # The validated session registered one account only; the address is now taken.
    other = await client.post(REGISTER, json={"username": "jean2", "password": PASSWORD})
    stage2 = {**stage, "session": other.json()["session"]}
    reused = await client.post(
        REGISTER, json={"username": "jean2", "password": PASSWORD, "auth": stage2}
    )
    assert reused.status_code == 401
    assert reused.json()["errcode"] == "M_UNAUTHORIZED"
    taken = await ask(client, "jean.dupont@interieur.gouv.fr", secret="another")
    assert taken.status_code == 400
    assert taken.json()["errcode"] == "M_THREEPID_IN_USE"


async def test_the_same_send_attempt_is_not_mailed_twice_and_a_new_one_replaces_the_link(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    one = await ask(client, "marie@prefecture.gouv.fr", attempt=1)
    same = await ask(client, "marie@prefecture.gouv.fr", attempt=1)
    assert one.json()["sid"] == same.json()["sid"]
    assert len(mailbox.messages) == 1
    two = await ask(client, "marie@prefecture.gouv.fr", attempt=2)
    assert two.json()["sid"] == one.json()["sid"]
    assert len(mailbox.messages) == 2
    old, new = (links(m)[0] for m in mailbox.messages)
    assert (await client.get(path_of(old))).status_code == 400  # replaced
    assert (await client.get(path_of(new))).status_code == 200
    assert "open this link within an hour" in body(mailbox.messages[1])


async def test_mails_to_one_address_are_rate_limited(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    for attempt in range(1, threepids.MAX_MAILS_PER_ADDRESS + 1):
        assert (await ask(client, "paul@interieur.gouv.fr", attempt)).status_code == 200
    limited = await ask(client, "paul@interieur.gouv.fr", attempt=99)
    assert limited.status_code == 429
    assert limited.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert len(mailbox.messages) == threepids.MAX_MAILS_PER_ADDRESS
