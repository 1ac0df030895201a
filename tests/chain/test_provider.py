"""FailoverProvider against real anvil behind the fault-injecting proxy (tests/support/rpc_proxy).

Each fault is switched on at the proxy and must be survived -- and must have happened (the
proxy's counters), so a test cannot pass by never meeting its fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from web3 import Web3

from node.chain.backend import open_rpc
from node.chain.provider import ChainUnavailable, FailoverProvider, parse_retry_after
from tests.chain.conftest import ChainUnderTest, spawn_anvil
from tests.support.rpc_proxy import Faults, RpcProxy

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def anvil() -> Iterator[ChainUnderTest]:
    with spawn_anvil() as chain:
        yield chain


@pytest.fixture
def upstream(anvil: ChainUnderTest) -> str:
    return str(anvil.w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_fails_over_from_a_down_endpoint_and_stays(upstream: str) -> None:
    with RpcProxy(upstream, Faults(down=True)) as down, RpcProxy(upstream) as good:
        provider = FailoverProvider([down.url, good.url], backoff_base=0.05)
        w3 = Web3(provider)
        numbers = [w3.eth.block_number for _ in range(5)]
        assert numbers == sorted(numbers)
        assert down.counts["down"] == 1  # asked once, then the good one is kept
        assert good.counts["requests"] == 5
        assert provider.failovers == 1
        provider.close()


def test_honours_retry_after_on_its_only_endpoint(upstream: str) -> None:
    with RpcProxy(upstream, Faults(rate_limit_every=2, retry_after="1")) as limited:
        provider = FailoverProvider([limited.url])
        w3 = Web3(provider)
        started = time.monotonic()
        for _ in range(3):  # requests 1, 2 (429), 3 (the retry), 4 (429), 5
            assert w3.eth.block_number >= 0
        elapsed = time.monotonic() - started
        assert limited.counts["429"] == 2
        assert elapsed >= 2.0  # waited out both Retry-After: 1
        assert provider.waited_seconds >= 1.9  # measured from the 429, not from the request
        provider.close()


def test_uses_another_endpoint_while_one_is_rate_limited(upstream: str) -> None:
    with (
        RpcProxy(upstream, Faults(rate_limit_every=1, retry_after="30")) as limited,
        RpcProxy(upstream) as good,
    ):
        provider = FailoverProvider([limited.url, good.url])
        w3 = Web3(provider)
        started = time.monotonic()
        for _ in range(4):
            assert w3.eth.block_number >= 0
        assert time.monotonic() - started < 5  # did not sit out the 30 s
        assert limited.counts["429"] == 1  # and did not ask it again before its Retry-After
        provider.close()


def test_survives_timeouts_and_gives_up_within_its_budget(upstream: str) -> None:
    faults = Faults(timeout_every=2, timeout_seconds=0.6)
    with RpcProxy(upstream, faults) as slow:
        provider = FailoverProvider([slow.url], timeout=0.3, backoff_base=0.05)
        w3 = Web3(provider)
        for _ in range(3):
            assert w3.eth.block_number >= 0
        assert slow.counts["timeout"] >= 1
        faults.down = True
        started = time.monotonic()
        give_up = Web3(FailoverProvider([slow.url], max_attempts=3, backoff_base=0.05))
        with pytest.raises(ChainUnavailable):
            _ = give_up.eth.block_number
        assert time.monotonic() - started < 2
        provider.close()


def test_open_rpc_takes_several_urls(upstream: str) -> None:
    with RpcProxy(upstream, Faults(down=True)) as down:
        backend = open_rpc(f"{down.url}, {upstream}")
        try:
            assert backend.chain_id == 31337
            assert backend.rpc_url == f"{down.url},{upstream}"
            assert backend.block_number() >= 0
        finally:
            backend.close()


def test_asks_again_for_a_block_a_lagging_backend_has_not_got(
    anvil: ChainUnderTest, upstream: str
) -> None:
    anvil.mine(5)
    with RpcProxy(upstream, Faults(lag_every=2, lag_blocks=3)) as lagging:
        provider = FailoverProvider([lagging.url])
        w3 = Web3(provider)
        heads = [int(w3.eth.block_number) for _ in range(2)]  # one lagging answer, one not
        head = max(heads)
        assert min(heads) == head - 3
        for number in range(head - 4, head + 1):
            assert w3.eth.get_block(number)["number"] == number  # never a null for these
        assert provider.lagging_retries > 0
        provider.close()


def test_asks_the_chain_id_once(anvil: ChainUnderTest, upstream: str) -> None:
    with RpcProxy(upstream) as proxy:
        provider = FailoverProvider([proxy.url])
        w3 = Web3(provider)
        assert [w3.eth.chain_id for _ in range(3)] == [31337] * 3
        for _ in range(4):
            w3.eth.call({"to": anvil.w3.eth.accounts[0], "data": "0x"})
        assert proxy.counts["method:eth_chainId"] == 1
        assert proxy.counts["method:eth_call"] == 4
        provider.close()


def test_requests_in_flight_together_count_as_one_failure(upstream: str) -> None:
    """Eight threads time out together: one failure counted, the first backoff step (before,
    each thread's failure doubled the cooldown: 8 threads reached the longest at once)."""
    faults = Faults(timeout_every=1, timeout_seconds=4.0)
    with RpcProxy(upstream, faults) as slow:
        provider = FailoverProvider([slow.url], timeout=2.0, max_attempts=1, backoff_base=0.25)
        w3 = Web3(provider)
        gate = threading.Barrier(8)

        def ask() -> None:
            gate.wait()
            with pytest.raises(ChainUnavailable):
                _ = w3.eth.block_number

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        endpoint = provider.endpoints[0]
        assert slow.counts["timeout"] == 8 and endpoint.errors == 8
        assert endpoint.failures == 1  # all sent before the first of them failed
        provider.close()


def _cools_down_long(url: str, waits: list[float]) -> FailoverProvider:
    """A provider over ``url`` that one failure cools down for 30 s; its waits are recorded in
    ``waits``, not slept."""
    return FailoverProvider(
        [url], max_attempts=1, backoff_base=30.0, backoff_max=30.0, sleep=waits.append
    )


def test_an_answer_ends_the_cooldown_for_every_request(upstream: str) -> None:
    """A request that answers after the endpoint failed ends its cooldown: the next request is
    sent at once (before, every other request sat out the rest of the backoff)."""
    faults = Faults(down=True)
    with RpcProxy(upstream, faults) as flaky:
        waits: list[float] = []
        provider = _cools_down_long(flaky.url, waits)
        w3 = Web3(provider)
        with pytest.raises(ChainUnavailable):
            _ = w3.eth.block_number  # 503: cooling down for 30 s
        faults.down = False
        assert w3.eth.block_number >= 0  # waited (the sleep is recorded, not slept), answered
        assert len(waits) == 1 and waits[0] > 25
        assert w3.eth.block_number >= 0
        assert len(waits) == 1  # no second wait: the answer ended the cooldown
        assert provider.endpoints[0].failures == 0
        provider.close()


def test_a_probe_answer_ends_the_cooldown(upstream: str) -> None:
    """``note_answered`` (the ``/health`` probe's answer over the same URL) ends the cooldown;
    an answer to a request sent before the last failure does not."""
    faults = Faults(down=True)
    with RpcProxy(upstream, faults) as flaky:
        waits: list[float] = []
        provider = _cools_down_long(flaky.url, waits)
        w3 = Web3(provider)
        before = time.monotonic()
        with pytest.raises(ChainUnavailable):
            _ = w3.eth.block_number
        provider.note_answered(flaky.url, before)  # sent before the failure: tells nothing
        assert provider.endpoints[0].ready_at > time.monotonic() + 25
        faults.down = False
        provider.note_answered(flaky.url, time.monotonic())
        assert w3.eth.block_number >= 0
        assert waits == [] and provider.waited_seconds == 0
        provider.close()
