"""S's log (``node.replication.replica``): order and dedupe over the ledger index, references peer
sync follows, the keyless audit of sealed objects and envelopes, and the caught-up status.

A real SQLite index (Alembic migrations) and a real embedded content store; the ledger rows are
inserted as the follower would index them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from node.crypto.keys import compute_public_key
from node.crypto.sealed import (
    Recipient,
    compute_references,
    make_envelope,
    new_content_key,
    put_envelope,
    put_sealed,
)
from node.db.models import BusinessTransaction, TransactionStatus
from node.db.session import create_db_engine, make_session_factory, upgrade_database
from node.replication.replica import (
    CATCH_UP_GRACE_SECONDS,
    MAX_FOLLOWER_LAG_BLOCKS,
    STATUS_TTL_SECONDS,
    SubsystemLog,
    audit_logs,
    read_log,
)
from node.storage import EmbeddedStore

S = "atelier"


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    upgrade_database(url)
    return make_session_factory(create_db_engine(url))


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


def sealed_object(store: EmbeddedStore, subsystem: str = S, previous: str | None = None) -> str:
    member = Account.create()
    recipient = Recipient(member.address, compute_public_key(bytes(member.key)))
    key = new_content_key()
    envelope = make_envelope(subsystem, 1, key, [recipient], previous=previous)
    envelope_cid = put_envelope(store, envelope)
    return str(put_sealed(store, key, envelope_cid, envelope, b'{"format":1}'))


def add_tx(
    sessions: sessionmaker[Session], tx_id: str, *, timestamp: int, payload: str,
    origin: str = "", status: str = TransactionStatus.ANCHORED, subsystem: str = S,
    private: bool = True, nonce: int = 0,
) -> None:  # fmt: skip
    with sessions.begin() as session:
        session.add(BusinessTransaction(
            origin=origin, tx_id=tx_id, signer="0x" + "11" * 20, nonce=nonce,
            subsystem=subsystem, kind="record", amount="", currency="", memo="", payload=payload,
            payload_hash="0x" + "22" * 32, private=private, timestamp=timestamp,
            signature="0x", body=b"", leaf_hash="0x", cid="bafy", status=status,
            received_at=datetime.now(UTC),
        ))  # fmt: skip


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def test_log_is_ordered_by_signed_timestamp_then_id_one_entry_per_transaction(
    sessions: sessionmaker[Session],
) -> None:
    add_tx(sessions, tx(3), timestamp=100, payload="c3", nonce=3)
    add_tx(sessions, tx(1), timestamp=200, payload="c1", nonce=4)
    add_tx(sessions, tx(2), timestamp=100, payload="c2", nonce=1)
    # the same transaction accepted by two nodes: one entry, the anchored copy preferred
    add_tx(sessions, tx(1), timestamp=200, payload="c1", origin="0x" + "ab" * 20,
           status=TransactionStatus.PENDING, nonce=4)  # fmt: skip
    add_tx(sessions, tx(9), timestamp=50, payload="pub", private=False, nonce=5)
    add_tx(sessions, tx(8), timestamp=50, payload="other", subsystem="elsewhere", nonce=6)

    log = read_log(sessions, S)

    assert [e.tx_id for e in log] == [tx(2), tx(3), tx(1)]
    assert all(e.anchored for e in log)
    assert read_log(sessions, "nobody") == []


def test_references_are_a_sealed_objects_envelope_and_an_envelopes_previous(
    store: EmbeddedStore,
) -> None:
    first = sealed_object(store)
    envelope = json.loads(store.cat(first))["envelope"]
    assert compute_references(store.cat(first)) == (envelope,)
    assert compute_references(store.cat(envelope)) == ()  # version 1: no previous
    second = sealed_object(store, previous=envelope)
    newer = json.loads(store.cat(second))["envelope"]
    assert compute_references(store.cat(newer)) == (envelope,)
    for junk in (b"", b"[1]", b"{not json", b'{"type":"other","envelope":"x"}', b"\x00" * 8):
        assert compute_references(junk) == ()


def test_audit_names_absent_and_misfiled_objects_without_any_key(
    sessions: sessionmaker[Session], store: EmbeddedStore, tmp_path: Path
) -> None:
    good = sealed_object(store)
    misfiled = sealed_object(store, subsystem="elsewhere")
    other = EmbeddedStore(tmp_path / "other")
    absent = sealed_object(other)
    add_tx(sessions, tx(1), timestamp=1, payload=good, nonce=1)
    assert (audit_logs(sessions, store).checked, audit_logs(sessions, store).findings) == (1, [])

    add_tx(sessions, tx(2), timestamp=2, payload=misfiled, nonce=2)
    add_tx(sessions, tx(3), timestamp=3, payload=absent, nonce=3)
    audit = audit_logs(sessions, store)
    checked, findings = audit.checked, audit.findings

    assert checked == 3
    assert {(f.tx_id, f.check) for f in findings} == {
        (tx(2), "sealed object"), (tx(3), "sealed object and envelope here"),
    }  # fmt: skip
    # a sealed object whose envelope is absent is absent too
    only_object = other.cat(absent)
    store.add_bytes(only_object)
    assert [f.tx_id for f in audit_logs(sessions, store).findings] == [tx(2), tx(3)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_status_waits_for_every_object_and_the_follower_then_a_grace(
    sessions: sessionmaker[Session], store: EmbeddedStore, tmp_path: Path
) -> None:
    clock = Clock()
    lag: list[int | None] = [0]
    log = SubsystemLog(sessions, store, lambda: lag[0], clock=clock)
    assert log.status(S).ready  # nothing logged: nothing to wait for

    other = EmbeddedStore(tmp_path / "other")
    add_tx(sessions, tx(1), timestamp=1, payload=sealed_object(other), nonce=1)
    clock.now += STATUS_TTL_SECONDS
    status = log.status(S)
    assert (status.entries, status.have, status.ready) == (1, 0, False)
    # the object arrives (peer sync), its envelope too: caught up
    cid = read_log(sessions, S)[0].cid
    document = other.cat(cid)
    store.add_bytes(document)
    store.add_bytes(other.cat(json.loads(document)["envelope"]))
    clock.now += STATUS_TTL_SECONDS
    assert log.status(S).ready and log.status(S).have == 1
    # once the follower reached the head, a later lag does not make the host "behind"
    lag[0] = MAX_FOLLOWER_LAG_BLOCKS + 1
    clock.now += STATUS_TTL_SECONDS
    assert log.is_ready(S)
    assert [s.subsystem for s in log.statuses()] == [S]


def test_a_follower_behind_since_start_is_not_caught_up_until_the_grace(
    sessions: sessionmaker[Session], store: EmbeddedStore
) -> None:
    clock = Clock()
    lag = [MAX_FOLLOWER_LAG_BLOCKS + 1]
    log = SubsystemLog(sessions, store, lambda: lag[0], clock=clock)
    status = log.status(S)
    assert not status.ready and status.follower_lag == MAX_FOLLOWER_LAG_BLOCKS + 1
    clock.now += STATUS_TTL_SECONDS
    assert log.status(S) is not status and not log.is_ready(S)  # recomputed, still behind
    clock.now += CATCH_UP_GRACE_SECONDS  # never caught up: S is served, lacks listed missing
    assert log.is_ready(S)
    lag[0] = 0
    other = SubsystemLog(sessions, store, lambda: lag[0], clock=clock)
    assert other.is_ready(S)


class Database:
    """S's database as ``catch_up`` sees it (the real one is tested through the node)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def replace_log(self, rows: list[Any]) -> None:
        self.rows = rows


