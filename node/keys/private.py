"""Subsystem-private data on the node that hosts ``be_subsystem`` of a subsystem S.

Everything private to S is sealed here before it reaches the content store; what the store
holds (and what peers copy, and what ``GET /ipfs/{cid}`` serves to anyone) is the sealed
object and S's key envelopes. S's database keeps only CIDs and salted commitments.

**Where the content key comes from.** The MISSION's rule is that a ``be_subsystem`` host of S is
a node of a participant of S: the node's wallet address is itself a participant. So the host is
a recipient of S's envelopes like any participant, and it unwraps the content key with its own
wallet key (held in memory since start-up, as for signing anchors). It never stores a content key
in the clear; a process-memory cache maps envelope CID -> key. A host whose address is not a
participant of S refuses (:class:`HostNotParticipant`, 403) instead of sealing for others.

**Which envelope is current.** Each write compares this host's newest envelope for S with the
participants read from the registry contract at that moment:

* no envelope yet: a fresh key at version 1;
* a recipient is no longer a participant: **rotation** — a fresh key at version + 1, wrapped
  only for the remaining participants (``previous`` links the old envelope);
* a participant's key became known since (login, announcement, peer): the *same* key and
  version re-wrapped in a new envelope that includes them;
* otherwise the current envelope is reused.

Recipients are the participants whose public keys the :class:`KeyDirectory` knows (it asks
the peers about unknown ones) plus this host. All access goes through
:meth:`SubsystemDatabases.open`, so only a request the router granted as ``be_subsystem`` of S
reaches S's envelopes or key: the ``be_system`` code path gets ``AccessDenied``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Final

from Crypto.Random import get_random_bytes
from eth_utils import to_checksum_address

from node.auth.databases import EnvelopeRow, RoleContext, SubsystemDatabase, SubsystemDatabases
from node.auth.errors import Forbidden
from node.crypto.errors import CryptoError, MalformedObject
from node.crypto.keys import compute_public_key
from node.crypto.sealed import (
    FIRST_KEY_VERSION,
    SALT_BYTES,
    KeyEnvelope,
    Recipient,
    decode_sealed,
    get_envelope,
    make_envelope,
    new_content_key,
    open_envelope,
    put_envelope,
    seal,
    unseal_salted,
)
from node.errors import CollegiumError
from node.keys.directory import SOURCE_SELF, KeyDirectory
from node.ledger.transaction import compute_payload_hash
from node.replication.replica import RECORD_KIND, SubsystemLog

logger = logging.getLogger(__name__)

RECORD_FORMAT: Final = 1
STATUS_DRAFT: Final = "draft"  # sealed on this host, not yet signed into S's log
STATUS_PENDING: Final = "pending"  # in S's log, not yet anchored
STATUS_ANCHORED: Final = "anchored"
STATUS_MISSING: Final = "missing"  # in S's log; its sealed object is not on this host yet
STATUS_UNREADABLE: Final = "unreadable"  # in S's log; this host cannot open or check it


class HostNotParticipant(Forbidden):
    """This node's wallet is not a participant of the subsystem: it may not hold its key."""


@dataclass(frozen=True)
class CurrentKey:
    """The content key new data of a subsystem is sealed under, and its envelope."""

    database: SubsystemDatabase
    content_key: bytes
    envelope_cid: str
    envelope: KeyEnvelope

    @property
    def key_version(self) -> int:
        """Return the key version."""
        return self.envelope.key_version


@dataclass(frozen=True)
class OpenedPayload:
    """A sealed object's plaintext, with the salt and key version it was sealed with."""

    cid: str
    salt: bytes
    payload: bytes
    key_version: int
    commitment: bytes

    @property
    def payload_hash(self) -> str:
        """Return ``keccak256(salt || payload)`` (a private transaction's ``payloadHash``)."""
        return compute_payload_hash(self.salt, self.payload)


