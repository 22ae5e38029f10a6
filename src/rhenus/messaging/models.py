"""Tables of the messaging domain (Matrix): devices, registration, profiles, rooms, events.

Events are the source of truth. ``matrix_events.stream_ordering`` is the node's one global
stream: it is assigned at insert inside the writing transaction, and writers are serialised
(SQLite ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock, see ``events.lock_stream``), so
positions commit in order and a ``since`` token is an exact cut of the stream.
``matrix_room_state`` is the current state of each room, kept in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base, utcnow

# A 64-bit stream position everywhere but SQLite, whose rowid alias must be INTEGER.
StreamPosition = BigInteger().with_variant(Integer(), "sqlite")


class Device(Base):
    """A logged-in Matrix client of a user; its access token is stored as its sha-256 only.

    One token per device: logging in again with the same ``device_id`` replaces the token, and
    logging out deletes the device.
    """

    __tablename__ = "matrix_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_id", name="uq_matrix_devices_device"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    localpart: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Profile(Base):
    """A Matrix user's public profile (``displayname``, ``avatar_url``)."""

    __tablename__ = "matrix_profiles"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    displayname: Mapped[str | None] = mapped_column(String(255))
    avatar_url: Mapped[str | None] = mapped_column(String(1024))


class RegistrationToken(Base):
    """A token that lets someone register (``m.login.registration_token``); sha-256 only."""

    __tablename__ = "matrix_registration_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    uses_allowed: Mapped[int | None]
    completed: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A User-Interactive Authentication session (spec: "User-interactive authentication API")."""

    __tablename__ = "matrix_auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    completed: Mapped[list[str]] = mapped_column(JSON, default=list)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    # The validated e-mail session of an ``m.login.email.identity`` stage (``threepids``).
    threepid_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Filter(Base):
    """A filter a user uploaded (``POST /user/{userId}/filter``)."""

    __tablename__ = "matrix_filters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)


class Room(Base):
    """A room hosted here.

    ``state_position`` is the stream position of the room's newest change of state (a state
    event, or the redaction of one): what the per-process cache of its auth state
    (``room_auth``) is checked against.
    """

    __tablename__ = "matrix_rooms"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_version: Mapped[str] = mapped_column(String(16))
    creator: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_position: Mapped[int] = mapped_column(StreamPosition, default=0, server_default="0")


class RoomAlias(Base):
    """A room alias (``#name:server``) pointing at a room."""

    __tablename__ = "matrix_room_aliases"

    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_rooms.room_id", ondelete="CASCADE"), index=True
    )
    creator: Mapped[str] = mapped_column(String(255))


