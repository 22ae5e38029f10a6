"""Authorisation rules of room version 11 for a single server (spec: "Room Version 11" →
"Authorization rules"), on the current state of the room.

What a single server needs and this slice builds: the create event, membership (join, invite,
leave/kick, ban/unban; no knocking, no restricted-join authorisers, no third-party invites),
the sender's membership, power levels for events and state, and the rules for changing
``m.room.power_levels`` (rule 10). Events that break a rule are refused, never stored.

On top of them, Tchap's room access rules (``im.vector.room.access_rules``, see
:func:`_check_access`): external users and rooms of two members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rhenus.messaging.errors import MatrixError, forbidden

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
# Tchap's room access rules (the synapse-room-access-rules module's state event).
ACCESS_RULES = "im.vector.room.access_rules"
RESTRICTED, UNRESTRICTED, DIRECT = "restricted", "unrestricted", "direct"
ACCESS_RULE_VALUES = (RESTRICTED, UNRESTRICTED, DIRECT)
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")
_TOP_LEVELS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)
# Values of power_levels fields when absent (spec: m.room.power_levels).
_DEFAULTS = {
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
    "events_default": 0,
    "users_default": 0,
}


@dataclass(frozen=True)
class Candidate:
    """An event not yet accepted."""

    type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None


@dataclass
class AuthState:
    """The parts of a room's current state the rules read (content of each event)."""

    create: Candidate | None = None
    power_levels: dict[str, Any] | None = None
    join_rule: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # user id → membership
    only_create: bool = False  # the create event is the room's only event so far
    access_rule: str | None = None  # the im.vector.room.access_rules rule, if any
    # Filled by ``access.complete`` only for the events that need them: which of the event's
    # users are external, and (direct rooms) every user with a member event in the room.
    externals: set[str] = field(default_factory=set)
    member_keys: set[str] | None = None

    def membership(self, user: str) -> str | None:
        return self.members.get(user)

    def level(self, user: str) -> int:
        """The user's power level (spec: without a power_levels event, the creator has 100)."""
        if self.power_levels is None:
            return 100 if self.create is not None and self.create.sender == user else 0
        users = self.power_levels.get("users", {})
        return int(users.get(user, self.power_levels.get("users_default", 0)))

    def required(self, name: str) -> int:
        """The level a top-level action (``invite``, ``kick``, ``ban``, …) needs."""
        if self.power_levels is None:
            return _DEFAULTS.get(name, 0)
        return int(self.power_levels.get(name, _DEFAULTS.get(name, 0)))

    def for_event(self, event_type: str, is_state: bool) -> int:
        """The level sending an event of this type needs."""
        if self.power_levels is None:
            # Spec: state_default is 0 when there is no m.room.power_levels event at all.
            return 0
        events = self.power_levels.get("events", {})
        if event_type in events:
            return int(events[event_type])
        if is_state:
            return int(self.power_levels.get("state_default", 50))
        return int(self.power_levels.get("events_default", 0))


def check(event: Candidate, state: AuthState) -> None:
    """Refuse ``event`` with M_FORBIDDEN unless the rules allow it on ``state``."""
    if event.type == CREATE and event.state_key == "":
        if state.create is not None:
            raise forbidden("the room already exists")
        return
    if state.create is None:
        raise MatrixError(404, "M_NOT_FOUND", "no such room")
    if event.type == MEMBER:
        first_join = _check_membership(event, state)
        if not first_join:
            _check_access(event, state)
        return
    if state.membership(event.sender) != "join":
        raise forbidden(f"{event.sender} is not in the room")
    needed = state.for_event(event.type, event.state_key is not None)
    if state.level(event.sender) < needed:
        raise forbidden(f"sending {event.type} needs power level {needed}")
    if event.state_key and event.state_key.startswith("@") and event.state_key != event.sender:
        raise forbidden("a state key that is a user id must be the sender's")
    if event.type == POWER_LEVELS and event.state_key == "":
        _check_power_levels(event, state)
    _check_access(event, state)


