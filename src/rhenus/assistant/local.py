"""Chat models in GGUF files, run in-process by llama-cpp-python (llama.cpp).

The weights are loaded once per process and shared by every app of the process; the chat
template is the GGUF file's own (``tokenizer.chat_template``), rendered by llama-cpp-python's
Jinja2 formatter exactly as its ``create_chat_completion`` does.

The generation loop is ours rather than ``create_chat_completion``'s because OpenAI's API
needs what that call does not give when streaming: the exact number of tokens generated
(for ``usage`` in the last chunk), and a way to stop at once when the client goes away.
"""

from __future__ import annotations

import atexit
import codecs
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rhenus.assistant.backends import (
    BackendUnavailable,
    BadMessages,
    ChatParams,
    Finished,
    PromptTooLong,
    resolve_path,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

# (file, context size, threads, batch threads) -> the loaded model and the lock that serialises
# its use.
_LOADED: dict[tuple[str, int, int, int], tuple[Llama, threading.Lock]] = {}
_LOADING = threading.Lock()
# llama.cpp's own sampling defaults (its server's), kept under OpenAI's temperature and top_p.
_TOP_K = 40
_MIN_P = 0.05


def _free_all() -> None:
    """Free the loaded models while llama-cpp-python's module is still whole: left to
    ``Llama.__del__`` at interpreter teardown, freeing fails noisily on half-unloaded globals."""
    with _LOADING:
        for llama, _ in _LOADED.values():
            llama.close()
        _LOADED.clear()


def _load(
    path: Path, context_size: int, threads: int, batch_threads: int
) -> tuple[Llama, threading.Lock]:
    key = (str(path), context_size, threads, batch_threads)
    with _LOADING:
        if key not in _LOADED:
            if not _LOADED:
                atexit.register(_free_all)
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise BackendUnavailable(
                    "llama-cpp-python is not installed here (`make install` builds it)"
                ) from exc
            # llama-cpp-python's own default: half the cores for decoding.
            threads = threads or max((os.cpu_count() or 2) // 2, 1)
            llama = Llama(
                model_path=str(path),
                n_ctx=context_size,
                n_threads=threads,
                # Every core by default (llama.cpp's): an 81-token prompt takes 0.31 s on 2 cores
                # and 0.54 s on one (bench/assistant.py, quiet machine). On a machine shared
                # with other busy processes, fewer threads avoid waiting on a preempted one.
                n_threads_batch=batch_threads or None,
                verbose=False,
            )
            _LOADED[key] = (llama, threading.Lock())
        return _LOADED[key]


class LlamaChat:
    """A GGUF chat model (the :class:`~rhenus.assistant.backends.ChatBackend` of llama.cpp)."""

    def __init__(
        self, *, path: str, context_size: int, threads: int, batch_threads: int = 0
    ) -> None:
        self.path = path
        self.context_size = context_size
        self.threads = threads
        self.batch_threads = batch_threads
        self._llama: Llama | None = None
        self._lock = threading.Lock()
        self._formatter: Any = None
        self._eog: frozenset[int] = frozenset()

    def load(self) -> None:
        if self._llama is not None:
            return
        llama, lock = _load(
            resolve_path(self.path), self.context_size, self.threads, self.batch_threads
        )
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendUnavailable(f"{self.path} has no chat template in its metadata")

        def text_of(token: int) -> str:
            return llama.detokenize([token], special=True).decode() if token >= 0 else ""

        eos = llama.token_eos()
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=text_of(eos), bos_token=text_of(llama.token_bos())
        )
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        # End-of-generation tokens (<|im_end|>, <|endoftext|>, …): the model's, not only EOS.
        self._eog = frozenset(
            t for t in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
        ) | {eos}
        self._lock = lock
        self._llama = llama

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The tokens the model reads for ``messages``, chat template applied."""
        self.load()
        assert self._llama is not None
        try:
            rendered = self._formatter(messages=messages)
        except Exception as exc:  # the template's raise_exception(), or a Jinja error
            raise BadMessages(f"the model's chat template refused the messages: {exc}") from exc
        return self._llama.tokenize(
            rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
        )

    def generate(self, params: ChatParams, cancel: threading.Event) -> Iterator[str | Finished]:
        prompt = self.prompt_tokens(params.messages)
        llama = self._llama
        assert llama is not None
        room = self.context_size - len(prompt)
        if room <= 0:
            raise PromptTooLong(len(prompt), self.context_size)
        limit = min(params.max_tokens or room, room)
        seed = params.seed if params.seed is not None else secrets.randbits(32)
        # A request that asks for reproducible text (a seed, or greedy decoding) is evaluated
        # from a fresh state: reusing the previous request's prompt prefix re-evaluates its
        # last token alone, in other kernels whose rounding can tip a near tie. Others reuse
        # it, which spares a conversation's earlier turns a new evaluation.
        fresh = params.seed is not None or params.temperature == 0
        with self._lock:
            if fresh:
                llama.reset()  # type: ignore[no-untyped-call]
            llama.set_seed(seed)
            yield from self._sample(llama, prompt, params, limit, cancel, fresh)

    def _sample(
        self,
        llama: Llama,
        prompt: list[int],
        params: ChatParams,
        limit: int,
        cancel: threading.Event,
        fresh: bool,
    ) -> Iterator[str | Finished]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = [s for s in params.stop if s]
        # Text not yet sent because it might be the start of a stop sequence.
        held = ""
        generated = 0
        reason: Literal["stop", "length"] = "length"
        stopped_by_sequence = False
        tokens = llama.generate(
            prompt,
            top_k=_TOP_K,
            top_p=params.top_p,
            min_p=_MIN_P,
            temp=params.temperature,
            repeat_penalty=1.0,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            # reset=True looks for the longest prefix already evaluated and keeps it.
            reset=not fresh,
        )
        try:
            for token in tokens:
                if token in self._eog:
                    reason = "stop"
                    break
                generated += 1
                held += decoder.decode(llama.detokenize([token]))
                cut = _first_stop(held, stops)
                if cut is not None:
                    held = held[:cut]
                    reason, stopped_by_sequence = "stop", True
                    break
                keep = _stop_prefix_length(held, stops)
                if len(held) > keep:
                    yield held[: len(held) - keep]
                    held = held[len(held) - keep :]
                if generated >= limit or cancel.is_set():
                    break
        finally:
            tokens.close()
        if not stopped_by_sequence:
            held += decoder.decode(b"", final=True)
        if held:
            yield held
        yield Finished(reason, len(prompt), generated)


def _first_stop(text: str, stops: list[str]) -> int | None:
    """Where the earliest stop sequence in ``text`` begins, if any."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """The longest end of ``text`` that is the beginning of a stop sequence."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest
