"""`make demo` must always run: the story passes end to end on live nodes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_tells_the_story_to_the_end() -> None:
    rhenus = str(Path(sys.executable).parent / "rhenus")
    result = subprocess.run(
        [rhenus, "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home())},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo complete" in result.stdout
    assert result.stdout.count(" verified did:web:127.0.0.1%3A") == 2
    assert result.stdout.count("compliant (labels: sovereign)") == 3
    assert re.search(r"fr-mininterieur crawled did:web:\S+: ok, 2 datasets", result.stdout)
    # The French query "hôpitaux" finds a German title through the French "hôpital".
    assert "'Krankenhäuser und Betten nach Bezirk' from Senatsverwaltung" in result.stdout
    # Compute-to-data: the aggregate of the groups of at least k = 5 patients, nothing else.
    assert re.search(r"Mitte\W+24\W+\d+\.\d\W+\d+\.\d", result.stdout), result.stdout
    assert re.search(r"Pankow\W+18\W+\d+\.\d\W+\d+\.\d", result.stdout), result.stdout
    assert not re.search(r"Spandau\W+3\W", result.stdout)
    assert "a row-level query (SELECT *) → refused: the provider refused" in result.stdout
    # A pool: one aggregate over Berlin's and Bayern's patients (45 + 43), merged at Paris.
    assert re.search(r"de-bayern: published urn:uuid:\S+ \(compute only", result.stdout)
    assert re.search(
        r"merged at fr-mininterieur.*\n(.*\n){3}│ 88\W+\d+\.\d\d\W+\d+\.\d\d", result.stdout
    )
    for node in ("de-berlin", "de-bayern"):
        assert re.search(rf"│ {node}\W+did:web:\S+\W+answered\W+1\W+[0-9a-f]{{16}}…", result.stdout)
    assert "the mean age of all 88 patients of both Länder, exactly" in result.stdout
    # The bundled model answered, and its usage was counted.
    assert re.search(
        r"smollm2-135m: .*\n  → '.+'\n  \d+ prompt \+ [1-9]\d* completion", result.stdout
    )
    # A grounded answer: the question on a passport's fee cites the passport's guide.
    assert "3 documents indexed: passeport.md, carte-identite.md" in result.stdout
    assert re.search(
        r"\"Combien coûte le timbre fiscal d'un passeport pour un adulte \?\"\n  → .+\n"
        r"  \[1\] passeport\.md, no pages, «Passeport biométrique / Coût»",
        result.stdout,
    ), result.stdout
    # Messaging: a room of the node's Matrix homeserver, restricted by default as in Tchap.
    assert "created 'Cellule de crise' (access rule restricted)" in result.stdout
    assert (
        "long-polling sync received: 'Bonjour Paul, point de situation à 15 h ?'" in result.stdout
    )
    for node in ("eu-trust-anchor", "fr-mininterieur", "de-berlin", "de-bayern"):
        assert re.search(rf"{node}\W+\d+\W+[1-9]\d*\W+intact", result.stdout), result.stdout
