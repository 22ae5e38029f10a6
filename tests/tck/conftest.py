"""One live node in conformance mode for the whole TCK suite, and the TCK around it.

The node is a real ``rhenus run`` process on plain http (loopback), started once; it seeds the
TCK's fixtures itself (datasets ``CAT0101``…, ``ACN0101``…, agreements ``ATP0101``…,
``ATPC0101``…) and accepts ``Authorization: Bearer tck-secret`` as participant
``TCK_PARTICIPANT``. The callback server is started once too; each test is one case of it
(the ``tck`` fixture). After a test's last step, :meth:`Tck.finish` runs inside the test's call
phase, so that an unexpected message from the node fails the test rather than its teardown.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import httpx
import pytest

from rhenus.demo.nodes import Fleet
from rhenus.trust.did import did_for_url
from tests.tck.callbacks import WAIT, Callbacks
from tests.tck.harness import TOKEN, NodeUnderTest, Tck


@pytest.fixture(scope="session")
def node_under_test(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeUnderTest]:
    home = tmp_path_factory.mktemp("tck") / "node"
    env = {
        "RHENUS_DSP_CONFORMANCE_TOKEN": TOKEN,
        "RHENUS_FEDERATION_INSECURE_HTTP": "true",
        "RHENUS_COMPLIANCE_CACHE_SECONDS": "0",
    }
    with Fleet() as fleet:
        live = fleet.start("tck-node", "Conformance GmbH", home, extra_env=env)
        yield NodeUnderTest(base_url=live.url, agent_id=did_for_url(live.url))


@pytest.fixture(scope="session")
def callbacks() -> Iterator[Callbacks]:
    server = Callbacks()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tck_http() -> Iterator[httpx.Client]:
    """The TCK's OkHttp: JSON, the configured Authorization on every request."""
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=WAIT) as http:
        yield http


@pytest.fixture
def tck(
    request: pytest.FixtureRequest,
    node_under_test: NodeUnderTest,
    callbacks: Callbacks,
    tck_http: httpx.Client,
) -> Iterator[Tck]:
    callbacks.begin(request.node.name)
    try:
        yield Tck(node_under_test, callbacks, tck_http)
    finally:
        callbacks.end()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Run :meth:`Tck.finish` after a case's steps have passed, as part of the test."""
    result = yield
    tck = getattr(item, "funcargs", {}).get("tck")
    if isinstance(tck, Tck):
        tck.finish()
    return result
