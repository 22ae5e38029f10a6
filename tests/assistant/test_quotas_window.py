"""The quota window on both engines: the calls and tokens of the last 60 s count, Retry-After is
when enough of them leave the window, and concurrent admissions through two engines (two worker
processes, as far as the database can tell) never let more calls in than the limit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from rhenus.accounts.models import User
from rhenus.accounts.service import Principal
from rhenus.assistant import quotas
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.metering import Meter
from rhenus.assistant.service import Assistant
from rhenus.assistant.usage_models import OK, AssistantUsage
from rhenus.config import AssistantModel, Settings
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from tests.assistant.conftest import CHAT_MODEL, EMBEDDING_MODEL


async def _admin(node: Node) -> User:
    async with node.db.session() as session:
        user = await session.scalar(select(User).where(User.username == "admin"))
    assert user is not None
    return user


async def _calls(node: Node, user_id: int, *ages_and_tokens: tuple[int, int]) -> None:
    now = utcnow()
    async with node.db.transaction() as session:
        for age, tokens in ages_and_tokens:
            session.add(
                AssistantUsage(
                    user_id=user_id,
                    model=CHAT_MODEL,
                    endpoint="chat/completions",
                    prompt_tokens=tokens,
                    completion_tokens=0,
                    status=OK,
                    created_at=now - timedelta(seconds=age),
                )
            )


async def _admit(node: Node, user_id: int, limits: quotas.Limits) -> None:
    async with node.db.transaction() as session:
        await quotas.admit(session, user_id=user_id, alias=CHAT_MODEL, limits=limits, now=utcnow())


async def test_only_the_calls_of_the_last_60_seconds_count_and_retry_after_is_the_oldest(
    node: Node,
) -> None:
    admin = await _admin(node)
    await _calls(node, admin.id, (70, 0), (50, 0), (10, 0))
    await _admit(node, admin.id, quotas.Limits(rpm=3, tpm=0))  # the one 70 s old is gone
    with pytest.raises(OpenAIError) as refused:
        await _admit(node, admin.id, quotas.Limits(rpm=2, tpm=0))
    assert (refused.value.status, refused.value.type, refused.value.code) == (
        429,
        "requests",
        "rate_limit_exceeded",
    )
    # Room for one more when the call of 50 s ago leaves: in 10 s (rounded up).
    assert int(refused.value.headers["Retry-After"]) in (10, 11)
    with pytest.raises(OpenAIError) as one_per_minute:
        await _admit(node, admin.id, quotas.Limits(rpm=1, tpm=0))
    assert int(one_per_minute.value.headers["Retry-After"]) in (50, 51)  # both must leave


async def test_tokens_of_the_window_count_and_retry_after_is_when_enough_have_left(
    node: Node,
) -> None:
    admin = await _admin(node)
    await _calls(node, admin.id, (90, 1000), (40, 30), (5, 30))
    await _admit(node, admin.id, quotas.Limits(rpm=0, tpm=61))
    with pytest.raises(OpenAIError) as refused:
        await _admit(node, admin.id, quotas.Limits(rpm=0, tpm=60))
    assert refused.value.type == "tokens"
    assert "Limit 60, Used 60" in refused.value.detail
    assert int(refused.value.headers["Retry-After"]) in (20, 21)  # the 30 of 40 s ago leave


async def test_limits_take_the_first_level_set(node: Node) -> None:
    admin = await _admin(node)
    model = AssistantModel(alias=CHAT_MODEL, type="chat", rpm=7)
    settings = node.settings.model_copy(update={"assistant_rpm": 100, "assistant_tpm": 5000})
    async with node.db.session() as session:
        limits = await quotas.effective_limits(
            session, settings=settings, user_id=admin.id, model=model
        )
    assert limits == quotas.Limits(rpm=7, tpm=5000, rpm_source="model", tpm_source="node")
    async with node.db.transaction() as session:
        await quotas.set_limit(
            session, audit=node.audit, actor="test", username="admin", model="*", rpm=None, tpm=9
        )
        await quotas.set_limit(
            session, audit=node.audit, actor="test", username="admin", model=CHAT_MODEL,
            rpm=0, tpm=None,
        )  # fmt: skip
    async with node.db.session() as session:
        limits = await quotas.effective_limits(
            session, settings=settings, user_id=admin.id, model=model
        )
    assert limits == quotas.Limits(rpm=0, tpm=9, rpm_source="user", tpm_source="user:*")


def test_models_and_the_node_take_rpm_and_tpm_settings() -> None:
    settings = Settings(
        assistant_rpm=30,
        assistant_tpm=10_000,
        assistant_models=[
            {"alias": CHAT_MODEL, "type": "chat", "rpm": 5, "tpm": 0},
            {"alias": EMBEDDING_MODEL, "type": "embeddings"},
        ],
    )
    chat, embeddings = settings.assistant_models
    assert (chat.rpm, chat.tpm, embeddings.rpm, embeddings.tpm) == (5, 0, None, None)
    assert (settings.assistant_rpm, settings.assistant_tpm) == (30, 10_000)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        AssistantModel(alias="x", type="chat", rpm=-1)


async def test_concurrent_admissions_on_two_engines_never_exceed_the_limit(
    node: Node, settings: Settings
) -> None:
    admin = await _admin(node)
    async with node.db.transaction() as session:
        await quotas.set_limit(
            session, audit=node.audit, actor="test", username="admin", model=CHAT_MODEL,
            rpm=3, tpm=None,
        )  # fmt: skip
    other = Node.open(settings)  # its own engine and pool: what another worker process has
    try:
        assistant = Assistant(settings.assistant_models, owner="test", max_waiting=4)
        principal = Principal(admin.id, "admin", "admin", False, "token")
        meters = [Meter(node, assistant, principal), Meter(other, assistant, principal)]
        outcomes = await asyncio.gather(
            *(meters[i % 2].begin(CHAT_MODEL, "chat/completions") for i in range(10)),
            return_exceptions=True,
        )
    finally:
        await other.close()
    refused = [o for o in outcomes if isinstance(o, OpenAIError)]
    assert len(refused) == 7
    assert {(e.status, e.code) for e in refused} == {(429, "rate_limit_exceeded")}
    assert len(outcomes) - len(refused) == 3
    async with node.db.session() as session:
        pending = (await session.scalars(select(AssistantUsage.status))).all()
    assert pending == ["pending"] * 3
