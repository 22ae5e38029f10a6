"""Run the ``rhenus`` CLI in-process against a test node's settings."""

from __future__ import annotations

from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.config import Settings


def node_env(settings: Settings) -> dict[str, str]:
    return {
        "RHENUS_HOME": str(settings.home),
        "RHENUS_DATABASE_URL": settings.database_url.get_secret_value(),
        "RHENUS_BLOBS_URL": settings.blobs_url,
        "RHENUS_NODE_NAME": settings.node_name,
        "RHENUS_AUDIT_CHECKPOINT_EVERY": str(settings.audit_checkpoint_every),
        "COLUMNS": "200",
    }


def rhenus(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``rhenus ARGS``; returns (exit code, stdout+stderr)."""
    result = CliRunner().invoke(app, list(args), env={**node_env(settings), **(env or {})})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
