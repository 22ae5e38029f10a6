"""The migrations create exactly the schema the models describe (nothing left to autogenerate)."""

from __future__ import annotations

from alembic import command

from rhenus.migrations import alembic_config, upgrade


def test_models_and_migrations_agree(db_url: str) -> None:
    upgrade(db_url)
    command.check(alembic_config(db_url))  # raises if autogenerate would find a difference


def test_migrations_downgrade_to_nothing_and_back(db_url: str) -> None:
    config = alembic_config(db_url)
    command.downgrade(config, "base")
    upgrade(db_url)
    command.check(config)