class PrivateData:
    """Seal and open a subsystem's private data on its ``be_subsystem`` host."""

    def __init__(
        self,
        databases: SubsystemDatabases,
        store: Any,
        registry: Any,
        directory: KeyDirectory,
        account: Any,
        log: SubsystemLog | None = None,
    ) -> None:
        self.databases = databases
        self.log = log
        self.store = store
        self.registry = registry
        self.directory = directory
        self._private_key = bytes(account.key)
        self.address = to_checksum_address(account.address)
        self._self = Recipient(self.address, compute_public_key(self._private_key))
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._announced = False

    # ------------------------------------------------------------------ keys

    def current_key(self, context: RoleContext, name: str) -> CurrentKey:
        """Return the key new data of ``name`` is sealed under, rotating or re-wrapping first
        when the participants changed (module doc).

        Raises ``AccessDenied`` unless ``context`` is ``be_subsystem`` of ``name``,
        :class:`HostNotParticipant` if this node is not a participant, ``ChainError`` if the
        registry cannot be read.
        """
        database = self.databases.open(context, name)
        participants = [to_checksum_address(a) for a in self.registry.participants(name)]
        if self.address not in participants:
            raise HostNotParticipant(f"node {self.address} is not a participant of {name!r}")
        if not self._announced:  # peers learn this host's key from GET /api/v1/keys/{address}
            self.directory.record(self.address, self._self.public_key, SOURCE_SELF)
            self._announced = True
        self.directory.learn_from_peers(participants)
        wanted = {r.address: r for r in self.directory.recipients(participants)}
        wanted[self.address] = self._self
        with self._lock:
            row = self._adopt_logged_envelope(database, name)
            if row is None:
                key, version, previous = new_content_key(), FIRST_KEY_VERSION, None
            else:
                removed = {a.lower() for a in row.recipients} - {a.lower() for a in participants}
                added = {a.lower() for a in wanted} - {a.lower() for a in row.recipients}
                if self.address.lower() not in {a.lower() for a in row.recipients}:
                    removed = removed or {"(this host has no slot: a fresh key)"}
                if removed:
                    key, version = new_content_key(), row.key_version + 1
                elif added:
                    key, version = self._content_key(row.envelope_cid, name), row.key_version
                else:
                    envelope = get_envelope(self.store, row.envelope_cid)
                    key = self._content_key(row.envelope_cid, name)
                    return CurrentKey(database, key, row.envelope_cid, envelope)
                previous = row.envelope_cid
            envelope = make_envelope(name, version, key, wanted.values(), previous=previous)
            cid = put_envelope(self.store, envelope)
            database.add_envelope(EnvelopeRow(version, cid, envelope.addresses))
            self._keys[cid] = key
            return CurrentKey(database, key, cid, envelope)

    def _adopt_logged_envelope(self, database: SubsystemDatabase, name: str) -> EnvelopeRow | None:
        """Return this host's current envelope of ``name``, first adopting the newest envelope
        S's log names (another host's, replicated here) when its key version is newer: keys
        follow the data, whichever host wrote it."""
        row = database.current_envelope()
        if self.log is None:
            return row
        self.log.catch_up(database, name)
        best: tuple[int, str] | None = None
        for entry in database.log():
            if entry["envelope"] and entry["key_version"] is not None and not entry["missing"]:
                candidate = (int(entry["key_version"]), str(entry["envelope"]))
                if best is None or candidate[0] > best[0]:
                    best = candidate  # newest first: the latest entry of the top version
        if best is None or (row is not None and best[0] <= row.key_version):
            return row
        try:
            envelope = get_envelope(self.store, best[1])
        except (CollegiumError, CryptoError):
            return row
        if envelope.subsystem != name:
            return row
        adopted = EnvelopeRow(envelope.key_version, best[1], envelope.addresses)
        if row is None or row.envelope_cid != adopted.envelope_cid:
            database.add_envelope(adopted)
        return adopted

    def _content_key(self, envelope_cid: str, name: str) -> bytes:
        """Return the content key of the envelope at ``envelope_cid`` (cached), unwrapped with
        this node's key. Raises ``NotARecipient`` or ``MalformedObject``."""
        key = self._keys.get(envelope_cid)
        if key is None:
            envelope = get_envelope(self.store, envelope_cid)
            if envelope.subsystem != name:
                raise MalformedObject(f"envelope {envelope_cid} belongs to {envelope.subsystem!r}")
            key = self._keys[envelope_cid] = open_envelope(envelope, self._private_key)
        return key

    # ------------------------------------------------------------------ sealing

    def seal_payload(
        self, context: RoleContext, name: str, payload: bytes, salt: bytes | None = None
    ) -> tuple[str, OpenedPayload, CurrentKey]:
        """Return the CID of ``payload`` sealed under ``name``'s current key (added to the
        store), what it commits to, and the key used. Raises as :meth:`current_key`."""
        current = self.current_key(context, name)
        salt = get_random_bytes(SALT_BYTES) if salt is None else salt
        sealed = seal(current.content_key, name, current.key_version, current.envelope_cid,
                      payload, salt=salt)  # fmt: skip
        cid = str(self.store.add_bytes(sealed.encode()))
        opened = OpenedPayload(cid, salt, payload, current.key_version, sealed.commitment)
        return cid, opened, current

    def open_payload(self, context: RoleContext, name: str, cid: str) -> OpenedPayload:
        """Return the plaintext of the sealed object at ``cid``, which must belong to ``name``.

        Raises ``AccessDenied`` unless ``context`` is ``be_subsystem`` of ``name``;
        ``MalformedObject`` if ``cid`` is not a sealed object of ``name``; ``NotARecipient``
        if this host has no slot in its envelope; ``DecryptionFailed`` if tampered; a
        ``StoreError`` if absent.
        """
        self.databases.open(context, name)
        sealed = decode_sealed(self.store.cat(cid))
        if sealed.subsystem != name:
            raise MalformedObject(f"{cid} is sealed for {sealed.subsystem!r}, not {name!r}")
        envelope_key = self._content_key(sealed.envelope, name)
        salt, payload = unseal_salted(envelope_key, sealed)
        return OpenedPayload(cid, salt, payload, sealed.key_version, sealed.commitment)

    # ------------------------------------------------------------------ records

    def add_record(
        self, context: RoleContext, name: str, *, key: str, value: str, author: str
    ) -> dict[str, Any]:
        """Seal record ``(key, value)`` by ``author``, store it, keep its row; return the row
        with the plaintext ``key`` and ``value``. Raises as :meth:`current_key`."""
        payload = encode_record(key, value)
        cid, opened, current = self.seal_payload(context, name, payload)
        row = current.database.add_record(
            cid=cid, commitment=opened.commitment.hex(), key_version=current.key_version,
            author=author,
        )  # fmt: skip
        return {**row, "key": key, "value": value, "envelope": current.envelope_cid,
                "payload_hash": opened.payload_hash, "salt": "0x" + opened.salt.hex(),
                "tx_id": None, "status": STATUS_DRAFT}  # fmt: skip

    def records(self, context: RoleContext, name: str, *, limit: int) -> list[dict[str, Any]]:
        """Return the newest ``limit`` records of ``name``, opened: the entries of kind
        ``record`` in S's log (signed by their authors, replicated, whichever host wrote
        them), then this host's drafts not yet signed into the log. An entry whose sealed
        object is not here yet is listed with ``status`` ``missing`` and no value. Raises as
        :meth:`open_payload`."""
        database = self.databases.open(context, name)
        if self.log is not None:
            self.log.catch_up(database, name)
        out: list[dict[str, Any]] = []
        logged: set[str] = set()
        for entry in database.log(kind=RECORD_KIND):
            logged.add(entry["cid"])
            if len(out) >= limit:
                continue
            row = {"id": entry["position"], "author": entry["author"], "cid": entry["cid"],
                   "commitment": entry["commitment"] or "", "tx_id": entry["tx_id"],
                   "key_version": entry["key_version"] or 0, "key": None, "value": None,
                   "status": STATUS_ANCHORED if entry["anchored"] else STATUS_PENDING,
                   "payload_hash": entry["payload_hash"]}  # fmt: skip
            if entry["missing"]:
                out.append({**row, "status": STATUS_MISSING})
                continue
            try:
                opened = self.open_payload(context, name, entry["cid"])
                if opened.payload_hash != entry["payload_hash"]:
                    raise MalformedObject(f"{entry['cid']} does not match its signed payloadHash")
                row["key"], row["value"] = decode_record(opened.payload)
            except (CryptoError, CollegiumError) as exc:
                # one bad entry (another node anchored garbage, or a key this host lacks) is
                # shown as such; it never hides the rest of S's log
                logger.warning("record %s of %r cannot be opened here: %s", entry["cid"], name, exc)
                row["status"] = STATUS_UNREADABLE
            out.append(row)
        for draft in database.records(limit=limit):
            if len(out) >= limit:
                break
            if draft["cid"] in logged:
                continue
            key, value = decode_record(self.open_payload(context, name, draft["cid"]).payload)
            out.append({**draft, "key": key, "value": value, "tx_id": None,
                        "status": STATUS_DRAFT})  # fmt: skip
        return out


def encode_record(key: str, value: str) -> bytes:
    """Return the sealed plaintext of a record: canonical JSON ``{"format","key","value"}``."""
    document = {"format": RECORD_FORMAT, "key": key, "value": value}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_record(payload: bytes) -> tuple[str, str]:
    """Return ``(key, value)`` of a record plaintext; raises ``MalformedObject``."""
    try:
        document = json.loads(payload)
        if document.get("format") != RECORD_FORMAT:
            raise MalformedObject(f"record format {document.get('format')!r} is unknown")
        return str(document["key"]), str(document["value"])
    except (ValueError, KeyError, AttributeError) as exc:
        raise MalformedObject(f"not a record: {exc}") from None
