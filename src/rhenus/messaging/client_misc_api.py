"""Small Matrix routes that clients call as they start, answered as Synapse answers them on a
server without the feature: the push rules (the spec's predefined rules, which clients apply to
what they receive), TURN servers (none configured) and third-party protocols (no bridges).

matrix-js-sdk does not finish its first sync without the push rules
(``tests/e2e/test_live_matrix_js.py``). Changing push rules, pushers and notifications are not
offered yet: those routes are unknown (404 ``M_UNRECOGNIZED``).
"""

from __future__ import annotations

from typing import Any

from rhenus.core.http import api_router
from rhenus.messaging.deps import MatrixUser

router = api_router(prefix="/_matrix/client/v3", tags=["messaging"])
Rule = dict[str, Any]

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _rule(rule_id: str, actions: list[Any], *conditions: Rule, enabled: bool = True) -> Rule:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": enabled,
        "conditions": list(conditions),
        "actions": actions,
    }


def _match(key: str, pattern: str) -> Rule:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _is(key: str, value: object) -> Rule:
    return {"kind": "event_property_is", "key": key, "value": value}


def default_push_rules(user_id: str) -> dict[str, list[Rule]]:
    """The global ruleset of a user who changed nothing: the predefined rules of the spec
    (v1.9, "Push Notifications" → "Predefined Rules"), in its order."""
    localpart = user_id.removeprefix("@").split(":", 1)[0]
    room_mention = {"kind": "sender_notification_permission", "key": "room"}
    two_members = {"kind": "room_member_count", "is": "2"}
    return {
        "override": [
            _rule(".m.rule.master", [], enabled=False),
            _rule(".m.rule.suppress_notices", [], _match("content.msgtype", "m.notice")),
            _rule(
                ".m.rule.invite_for_me",
                ["notify", _SOUND],
                _match("type", "m.room.member"),
                _match("content.membership", "invite"),
                _match("state_key", user_id),
            ),
            _rule(".m.rule.member_event", [], _match("type", "m.room.member")),
            _rule(
                ".m.rule.is_user_mention",
                ["notify", _SOUND, _HIGHLIGHT],
                {
                    "kind": "event_property_contains",
                    "key": "content.m\\.mentions.user_ids",
                    "value": user_id,
                },
            ),
            _rule(
                ".m.rule.contains_display_name",
                ["notify", _SOUND, _HIGHLIGHT],
                {"kind": "contains_display_name"},
            ),
            _rule(
                ".m.rule.is_room_mention",
                ["notify", _HIGHLIGHT],
                _is("content.m\\.mentions.room", True),
                room_mention,
            ),
            _rule(
                ".m.rule.roomnotif",
                ["notify", _HIGHLIGHT],
                _match("content.body", "@room"),
                room_mention,
            ),
            _rule(
                ".m.rule.tombstone",
                ["notify", _HIGHLIGHT],
                _match("type", "m.room.tombstone"),
                _match("state_key", ""),
            ),
            _rule(".m.rule.reaction", [], _match("type", "m.reaction")),
            _rule(
                ".m.rule.room.server_acl",
                [],
                _match("type", "m.room.server_acl"),
                _match("state_key", ""),
            ),
            _rule(
                ".m.rule.suppress_edits", [], _is("content.m\\.relates_to.rel_type", "m.replace")
            ),
        ],
        "content": [
            {
                "rule_id": ".m.rule.contains_user_name",
                "default": True,
                "enabled": True,
                "pattern": localpart,
                "actions": ["notify", _SOUND, _HIGHLIGHT],
            }
        ],
        "room": [],
        "sender": [],
        "underride": [
            _rule(
                ".m.rule.call",
                ["notify", {"set_tweak": "sound", "value": "ring"}],
                _match("type", "m.call.invite"),
            ),
            _rule(
                ".m.rule.encrypted_room_one_to_one",
                ["notify", _SOUND],
                two_members,
                _match("type", "m.room.encrypted"),
            ),
            _rule(
                ".m.rule.room_one_to_one",
                ["notify", _SOUND],
                two_members,
                _match("type", "m.room.message"),
            ),
            _rule(".m.rule.message", ["notify"], _match("type", "m.room.message")),
            _rule(".m.rule.encrypted", ["notify"], _match("type", "m.room.encrypted")),
        ],
    }


@router.get("/pushrules/")
async def push_rules(requester: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/pushrules/ — spec: "Push Rules: API" (the defaults only)."""
    return {"global": default_push_rules(requester.user_id)}


@router.get("/pushrules/global/")
async def global_push_rules(requester: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/pushrules/global/ — the same, drilled down to its scope."""
    return default_push_rules(requester.user_id)


@router.get("/voip/turnServer")
async def turn_server(_: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/voip/turnServer — spec: "Voice over IP"; no TURN server is
    configured, which Synapse answers with an empty object."""
    return {}


@router.get("/thirdparty/protocols")
async def thirdparty_protocols(_: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/thirdparty/protocols — spec: "Third-party Networks"; no bridges."""
    return {}
