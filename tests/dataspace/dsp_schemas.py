"""The published DSP 2025-1 JSON schemas (``../shared/dsp-2025-1``), ready to validate against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator
from referencing import Registry, Resource

SHARED = Path(__file__).resolve().parents[3] / "shared" / "dsp-2025-1"


@cache
def _registry() -> Registry[Any]:
    resources = []
    for path in SHARED.rglob("*-schema.json"):
        schema = json.loads(_mend(path.read_text()))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _mend(text: str) -> str:
    """The published transfer-error schema points at ``#definitions/…``, not a JSON pointer
    (``#/definitions/…``) as JSON Schema requires; read it as the pointer it means."""
    return text.replace("#definitions/", "#/definitions/")


def validate(instance: Any, schema: str) -> None:
    """Raise ``ValidationError`` unless ``instance`` satisfies ``schema`` (a path such as
    ``catalog/catalog-schema.json``)."""
    document = json.loads(_mend((SHARED / schema).read_text()))
    Draft201909Validator(document, registry=_registry()).validate(instance)
