"""The consumer's half of the data plane: pull a started transfer's data to a file, resuming
with ``Range`` after an interruption, and check its sha-256 against the provider's
``Repr-Digest`` before the file takes its name."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx

from rhenus.core.errors import Problem
from rhenus.core.node import Node
from rhenus.dataspace.transfers import service
from rhenus.dataspace.transfers.states import State
from rhenus.trust.client import federation_client

CHUNK = 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes so far, total)


@dataclass(frozen=True)
class Pulled:
    path: Path
    size: int
    sha256: str
    resumed: int  # how many times the download picked up where it stopped


def endpoint_of(address: dict[str, object]) -> tuple[str, str]:
    """(endpoint, bearer token) of a DSP data address; a 502 problem if either is missing."""
    endpoint = str(address.get("endpoint", ""))
    token = ""
    for prop in address.get("endpointProperties", []) or []:  # type: ignore[attr-defined]
        if isinstance(prop, dict) and prop.get("name") == "authorization":
            token = str(prop.get("value", ""))
    if not endpoint or not token:
        raise Problem("the provider's data address has no endpoint or token", status=502)
    return endpoint, token


async def wait_started(node: Node, transfer_id: str, *, patience: float = 60) -> dict[str, object]:
    """The data address once the provider started the transfer; a problem if it ended."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        async with node.db.session() as session:
            tp = await service.get_transfer(session, pid=transfer_id, caller=None)
        if tp.state == State.STARTED and tp.data_address:
            return dict(tp.data_address)
        if service.is_final(tp):
            raise Problem(f"the transfer is {tp.state}: {'; '.join(tp.reason)}", status=409)
        if asyncio.get_running_loop().time() > deadline:
            raise Problem(f"the provider did not start the transfer (state {tp.state})", status=504)
        await asyncio.sleep(0.1)


async def pull_to_file(
    node: Node,
    transfer_id: str,
    dest: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    attempts: int = 5,
) -> Pulled:
    """Download the transfer's data into ``dest`` (via ``dest.part``), resuming on failure."""
    endpoint, token = endpoint_of(await wait_started(node, transfer_id))
    part = dest.with_name(dest.name + ".part")
    resumed = 0
    expected = ""
    total = -1
    async with federation_client(
        node.settings, node.keyring, transport=transport, timeout=httpx.Timeout(60, connect=5)
    ) as client:
        for attempt in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            if total >= 0 and have >= total:
                break
            headers = {"Authorization": f"Bearer {token}"}
            if have:
                headers["Range"] = f"bytes={have}-"
                resumed += 1
            try:
                async with client.stream("GET", endpoint, headers=headers) as response:
                    if response.status_code not in (200, 206):
                        await response.aread()
                        detail = response.json().get("detail", "") if response.content else ""
                        raise Problem(
                            f"the provider refused the download ({response.status_code}): {detail}",
                            status=403 if response.status_code in (401, 403) else 502,
                        )
                    expected = expected or response.headers.get("repr-digest", "")
                    length = int(response.headers.get("content-length", "0"))
                    total = (have if response.status_code == 206 else 0) + length
                    mode = "ab" if response.status_code == 206 else "wb"
                    with part.open(mode) as file:
                        async for chunk in response.aiter_bytes(CHUNK):
                            file.write(chunk)
                            if progress:
                                progress(file.tell(), total)
                break
            except (httpx.TransportError, httpx.RemoteProtocolError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    digest, size = await anyio.to_thread.run_sync(_finish, part, dest, digest_of(expected))
    return Pulled(dest, size, digest, resumed)


def digest_of(header: str) -> str:
    """The hex sha-256 of a ``Repr-Digest: sha-256=:…:`` header, or ``""``."""
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "sha-256" and value.startswith(":") and value.endswith(":"):
            return base64.b64decode(value.strip(":")).hex()
    return ""


def _finish(part: Path, dest: Path, wanted: str) -> tuple[str, int]:
    """Check the whole file's sha-256 (a resumed download was hashed in pieces) and give it
    its name; (digest, size). A mismatch deletes it."""
    h = hashlib.sha256()
    with part.open("rb") as file:
        while block := file.read(CHUNK):
            h.update(block)
    digest = h.hexdigest()
    if wanted and wanted != digest:
        part.unlink()
        raise Problem(f"the data's sha-256 {digest} is not the announced {wanted}", status=502)
    part.replace(dest)
    return digest, dest.stat().st_size
