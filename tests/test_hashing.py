"""node.hashing: keccak256 and the EIP-55 spelling agree with eth_utils."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from node.hashing import compute_eip55_address, keccak256


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_keccak256_matches_eth_utils(data: bytes) -> None:
    assert keccak256(data) == keccak(data)
    assert type(keccak256(data)) is bytes


def test_compute_eip55_address_matches_eth_utils_on_random_addresses() -> None:
    rng = random.Random(55)
    for _ in range(5_000):
        address = rng.randbytes(20)
        assert compute_eip55_address(address) == to_checksum_address(address)


@given(st.binary(min_size=20, max_size=20))
def test_compute_eip55_address_matches_eth_utils(address: bytes) -> None:
    assert compute_eip55_address(address) == to_checksum_address(address)


def test_compute_eip55_address_known_values() -> None:
    # EIP-55's own examples
    for spelled in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ):
        assert compute_eip55_address(bytes.fromhex(spelled[2:])) == spelled
    assert compute_eip55_address(bytes(20)) == "0x" + "0" * 40


@pytest.mark.parametrize("size", [0, 19, 21, 32])
def test_compute_eip55_address_refuses_other_lengths(size: int) -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        compute_eip55_address(bytes(size))
