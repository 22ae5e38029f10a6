"""`rhenus datasets`: publish a file from the shell, list, withdraw."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import service
from tests.cli_support import rhenus


def test_add_publishes_an_encrypted_file_with_its_offer(
    settings: Settings, initialised: str, tmp_path: Path
) -> None:
    data = tmp_path / "lits.csv"
    data.write_text("hopital;lits\nPitié-Salpêtrière;1800\n")
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "permission": [
                    {
                        "action": "use",
                        "constraint": [
                            {
                                "leftOperand": "purpose",
                                "operator": "eq",
                                "rightOperand": "statistics",
                            }
                        ],
                    }
                ]
            }
        )
    )
    code, out = rhenus(
        settings,
        "datasets",
        "add",
        str(data),
        "--title",
        "fr:Lits d'hôpital",
        "--title",
        "de:Krankenhausbetten",
        "--policy",
        str(policy),
        "--theme",
        "HEAL",
        "--eu-only",
    )
    assert code == 0, out
    assert "Published urn:uuid:" in out

    async def check() -> None:
        node = Node.open(settings)
        try:
            async with node.db.session() as session:
                [dataset] = await service.list_datasets(session)
                offers = await service.offers_of(session, dataset_ids=[dataset.id])
            assert dataset.title == {"fr": "Lits d'hôpital", "de": "Krankenhausbetten"}
            assert dataset.access["eu_only"] is True
            assert dataset.media_type == "text/csv"
            assert offers[dataset.id][0].policy["permission"][0]["action"] == "use"
            assert dataset.sha256 is not None
            assert await node.blobs.read_bytes(dataset.sha256) == data.read_bytes()
        finally:
            await node.close()

    asyncio.run(check())
    code, out = rhenus(settings, "datasets", "list")
    assert "published" in out
    assert "EU" in out


def test_add_refuses_a_bad_theme_and_a_broken_policy(
    settings: Settings, initialised: str, tmp_path: Path
) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, out = rhenus(
        settings, "datasets", "add", str(data), "--title", "x", "--policy", str(broken)
    )
    assert code == 2
    assert "broken.json" in out
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"permission": [{"action": "use"}]}))
    code, out = rhenus(
        settings,
        "datasets",
        "add",
        str(data),
        "--title",
        "x",
        "--policy",
        str(good),
        "--theme",
        "MOON",
    )
    assert code == 1
    assert "EU data theme" in out


def test_a_policy_without_rules_is_refused(
    settings: Settings, initialised: str, tmp_path: Path
) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"@type": "Offer"}))
    code, out = rhenus(
        settings, "datasets", "add", str(data), "--title", "x", "--policy", str(empty)
    )
    assert code == 1
    assert "the policy has no permission" in out
