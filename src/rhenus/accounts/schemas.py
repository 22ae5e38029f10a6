"""Wire formats of the accounts API (``/api/v1/auth``, ``/api/v1/users``, ``/api/v1/me``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

USERNAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
EMAIL = r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
Role = Literal["admin", "agent"]
# External users are people outside the organisation invited to Matrix rooms (Tchap's rules,
# ``messaging.external``): they have a Matrix account only, never the node's API.
AnyRole = Literal["admin", "agent", "external"]
EXTERNAL = "external"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime
    must_change_password: bool


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=12, max_length=1024)


class UserCreate(BaseModel):
    username: str = Field(pattern=USERNAME)
    email: str | None = Field(default=None, pattern=EMAIL)
    display_name: str = Field(default="", max_length=255)
    role: Role = "agent"
    password: str | None = Field(
        default=None,
        min_length=12,
        max_length=1024,
        description="Omit to have a one-time password generated and returned once.",
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    email: str | None
    display_name: str
    role: AnyRole
    disabled: bool
    must_change_password: bool
    created_at: datetime


class UserCreated(UserOut):
    one_time_password: str | None = None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prefix: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key; shown this once, stored only as a hash.")
