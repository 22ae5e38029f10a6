"""The documentation stays true to the code: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from rhenus.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_in_configuration_md() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [n for n in Settings.model_fields if f"`RHENUS_{n.upper()}`" not in text]
    assert missing == []
