"""A node whose operator is an external wallet (``init --admin``), on the embedded chain and
on anvil: the node the people and publish commands act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.chain.conftest import ChainUnderTest, anvil_chain  # noqa: F401 - fixture
from tests.support.node import InProcessNode, in_process_node


@pytest.fixture(scope="module")
def operator() -> LocalAccount:
    """The operator's wallet (the system admin and admin of ``main``); it holds no ether."""
    account: LocalAccount = Account.create()
    return account


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def running(
    request: pytest.FixtureRequest, tmp_path: Path, operator: LocalAccount
) -> Iterator[InProcessNode]:
    settings: dict[str, object] = {"epoch_service": False, "sync": False}
    if request.param == "anvil":
        chain: ChainUnderTest = request.getfixturevalue("anvil_chain")
        settings["chain_url"] = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    with in_process_node(
        tmp_path / "node", init={"operator": operator.address}, **settings
    ) as node:
        yield node
