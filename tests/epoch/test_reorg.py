"""The epoch service after a reorg, on anvil (``anvil_reorg``: the replaced blocks' transactions
are gone, not back in the pool).

A reorg the chain follower reports (:meth:`EpochService.note_fork`) makes the service forget
the epochs computed above the fork and its attestations there: it fixes a dropped seed again,
recomputes the epoch (a replaced boundary block is another seed, so another root) and attests
again, once. A reorg too shallow for the follower is caught by reading the attestation back
once it is ``confirmations`` deep.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from node.chain.backend import ChainBackend, open_rpc
from node.chain.registry import Registry, compute_roles_mask
from node.epoch import EpochService
from tests.chain.conftest import ChainUnderTest, spawn_anvil

EPOCH_PERIOD = 12
CONFIRMATIONS = 2
ROLES_ALL = compute_roles_mask(("fe_system", "fe_subsystem", "be_system", "be_subsystem"))

pytestmark = pytest.mark.anvil


@dataclass
class Net:
    chain: ChainUnderTest
    backend: ChainBackend
    registry: Registry  # the node's, signing with its key
    reader: Registry  # no key

    def reorg(self, depth: int) -> None:
        """Replace the last ``depth`` blocks with empty ones (their transactions are lost)."""
        answer = self.chain.w3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
        assert "error" not in answer, answer

    def head(self) -> int:
        return int(self.chain.w3.eth.block_number)

    def to_next_epoch(self) -> int:
        """Mine up to one block past the next boundary; return that epoch."""
        epoch = self.reader.current_epoch()
        self.chain.mine_to(self.reader.epoch_start_block(epoch + 1) + 1)
        return epoch + 1

    def attested_events(self, epoch: int) -> int:
        """Return how many ``Attested(epoch, node)`` events of this node the chain holds."""
        logs = self.reader.contract.events.Attested().get_logs(from_block=0)
        node = str(self.registry.account.address)  # type: ignore[union-attr]
        return sum(1 for x in logs if int(x.args.epoch) == epoch and x.args.node == node)


@pytest.fixture
def net() -> Iterator[Net]:
    with spawn_anvil() as chain:
        account = chain.new_account()
        backend = open_rpc(str(chain.w3.provider.endpoint_uri))  # type: ignore[attr-defined]
        try:
            address = Registry.deploy(backend.w3, account, EPOCH_PERIOD).address
            registry = Registry(backend.w3, address, account)
            registry.create_subsystem("main")
            registry.register_node("http://main.invalid", 4, ROLES_ALL, "main")
            yield Net(chain, backend, registry, Registry(backend.w3, address))
        finally:
            backend.close()


def test_a_reported_reorg_below_the_boundary_gives_a_new_seed_attested_once(net: Net) -> None:
    service = EpochService(net.registry, net.backend, confirmations=CONFIRMATIONS)
    epoch = net.to_next_epoch()
    before = service.tick()
    assert before.epoch == epoch and before.root is not None
    assert net.reader.attestation_of(epoch, service.address) == before.root
    boundary = net.reader.epoch_start_block(epoch)

    net.reorg(net.head() - boundary + 1)  # the boundary block, the seed and the attestation go
    assert net.reader.seed_info(epoch) is None
    assert net.reader.attestation_of(epoch, service.address) is None
    service.note_fork(boundary - 1)
    after = service.tick()

    assert after.epoch == epoch
    assert after.seed != before.seed  # another boundary block, another seed
    assert net.reader.verify_seed(epoch)
    assert after.root is not None and after.root != before.root
    assert net.reader.attestation_of(epoch, service.address) == after.root
    assert service.attested_root(epoch) == after.root
    assert service.attestations_sent == 2 and service.reorgs_seen == 1
    assert net.attested_events(epoch) == 1  # on the canonical chain: once
    service.tick()
    assert service.attestations_sent == 2  # nothing more to do


def test_a_past_epochs_lost_attestation_is_sent_again(net: Net) -> None:
    service = EpochService(net.registry, net.backend, confirmations=CONFIRMATIONS)
    first = net.to_next_epoch()
    service.tick()
    attested_at = net.head()
    second = net.to_next_epoch()  # the first epoch's attestation is now deep...
    fork = attested_at - 1  # the block before the attestation (its seed's fixing block)
    net.reorg(net.head() - fork)  # ...and a reorg deeper than the confirmations drops it
    assert net.reader.attestation_of(first, service.address) is None
    net.chain.mine_to(net.reader.epoch_start_block(second) + 1)
    service.note_fork(fork)
    view = service.tick()

    assert view.epoch == second
    assert net.reader.attestation_of(first, service.address) == service.view(first).root
    assert net.reader.attestation_of(second, service.address) == view.root
    assert net.attested_events(first) == 1 and net.attested_events(second) == 1


def test_a_reorg_too_shallow_for_the_follower_is_caught_by_reading_back(net: Net) -> None:
    service = EpochService(net.registry, net.backend, confirmations=CONFIRMATIONS)
    epoch = net.to_next_epoch()
    view = service.tick()
    sent_at = net.head()
    net.reorg(1)  # the attestation's block only: nothing the follower indexed changes
    assert net.reader.attestation_of(epoch, service.address) is None
    service.tick()  # not deep enough yet: not read back
    assert service.attestations_sent == 1
    net.chain.mine_to(sent_at + CONFIRMATIONS)
    service.tick()  # read back: gone, so attested again
    assert service.attestations_sent == 2
    assert net.reader.attestation_of(epoch, service.address) == view.root
    net.chain.mine_to(net.head() + CONFIRMATIONS)
    service.tick()
    assert service.attestations_sent == 2  # read back once more: there, confirmed
    assert net.attested_events(epoch) == 1


def test_an_unreported_reorg_of_the_boundary_never_gets_a_stale_root_attested(net: Net) -> None:
    service = EpochService(net.registry, net.backend, confirmations=CONFIRMATIONS)
    epoch = net.to_next_epoch()
    before = service.tick()
    boundary = net.reader.epoch_start_block(epoch)
    net.reorg(net.head() - boundary + 1)  # the follower has not reported it (yet)
    other = net.chain.new_account()  # anyone may fix a seed: here someone else is first
    Registry(net.backend.w3, net.reader.address, other).fix_seed(epoch)
    net.chain.mine_to(net.head() + CONFIRMATIONS)
    after = service.tick()  # reads its attestation back: gone; the seed is another one

    assert after.seed != before.seed and after.root != before.root
    assert net.reader.attestation_of(epoch, service.address) == after.root


def test_a_view_a_reorg_made_stale_while_its_attestation_waited_is_refused_and_redone(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = EpochService(net.registry, net.backend, confirmations=CONFIRMATIONS)
    epoch = net.to_next_epoch()
    boundary = net.reader.epoch_start_block(epoch)
    send = net.registry.attest

    def reorg_then_send(e: int, seed: bytes, root: bytes) -> object:
        # the seed was checked, then the transaction waited for its nonce: meanwhile a reorg
        # replaced the boundary block and someone fixed the new seed
        monkeypatch.setattr(net.registry, "attest", send)
        net.reorg(net.head() - boundary + 1)
        Registry(net.backend.w3, net.reader.address, net.chain.new_account()).fix_seed(e)
        return send(e, seed, root)

    monkeypatch.setattr(net.registry, "attest", reorg_then_send)
    before = service.tick()  # its root is from the replaced boundary: the chain refuses it
    assert net.reader.attestation_of(epoch, service.address) is None
    assert service.attested_root(epoch) is None
    after = service.tick()  # computed again from the chain's seed, attested
    assert after.epoch == epoch and after.seed != before.seed and after.root != before.root
    assert net.reader.seed_info(epoch).seed == after.seed  # type: ignore[union-attr]
    assert net.reader.attestation_of(epoch, service.address) == after.root
    assert net.attested_events(epoch) == 1