class Event(Base):
    """One accepted event. ``stream_ordering`` is its position in the node's global stream.

    ``txn_device``/``txn_id`` remember the client transaction that sent it, so a retried
    ``PUT …/send/{type}/{txnId}`` gives back the same event (scoped per device, spec v1.7).
    """

    __tablename__ = "matrix_events"
    __table_args__ = (
        UniqueConstraint("sender", "txn_device", "txn_id", name="uq_matrix_events_txn"),
        Index("ix_matrix_events_room_stream", "room_id", "stream_ordering"),
        # The room's state at a position (initial sync, /context) reads state events only:
        # 0.05 ms instead of 21 ms at 100,000 messages (docs/messaging.md, "Benchmark").
        Index(
            "ix_matrix_events_state",
            "room_id",
            "type",
            "state_key",
            "stream_ordering",
            sqlite_where=text("state_key IS NOT NULL"),
            postgresql_where=text("state_key IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    stream_ordering: Mapped[int] = mapped_column(
        StreamPosition, primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("matrix_rooms.room_id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(255))
    state_key: Mapped[str | None] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin_server_ts: Mapped[int] = mapped_column(BigInteger)
    txn_device: Mapped[str | None] = mapped_column(String(64))
    txn_id: Mapped[str | None] = mapped_column(String(255))
    # Set when the event is redacted (its content then already stripped, ``redaction``): the
    # redaction event, served as ``unsigned.redacted_because``.
    redacted_because: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class RoomState(Base):
    """The current state of a room: one row per (type, state_key), the latest event's position.

    ``membership`` repeats the ``m.room.member`` content's membership so that "the rooms of a
    user" is one indexed query.
    """

    __tablename__ = "matrix_room_state"
    __table_args__ = (Index("ix_matrix_room_state_member", "state_key", "membership"),)

    room_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_rooms.room_id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(255), primary_key=True)
    state_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    stream_ordering: Mapped[int] = mapped_column(
        StreamPosition, ForeignKey("matrix_events.stream_ordering", ondelete="CASCADE")
    )
    membership: Mapped[str | None] = mapped_column(String(16))


# ---- end-to-end encryption (spec: "End-to-End Encryption") --------------------------------


class DeviceKeys(Base):
    """The identity keys a device uploaded (``keys/upload`` ``device_keys``), as signed."""

    __tablename__ = "matrix_device_keys"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("matrix_devices.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    keys: Mapped[dict[str, Any]] = mapped_column(JSON)


class OneTimeKey(Base):
    """A one-time key of a device; claiming it deletes it (``keys/claim``)."""

    __tablename__ = "matrix_one_time_keys"
    __table_args__ = (
        UniqueConstraint("device_pk", "algorithm", "key_id", name="uq_matrix_one_time_keys_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("matrix_devices.id", ondelete="CASCADE"))
    algorithm: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[Any] = mapped_column(JSON)


class FallbackKey(Base):
    """A device's fallback key per algorithm, handed out when no one-time key is left."""

    __tablename__ = "matrix_fallback_keys"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("matrix_devices.id", ondelete="CASCADE"), primary_key=True
    )
    algorithm: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[Any] = mapped_column(JSON)
    used: Mapped[bool] = mapped_column(default=False)


class DeviceListChange(Base):
    """A change of a user's devices or device keys, at a position in the device-list stream.

    Like events, positions are allocated under the stream lock (``events.lock_stream``), so a
    sync token's device-list part is an exact cut too.
    """

    __tablename__ = "matrix_device_list_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    position: Mapped[int] = mapped_column(StreamPosition, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)


class ToDeviceMessage(Base):
    """A message for one device (``sendToDevice``), kept until a sync acknowledges it."""

    __tablename__ = "matrix_to_device"
    __table_args__ = (
        Index("ix_matrix_to_device_recipient", "device_pk", "position"),
        {"sqlite_autoincrement": True},
    )

    position: Mapped[int] = mapped_column(StreamPosition, primary_key=True, autoincrement=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("matrix_devices.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


class ToDeviceTxn(Base):
    """A ``sendToDevice`` transaction already done by a device (idempotence per txnId)."""

    __tablename__ = "matrix_to_device_txns"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("matrix_devices.id", ondelete="CASCADE"), primary_key=True
    )
    txn_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Media(Base):
    """An uploaded file (``mxc://<server>/<media_id>``); its bytes are in the blob store."""

    __tablename__ = "matrix_media"

    media_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))
    uploader: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---- account data and receipts (spec: "Client Config", "Receipts", "Fully read markers") ----


class AccountData(Base):
    """A user's account data of one type, global (``room_id`` empty) or for one room.

    ``position`` is in the account stream (shared with receipts): allocated under the stream
    lock (``events.lock_stream``) as the newest position plus one, so a sync token's account
    part is an exact cut. A change moves the row to a new position.
    """

    __tablename__ = "matrix_account_data"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(255), primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(StreamPosition, unique=True)


class Receipt(Base):
    """A user's latest receipt of one type (``m.read``, ``m.read.private``) in a room and
    thread (``thread_id`` empty: unthreaded), at a position of the account stream."""

    __tablename__ = "matrix_receipts"
    __table_args__ = (Index("ix_matrix_receipts_room_position", "room_id", "position"),)

    room_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_rooms.room_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    receipt_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(StreamPosition, unique=True)


# ---- Tchap rules (e-mail registration, external users, account validity) ------------------


class ThreepidSession(Base):
    """An e-mail address being proven (``register/email/requestToken``, spec: "Adding
    Account Administrative Contact Information").

    ``sid`` names the session of one ``client_secret`` and address; each send attempt mails a
    new link whose token is kept as its sha-256 only, until used (once) or expired. The client
    secret is kept as its sha-256 too. ``requested_from`` (client address) and ``sends`` feed
    the rate limits.
    """

    __tablename__ = "matrix_threepid_sessions"
    __table_args__ = (
        UniqueConstraint(
            "client_secret_hash", "address", name="uq_matrix_threepid_sessions_secret"
        ),
    )

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    medium: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255), index=True)
    send_attempt: Mapped[int] = mapped_column(Integer)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_expires_at: Mapped[datetime]
    requested_from: Mapped[str] = mapped_column(String(64), index=True)
    validated_at: Mapped[datetime | None]
    consumed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Threepid(Base):
    """A third-party identifier (an e-mail address) bound to a Matrix account."""

    __tablename__ = "matrix_threepids"
    __table_args__ = (UniqueConstraint("medium", "address", name="uq_matrix_threepids_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    medium: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255))
    validated_at: Mapped[datetime]
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailInvitation(Base):
    """A room invitation sent by e-mail to someone without an account (``POST
    /rooms/{roomId}/invite`` with ``medium``/``address``).

    The mail holds a registration token (kept as its sha-256 only) that registers the invitee,
    an external user unless the address is in the organisation's domains, and turns every
    pending invitation to that address into an invite to its room.
    """

    __tablename__ = "matrix_email_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    room_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_rooms.room_id", ondelete="CASCADE"), index=True
    )
    inviter: Mapped[str] = mapped_column(String(255), index=True)
    address: Mapped[str] = mapped_column(String(255), index=True)
    external: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_by: Mapped[str | None] = mapped_column(String(255))
    accepted_at: Mapped[datetime | None]


class AccountValidity(Base):
    """When a Matrix account expires (Synapse's ``account_validity``), and its renewal link's
    token (sha-256 only, single use)."""

    __tablename__ = "matrix_account_validity"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)
    renewal_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    renewal_sent_at: Mapped[datetime | None]
