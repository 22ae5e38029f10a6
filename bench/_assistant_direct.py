"""Part A's measuring tools for ``bench/assistant.py``: timed streams and the model in-process.

``Timer`` marks the pieces of a streamed answer as they arrive and becomes a ``Run`` (time to
first token, decode rate); ``Direct`` loads the default chat model with llama-cpp-python the way
the node's local backend does, so part A can set the node's answers against the bare model's.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import Any

from rhenus.assistant.backends import resolve_path
from rhenus.config import DEFAULT_ASSISTANT_MODELS, AssistantModel

CHAT: AssistantModel = next(m for m in DEFAULT_ASSISTANT_MODELS if m.type == "chat")
MESSAGES = [
    {"role": "system", "content": "Tu es l'assistant d'un service public. Réponds en français."},
    {
        "role": "user",
        "content": "Explique étape par étape comment renouveler une carte d'identité, "
        "quelles pièces apporter à la mairie et combien de temps cela prend.",
    },
]
SEED = 7


@dataclass
class Run:
    """One streamed generation, timed from the call."""

    ttft: float  # seconds to the first non-empty piece
    decode: float  # seconds from the first piece to the last
    tokens: int
    text: str

    @property
    def rate(self) -> float:
        return (self.tokens - 1) / self.decode if self.decode > 0 else float("nan")


@dataclass
class Timer:
    """Marks pieces of text as they arrive; becomes a :class:`Run`."""

    started: float = field(default_factory=time.perf_counter)
    first: float = 0.0
    last: float = 0.0
    pieces: list[str] = field(default_factory=list)

    def piece(self, text: str) -> None:
        if text:
            self.last = time.perf_counter()
            self.first = self.first or self.last
            self.pieces.append(text)

    def run(self, tokens: int) -> Run:
        return Run(self.first - self.started, self.last - self.first, tokens, "".join(self.pieces))


class Direct:
    """llama-cpp-python in this process, loaded as the node's local backend loads it."""

    def __init__(self) -> None:
        from llama_cpp import Llama, llama_model_get_vocab, llama_vocab_is_eog
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = resolve_path(CHAT.path)
        self.llama = Llama(
            model_path=str(self.path),
            n_ctx=CHAT.context_size,
            n_threads=CHAT.threads or None,
            n_threads_batch=CHAT.batch_threads or None,
            verbose=False,
        )
        llama = self.llama

        def text_of(token: int) -> str:
            return llama.detokenize([token], special=True).decode()

        self.formatter: Any = Jinja2ChatFormatter(
            template=llama.metadata["tokenizer.chat_template"],
            eos_token=text_of(llama.token_eos()),
            bos_token=text_of(llama.token_bos()),
        )
        vocab = llama_model_get_vocab(llama.model)
        self.eog = {t for t in range(llama.n_vocab()) if llama_vocab_is_eog(vocab, t)}
        self.eog.add(llama.token_eos())

    def chat_completion(self, max_tokens: int) -> Run:
        """``create_chat_completion(stream=True)``: one chunk per token (no stop sequences)."""
        timer = Timer()
        self.llama.reset()  # type: ignore[no-untyped-call]  # a fresh state, as the node's
        chunks = 0
        stream = self.llama.create_chat_completion(
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            max_tokens=max_tokens,
            temperature=0.0,
            top_p=1.0,
            top_k=40,
            min_p=0.05,
            repeat_penalty=1.0,
            seed=SEED,
        )
        for chunk in stream:
            delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index]
            content = delta.get("content")
            if content:
                chunks += 1
                timer.piece(content)
        return timer.run(chunks)

    def prompt(self) -> list[int]:
        """The prompt's tokens, chat template applied (as the node's backend does it)."""
        rendered = self.formatter(messages=MESSAGES)
        return self.llama.tokenize(
            rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
        )

    def generate(self, max_tokens: int) -> Run:
        """The bare token loop: template, tokenize, ``Llama.generate``, detokenize each token."""
        timer = Timer()
        llama = self.llama
        prompt = self.prompt()
        llama.reset()  # type: ignore[no-untyped-call]
        llama.set_seed(SEED)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        tokens = 0
        stream = llama.generate(
            prompt, top_k=40, top_p=1.0, min_p=0.05, temp=0.0, repeat_penalty=1.0, reset=False
        )
        for token in stream:
            if token in self.eog:
                break
            tokens += 1
            timer.piece(decoder.decode(llama.detokenize([token])))
            if tokens >= max_tokens:
                break
        stream.close()
        return timer.run(tokens)