def _check_membership(event: Candidate, state: AuthState) -> bool:
    """Refuse a membership change the rules do not allow; True for the creator's first join."""
    target, sender = event.state_key, event.sender
    membership = event.content.get("membership")
    if not target or not target.startswith("@") or membership not in MEMBERSHIPS:
        raise MatrixError(400, "M_BAD_JSON", "a member event needs a user id and a membership")
    current = state.membership(target)
    if membership == "join":
        if sender != target:
            raise forbidden("only the user themself can join")
        if state.only_create and state.create is not None and state.create.sender == target:
            return True  # the creator's first join
        if current == "ban":
            raise forbidden(f"{target} is banned from the room")
        rule = state.join_rule or "invite"
        if rule == "public" or current in ("invite", "join"):
            return False
        raise forbidden("the room is invite-only")
    if membership == "leave" and sender == target:
        # Leaving, or rejecting an invite: only from invite, join (or knock).
        if current in ("invite", "join", "knock"):
            return False
        raise forbidden(f"{target} is not in the room")
    if state.membership(sender) != "join":
        raise forbidden(f"{sender} is not in the room")
    if membership == "invite":
        if current in ("ban", "join"):
            raise forbidden(
                f"{target} is {'banned' if current == 'ban' else 'already in the room'}"
            )
        if state.level(sender) < state.required("invite"):
            raise forbidden("inviting needs a higher power level")
        return False
    if membership == "leave":
        if current == "ban" and state.level(sender) < state.required("ban"):
            raise forbidden("unbanning needs a higher power level")
        if state.level(sender) >= state.required("kick") and state.level(target) < state.level(
            sender
        ):
            return False
        raise forbidden("kicking needs a higher power level than the target's")
    if membership == "ban":
        if state.level(sender) >= state.required("ban") and state.level(target) < state.level(
            sender
        ):
            return False
        raise forbidden("banning needs a higher power level than the target's")
    raise forbidden("knocking is not supported")


def _check_access(event: Candidate, state: AuthState) -> None:
    """Tchap's room access rules (the synapse-room-access-rules module), on an event the rules
    of the room version already allow.

    - ``restricted`` (the default, also when the room has no rule): no external user can be
      invited or join.
    - ``unrestricted``: external users may be invited; like everywhere, they join only with an
      invite (never a public room by its id or alias).
    - ``direct``: at most two users ever have a membership in the room: an event about a third
      one (invite, join, ban…) is refused; the room cannot be made public.
    - The rule can only change from ``restricted`` to ``unrestricted``; a room that had none may
      get any (``direct`` only with two members at most).
    """
    rule = state.access_rule or RESTRICTED
    if event.type == ACCESS_RULES and event.state_key == "":
        new = event.content.get("rule")
        if new not in ACCESS_RULE_VALUES:
            raise forbidden(f"the access rule must be one of {', '.join(ACCESS_RULE_VALUES)}")
        if new == DIRECT and state.member_keys is not None and len(state.member_keys) > 2:
            raise forbidden("a room with more than two members cannot become direct")
        previous = state.access_rule
        if previous is None or previous == new or (previous, new) == (RESTRICTED, UNRESTRICTED):
            return
        raise forbidden(
            f"the access rule can only change from restricted to unrestricted (it is {previous})"
        )
    if event.type == JOIN_RULES and event.content.get("join_rule") == "public" and rule == DIRECT:
        raise forbidden("a direct room (access rule direct) cannot be public")
    if event.type != MEMBER or not event.state_key:
        return
    target, membership = event.state_key, event.content.get("membership")
    if membership in ("invite", "join") and target in state.externals:
        if rule == RESTRICTED:
            raise forbidden(
                f"{target} is an external user: this room's access rule is restricted "
                "(no external users); it must be unrestricted first"
            )
        if membership == "join" and state.membership(target) not in ("invite", "join"):
            raise forbidden("external users can only join rooms they were invited to")
    keys = state.member_keys
    if rule == DIRECT and keys is not None and len(keys) >= 2 and target not in keys:
        raise forbidden("this is a direct room (access rule direct): it has two members at most")


def _int_map(value: Any, name: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    ):
        raise MatrixError(400, "M_BAD_JSON", f"power levels: {name} must map to integers")
    return value


def validate_power_levels(content: dict[str, Any]) -> None:
    """Room version 10+ requires integers everywhere in power levels."""
    for name in _TOP_LEVELS:
        value = content.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise MatrixError(400, "M_BAD_JSON", f"power levels: {name} must be an integer")
    for name in ("users", "events", "notifications"):
        _int_map(content.get(name, {}), name)


def _check_power_levels(event: Candidate, state: AuthState) -> None:
    new = event.content
    validate_power_levels(new)
    old = state.power_levels
    if old is None:
        return  # the room's first power levels (sent right after the creator joins)
    mine = state.level(event.sender)

    def changed_within_reach(before: Any, after: Any, what: str) -> None:
        if before == after:
            return
        if (before is not None and before > mine) or (after is not None and after > mine):
            raise forbidden(f"changing {what} is beyond your power level")

    for name in _TOP_LEVELS:
        changed_within_reach(old.get(name), new.get(name), name)
    for name in ("events", "notifications"):
        before, after = old.get(name, {}), new.get(name, {})
        for key in set(before) | set(after):
            changed_within_reach(before.get(key), after.get(key), f"{name}.{key}")
    before_users, after_users = old.get("users", {}), new.get("users", {})
    for user in set(before_users) | set(after_users):
        before, after = before_users.get(user), after_users.get(user)
        if before == after:
            continue
        if user != event.sender and before is not None and before >= mine:
            raise forbidden(f"{user} has a power level at least yours")
        if after is not None and after > mine:
            raise forbidden("nobody can be given a power level above yours")
