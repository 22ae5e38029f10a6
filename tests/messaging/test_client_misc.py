"""The small routes clients call as they start (``messaging/client_misc_api.py``): the default
push rules, no TURN server, no third-party protocols."""

from __future__ import annotations

import httpx

from tests.messaging.conftest import Register


async def test_push_rules_are_the_predefined_rules_of_the_user(new_user: Register) -> None:
    alice = await new_user("alice")
    rules = (await alice.ok("GET", "/pushrules/"))["global"]
    assert rules == await alice.ok("GET", "/pushrules/global/")
    assert list(rules) == ["override", "content", "room", "sender", "underride"]
    assert rules["room"] == rules["sender"] == []
    every = [rule for kind in rules.values() for rule in kind]
    assert all(r["default"] and r["rule_id"].startswith(".m.rule.") for r in every)
    assert [r["rule_id"] for r in rules["override"]][:2] == [
        ".m.rule.master",
        ".m.rule.suppress_notices",
    ]
    assert [r["enabled"] for r in every].count(False) == 1  # the master rule only
    [user_name] = rules["content"]
    assert (user_name["rule_id"], user_name["pattern"]) == (".m.rule.contains_user_name", "alice")
    invite = next(r for r in rules["override"] if r["rule_id"] == ".m.rule.invite_for_me")
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in invite[
        "conditions"
    ]
    assert [r["rule_id"] for r in rules["underride"]][-1] == ".m.rule.encrypted"


async def test_turn_server_and_protocols_are_empty_and_changes_unknown(
    new_user: Register, client: httpx.AsyncClient
) -> None:
    alice = await new_user("alice")
    assert await alice.ok("GET", "/voip/turnServer") == {}
    assert await alice.ok("GET", "/thirdparty/protocols") == {}
    for path in ("/pushrules/", "/voip/turnServer", "/thirdparty/protocols"):
        missing = await client.get(f"/_matrix/client/v3{path}")
        assert (missing.status_code, missing.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    change = await alice.call("PUT", "/pushrules/global/room/!r:x", json={"actions": []})
    assert (change.status_code, change.json()["errcode"]) == (404, "M_UNRECOGNIZED")
