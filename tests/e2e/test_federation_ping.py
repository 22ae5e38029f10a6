"""Two live nodes (real processes on loopback) call each other with signed requests."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.demo import live_node


def test_each_node_verifies_the_others_signed_request() -> None:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        paris = stack.enter_context(live_node("fr-mininterieur", "Ministère", root / "paris"))
        berlin = stack.enter_context(live_node("de-berlin", "Land Berlin", root / "berlin"))
        for sender, receiver in ((paris, berlin), (berlin, paris)):
            result = CliRunner().invoke(
                app, ["federation", "ping", receiver.url], env={**sender.env, "COLUMNS": "200"}
            )
            assert result.exit_code == 0, result.output
            sender_did = "did:web:127.0.0.1%3A" + sender.env["RHENUS_PORT"]
            assert f"verified this node as {sender_did}" in result.output


def test_plain_http_is_refused_unless_allowed_and_loopback(tmp_path: Path) -> None:
    env = {"RHENUS_HOME": str(tmp_path), "COLUMNS": "200"}
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    cases = [
        ({}, "http://127.0.0.1:9"),  # loopback, but insecure HTTP not allowed
        ({"RHENUS_FEDERATION_INSECURE_HTTP": "true"}, "http://peer.invalid:8080"),
    ]
    for extra, target in cases:
        result = CliRunner().invoke(app, ["federation", "ping", target], env={**env, **extra})
        assert result.exit_code == 1
        assert "refusing plain HTTP" in result.output
