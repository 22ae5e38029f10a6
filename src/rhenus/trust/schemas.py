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
