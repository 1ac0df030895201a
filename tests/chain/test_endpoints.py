"""node.chain.endpoints: the endpoint syntax (as the registry's) and the peer address policy."""

from __future__ import annotations

import pytest

from node.chain.endpoints import (
    PeerPolicy,
    UnsafeEndpoint,
    check_endpoint_syntax,
    compute_peer_policy,
    is_public_host,
)

GOOD = ("http://node1:8000", "https://collegium.example.org/", "http://[2001:db8::1]:80")
BAD = (
    "", "ftp://x", "HTTP://x", "http://", "http:///x", "http://a@b", "http://a?b", "http://a#",
    "http://a b", "http://a\\b", "http://a\tb", "http://é.example", "http://a:99999",
    "http://a:port", "https://a/path", "http://" + "a" * 250,
)  # fmt: skip


@pytest.mark.parametrize("endpoint", GOOD)
def test_well_formed_endpoints_pass(endpoint: str) -> None:
    assert check_endpoint_syntax(endpoint) == endpoint.rstrip("/")


@pytest.mark.parametrize("endpoint", BAD)
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(UnsafeEndpoint):
        check_endpoint_syntax(endpoint)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
     "0.0.0.0", "::1", "[::1]", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1",
     "localhost", "LOCALHOST.", "api.localhost", "224.0.0.1"],
)  # fmt: skip
def test_non_public_hosts(host: str) -> None:
    assert not is_public_host(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700::1111", "node1", "collegium.example"])
def test_public_hosts(host: str) -> None:
    assert is_public_host(host)


def test_policy_filters_peers_and_dev_mode_allows_private_ranges() -> None:
    peers = {"a": "http://127.0.0.1:8001", "b": "http://8.8.8.8:80/", "c": "http://x?y",
             "d": "http://10.1.2.3:8000"}  # fmt: skip
    assert PeerPolicy().filter(peers) == {"b": "http://8.8.8.8:80"}
    assert PeerPolicy(allowed_hosts=frozenset({"10.1.2.3"})).filter(peers) == {
        "b": "http://8.8.8.8:80", "d": "http://10.1.2.3:8000",
    }  # fmt: skip
    dev = PeerPolicy(allow_private=True)
    assert set(dev.filter(peers)) == {"a", "b", "d"}  # syntax is checked in dev mode too


def test_dev_mode_default_follows_the_chain() -> None:
    assert compute_peer_policy(None, [], chain_kind="embedded", chain_url=None).allow_private
    for url in ("http://127.0.0.1:8545", "http://localhost:8545", "http://[::1]:8545"):
        assert compute_peer_policy(None, [], chain_kind="rpc", chain_url=url).allow_private
    for url in ("http://chain:8545", "https://rpc.example.org"):
        assert not compute_peer_policy(None, [], chain_kind="rpc", chain_url=url).allow_private
    assert not compute_peer_policy(False, [], chain_kind="embedded", chain_url=None).allow_private
    assert compute_peer_policy(True, [], chain_kind="rpc", chain_url="https://x").allow_private
    policy = compute_peer_policy(None, [" Node1 ", ""], chain_kind="rpc", chain_url="http://c:1")
    assert policy.allowed_hosts == frozenset({"node1"})
