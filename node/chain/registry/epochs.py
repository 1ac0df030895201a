"""Epochs: the schedule, seeds, attestations, the slot score and the epoch-period vote."""

from __future__ import annotations

from eth_utils import to_checksum_address
from web3.logs import DISCARD

from node.chain.contracts import TxResult, tx_result
from node.chain.registry.binding import RegistryBinding
from node.chain.registry.records import (
    Hash32,
    Period,
    Proposal,
    ProposalReceipt,
    RegistryError,
    SeedInfo,
    as_hash,
    compute_seed,
)


class EpochCalls(RegistryBinding):
    """The registry's epoch schedule, seeds, attestations, slot score and period votes."""

    # ------------------------------------------------------------------ epochs and seeds

    def current_epoch(self) -> int:
        """Return the epoch of the latest block."""
        return int(self._call(self._f.currentEpoch()))

    def epoch_start_block(self, epoch: int) -> int:
        """Return the block at which ``epoch`` starts (the schedule as it stands)."""
        return int(self._call(self._f.epochStartBlock(epoch)))

    def epoch_period(self) -> int:
        """Return the epoch period, in blocks, in force at the latest block."""
        return int(self._call(self._f.epochPeriod()))

    def periods(self) -> list[Period]:
        """Return the epoch schedule, one :class:`Period` per period change (the first at 0)."""
        count = int(self._call(self._f.periodCount()))
        result = []
        for i in range(count):
            start_epoch, start_block, length = self._call(self._f.periodAt(i))
            result.append(Period(int(start_epoch), int(start_block), int(length)))
        return result

    def fix_seed(self, epoch: int) -> TxResult:
        """Fix the seed of ``epoch`` (anyone; once its start block is in the past, only once)."""
        return self._send(self._f.fixSeed(epoch))

    def seed(self, epoch: int) -> Hash32 | None:
        """Return the fixed seed of ``epoch``, or None if not fixed yet."""
        return as_hash(self._call(self._f.seeds(epoch)))

    def seed_info(self, epoch: int) -> SeedInfo | None:
        """Return the seed of ``epoch`` with its source and fixing blocks, or None."""
        seed, source_block, fixed_at = self._call(self._f.seedInfo(epoch))
        value = as_hash(seed)
        if value is None:
            return None
        return SeedInfo(epoch, value, int(source_block), int(fixed_at))

    def verify_seed(self, epoch: int) -> bool:
        """Return whether the stored seed of ``epoch`` matches its source block's header hash.

        Raises :class:`RegistryError` if the seed is not fixed.
        """
        info = self.seed_info(epoch)
        if info is None:
            raise RegistryError(f"seed of epoch {epoch} is not fixed")
        source = self.w3.eth.get_block(info.source_block)
        return compute_seed(epoch, bytes(source["hash"])) == info.seed

    # ------------------------------------------------------------------ attestations

    def attest(self, epoch: int, seed: bytes, root: bytes) -> TxResult:
        """Attest the assignment ``root`` of ``epoch``, computed from ``seed`` (registered
        nodes; once per epoch). Reverts ``SeedMismatch`` unless ``seed`` is the epoch's fixed
        seed: a root computed on a fork a reorg replaced never lands."""
        return self._send(self._f.attest(epoch, seed, root))

    def attestation_of(self, epoch: int, node: str) -> Hash32 | None:
        """Return the root ``node`` attested for ``epoch``, or None."""
        return as_hash(self._call(self._f.attestationOf(epoch, to_checksum_address(node))))

    # ------------------------------------------------------------------ assignment score

    def slot_score(
        self,
        seed: bytes,
        epoch: int,
        role: str,
        subsystem: str | None,
        node: str,
        capacity: int,
    ) -> int:
        """Return the contract's ``slotScore``: ``node.assignment.compute_slot_score`` on-chain.

        ``subsystem`` is None (sent as "") for a system-wide slot. Raises
        :class:`RegistryRejected` (``UnknownRole``, ``InvalidCapacity``) for a bad role or a
        zero capacity.
        """
        fn = self._f.slotScore(
            bytes(seed), epoch, role, subsystem or "", to_checksum_address(node), capacity
        )
        return int(self._call(fn))

    # ------------------------------------------------------------------ epoch period vote

    def propose_epoch_period(self, new_period: int) -> ProposalReceipt:
        """Propose (and vote for) a new epoch period (registered nodes only)."""
        receipt = self._transact(self._f.proposeEpochPeriod(new_period))
        events = self.contract.events
        (event,) = events.EpochPeriodProposed().process_receipt(receipt, errors=DISCARD)
        executed = bool(events.EpochPeriodChanged().process_receipt(receipt, errors=DISCARD))
        result = tx_result(receipt)
        return ProposalReceipt(
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            id=int(event["args"]["id"]),
            executed=executed,
            gas_used=result.gas_used,
        )

    def vote_epoch_period(self, proposal_id: int) -> TxResult:
        """Vote for proposal ``proposal_id``; it executes on a majority of active nodes."""
        return self._send(self._f.voteEpochPeriod(proposal_id))

    def execute_epoch_period(self, proposal_id: int) -> TxResult:
        """Execute proposal ``proposal_id`` if it has a majority now (anyone)."""
        return self._send(self._f.executeEpochPeriod(proposal_id))

    def proposal_count(self) -> int:
        """Return the number of proposals."""
        return int(self._call(self._f.proposalCount()))

    def get_proposal(self, proposal_id: int) -> Proposal:
        """Return proposal ``proposal_id``; rejects an unknown id."""
        new_period, proposer, executed, votes = self._call(self._f.getProposal(proposal_id))
        return Proposal(
            id=proposal_id,
            new_period=int(new_period),
            proposer=to_checksum_address(proposer),
            executed=bool(executed),
            votes=int(votes),
        )

    def has_voted(self, proposal_id: int, node: str) -> bool:
        """Return whether ``node`` voted for ``proposal_id``."""
        return bool(self._call(self._f.hasVoted(proposal_id, to_checksum_address(node))))
