"""The documentation stays true to the code: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from rhenus.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_in_configuration_md() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [n for n in Settings.model_fields if f"`RHENUS_{n.upper()}`" not in text]
    assert missing == []


def _json_blocks(text: str) -> list[dict[str, object]]:
    import json
    import re

    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.S)]


def test_trust_md_credentials_have_the_shape_the_code_issues(tmp_path: Path) -> None:
    from rhenus.core.keys import Keyring
    from rhenus.trust import credentials

    issued = credentials.issue(
        keyring=Keyring.create(tmp_path / "k"),
        did="did:web:x.test",
        types=[],
        subject={"id": "did:web:x.test"},
        credential_id="https://x.test/c",
    )
    fresh = credentials.decode_unverified(issued)
    examples = [b for b in _json_blocks((DOCS / "trust.md").read_text()) if "issuer" in b]
    assert len(examples) == 2
    for example in examples:
        assert set(fresh) <= set(example)
        assert example["@context"] == fresh["@context"]