def test_catch_up_indexes_envelope_and_version_of_each_entry(
    sessions: sessionmaker[Session], store: EmbeddedStore
) -> None:
    cid = sealed_object(store)
    add_tx(sessions, tx(1), timestamp=1, payload=cid, nonce=1)
    database = Database()
    SubsystemLog(sessions, store).catch_up(database, S)
    ((entry, objects),) = database.rows
    assert entry.cid == cid and not objects.missing
    assert objects.envelope == json.loads(store.cat(cid))["envelope"]
    assert objects.key_version == 1 and objects.commitment


class Participants:
    """The registry's participants of S (what ``PrivateData`` reads from the contract)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)

    def participants(self, name: str) -> list[str]:
        return list(self.addresses)


def test_any_host_lists_what_another_wrote_and_rotation_follows_the_log(
    sessions: sessionmaker[Session], store: EmbeddedStore, tmp_path: Path
) -> None:
    from node.auth.databases import RoleContext, SubsystemDatabases
    from node.crypto.errors import NotARecipient
    from node.crypto.sealed import read_sealed
    from node.keys.directory import SOURCE_SELF, KeyDirectory
    from node.keys.private import PrivateData

    a, b, member = Account.create(), Account.create(), Account.create()
    registry = Participants(a.address, b.address, member.address)
    directory = KeyDirectory(sessions)
    for account in (a, b, member):
        directory.record(account.address, compute_public_key(bytes(account.key)), SOURCE_SELF)
    log = SubsystemLog(sessions, store)  # one store: what peer sync makes of the two stores
    hosts = [PrivateData(SubsystemDatabases(tmp_path / name), store, registry, directory,
                         account, log=log) for name, account in (("a", a), ("b", b))]  # fmt: skip
    host_a, host_b = hosts
    context = RoleContext("be_subsystem", S)

    first = host_a.add_record(context, S, key="k", value="written on a", author=member.address)
    assert first["status"] == "draft" and host_b.records(context, S, limit=10) == []
    add_tx(sessions, tx(1), timestamp=1, payload=first["cid"], nonce=1)
    with sessions.begin() as session:  # the author's signed payloadHash
        row = session.query(BusinessTransaction).filter_by(tx_id=tx(1)).one()
        row.payload_hash = first["payload_hash"]
    (listed,) = host_b.records(context, S, limit=10)
    assert listed["value"] == "written on a"
    assert (listed["status"], listed["tx_id"]) == ("anchored", tx(1))
    assert host_b.current_key(context, S).envelope_cid == first["envelope"]  # adopted

    registry.addresses.remove(member.address)  # removed: the next write rotates, on b
    second = host_b.add_record(context, S, key="k", value="after removal", author=b.address)
    assert second["key_version"] == 2
    add_tx(sessions, tx(2), timestamp=2, payload=second["cid"], nonce=2)
    with sessions.begin() as session:
        row = session.query(BusinessTransaction).filter_by(tx_id=tx(2)).one()
        row.payload_hash = second["payload_hash"]
    current = host_a.current_key(context, S)  # a follows b's rotation from the log
    assert (current.key_version, current.envelope_cid) == (2, second["envelope"])
    assert [r["value"] for r in host_a.records(context, S, limit=10)] == [
        "after removal", "written on a",
    ]  # fmt: skip
    assert read_sealed(store, first["cid"], bytes(member.key))
    with pytest.raises(NotARecipient):
        read_sealed(store, second["cid"], bytes(member.key))
    # an entry another node anchored with garbage for a payload is shown, never hides the rest
    add_tx(sessions, tx(4), timestamp=4, payload=str(store.add_bytes(b"not sealed")), nonce=4)
    listing = host_a.records(context, S, limit=10)
    assert [(r["status"], r["value"]) for r in listing] == [
        ("unreadable", None), ("anchored", "after removal"), ("anchored", "written on a"),
    ]  # fmt: skip
    with sessions.begin() as session:
        session.query(BusinessTransaction).filter_by(tx_id=tx(4)).delete()
    # a member's audit opens what it has a slot for and re-hashes both commitments
    member_audit = audit_logs(sessions, store, bytes(member.key))
    assert (member_audit.checked, member_audit.opened, member_audit.findings) == (2, 1, [])
    host_audit = audit_logs(sessions, store, bytes(a.key))
    assert (host_audit.opened, host_audit.findings) == (2, [])
    with sessions.begin() as session:  # a leaf whose signed payloadHash is not the plaintext's
        row = session.query(BusinessTransaction).filter_by(tx_id=tx(2)).one()
        row.payload_hash = "0x" + "33" * 32
    (finding,) = audit_logs(sessions, store, bytes(a.key)).findings
    assert (finding.tx_id, finding.check) == (tx(2), "plaintext")
