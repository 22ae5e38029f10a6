"""A serving node migrates in a child process and loads only what serving needs (issue #6).

Alembic, numpy, Jinja2 and Babel cost a server resident memory it never gives back; the
server must not import them until a request needs them (numpy: a search or an embedding;
Jinja2 and Babel: a page).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from rhenus.migrations import (
    MigrationError,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_in_child,
)

RHENUS = str(Path(sys.executable).parent / "rhenus")
DEFERRED = ("alembic", "mako", "numpy", "jinja2", "babel")


def test_upgrade_in_child_brings_the_schema_to_head(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "base")
    assert asyncio.run(current_revision(db_url)) is None
    upgrade_in_child(db_url)
    assert asyncio.run(current_revision(db_url)) == head_revision()


def test_a_failing_migration_in_the_child_raises_its_error_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'rhenus.db'}"
    with pytest.raises(MigrationError) as caught:
        upgrade_in_child(url)
    message = str(caught.value)
    assert message.startswith("migrating the database to 'head' failed: OperationalError: ")
    assert "unable to open database file" in message
    assert "\n" not in message
    assert "Traceback (most recent call last)" in caught.value.output


def test_run_stops_with_the_migration_error_when_a_migration_fails(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RHENUS_HOME": str(tmp_path / "node"),
        "RHENUS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'rhenus.db'}",
        "COLUMNS": "400",
    }
    done = subprocess.run(
        [RHENUS, "run"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("The node did not start: migrating the database to 'head' failed:")
    assert "unable to open database file" in last
    assert "Rhenus serving on" not in done.stdout


def test_the_serving_process_loads_no_migration_machinery_numpy_jinja2_or_babel(
    tmp_path: Path,
) -> None:
    # What `rhenus run` imports and does before uvicorn serves, in a fresh interpreter.
    script = f"""
import json, sys
import rhenus.cli
from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.ops.setup import initialise

settings = Settings(home={str(tmp_path / "node")!r})
assert initialise(settings, migrate_in_child=True).admin_password
create_app(settings)
print(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
