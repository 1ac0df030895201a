"""The directory of participants' public keys (index database, ``node.db.models.ParticipantKey``).

A participant's secp256k1 public key is what their content-key slot in an envelope is
wrapped for. The node learns it without any extra step from the user:

* **SIWE login** (``record_login``): the EIP-191 signature of the login message recovers the
  key (``node.crypto.keys.recover_public_key``). Contract wallets (ERC-1271) recover nothing
  useful and are skipped;
* **key announcement** (``record_announcement``, ``POST /api/v1/keys``): a signed
  ``KEY_ANNOUNCEMENT_TEMPLATE`` message, for users who never logged in on this node;
* **peers** (``learn_from_peers``): another node's ``GET /api/v1/keys/{address}``.

Every entry is self-certifying: an Ethereum address *is* the hash of its public key, so the
directory accepts a key only if ``compute_address(key) == address``. A lying peer cannot plant a
wrong key (it would need a keccak preimage); it can only withhold one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

import httpx
from eth_utils import is_hex_address, to_checksum_address
from siwe import SiweMessage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from node.crypto.errors import InvalidSignature
from node.crypto.keys import (
    KEY_ANNOUNCEMENT_TEMPLATE,
    PublicKey,
    compute_address,
    normalize_public_key,
    recover_participant_key,
    recover_public_key,
)
from node.crypto.sealed import Recipient
from node.db.models import ParticipantKey

log = logging.getLogger(__name__)

SOURCE_SIWE: Final = "siwe"
SOURCE_ANNOUNCEMENT: Final = "announcement"
SOURCE_PEER: Final = "peer"
SOURCE_SELF: Final = "self"
KEYS_PATH: Final = "/api/v1/keys/"
PEER_TIMEOUT: Final = 2.0  # seconds per peer answer, in all (connect, each read, the whole body)
#: A key answer is ~150 bytes of JSON; a longer one is not read past this.
PEER_MAX_ANSWER_BYTES: Final = 4096
MISS_TTL: Final = 60.0  # seconds before asking the peers again about an unknown key


def compute_announcement(address: str, subsystem: str) -> str:
    """Return the text a participant signs (``personal_sign``) to publish their key."""
    return KEY_ANNOUNCEMENT_TEMPLATE.format(
        address=to_checksum_address(address), subsystem=subsystem
    )


def compute_siwe_address(message: str) -> str | None:
    """Return the checksummed address of an EIP-4361 message, or None if it does not parse."""
    try:
        parsed = SiweMessage.from_message(message)
    except Exception:  # the siwe parser raises several types, all mean "malformed"
        return None
    return str(to_checksum_address(parsed.address))


class KeyDirectory:
    """Known public keys by address, in the index database (thread-safe)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        peers: Callable[[], Mapping[str, str]] | None = None,
        self_address: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.peers = peers
        self.self_address = (self_address or "").lower()
        self.clock = clock
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, address: str, public_key: bytes, source: str) -> PublicKey:
        """Store ``address``'s ``public_key`` (learned from ``source``) and return it.

        Raises ``InvalidSignature`` if the key is not a point or is not ``address``'s.
        """
        key = normalize_public_key(public_key)
        if compute_address(key).lower() != address.lower():
            raise InvalidSignature(f"public key does not belong to {address}")
        checksum = to_checksum_address(address)
        with self.sessions.begin() as db:
            row = db.get(ParticipantKey, checksum)
            if row is None:
                db.add(ParticipantKey(address=checksum, public_key=key.hex(), source=source,
                                      recorded_at=datetime.now(UTC)))  # fmt: skip
        with self._lock:
            self._misses.pop(checksum.lower(), None)
        return key

    def record_login(self, message: str, signature: str) -> PublicKey | None:
        """Store the key recovered from a verified SIWE login; return it, or None when the
        signature recovers another address (an ERC-1271 contract wallet has no key)."""
        address = compute_siwe_address(message)
        if address is None:
            return None
        try:
            key = recover_public_key(message, signature)
        except InvalidSignature:
            return None
        if compute_address(key).lower() != address.lower():
            return None
        return self.record(address, key, SOURCE_SIWE)

    def record_announcement(self, address: str, subsystem: str, signature: str) -> PublicKey:
        """Store the key of ``address`` from its signed key announcement and return it.

        Raises ``InvalidSignature`` if the signature is malformed or made by another address.
        """
        message = compute_announcement(address, subsystem)
        key = recover_participant_key(address, message, signature)
        return self.record(address, key, SOURCE_ANNOUNCEMENT)

    def get(self, address: str) -> PublicKey | None:
        """Return the known public key of ``address``, or None."""
        if not is_hex_address(address):
            return None
        with self.sessions() as db:
            row = db.get(ParticipantKey, to_checksum_address(address))
        return PublicKey(bytes.fromhex(row.public_key)) if row is not None else None

    def recipients(self, addresses: Iterable[str]) -> list[Recipient]:
        """Return a recipient for each address whose key is known here (others are skipped)."""
        wanted = [to_checksum_address(a) for a in addresses]
        if not wanted:
            return []
        with self.sessions() as db:
            rows = db.scalars(
                select(ParticipantKey).where(ParticipantKey.address.in_(wanted))
            ).all()
        return [Recipient(r.address, PublicKey(bytes.fromhex(r.public_key))) for r in rows]

    def learn_from_peers(self, addresses: Iterable[str]) -> int:
        """Ask the peers for the keys of ``addresses`` unknown here; return how many were
        learned. Each answer is checked against its address; peers that fail are skipped, and
        an address nobody knew is not asked about again for ``MISS_TTL`` seconds."""
        if self.peers is None:
            return 0
        now = self.clock()
        known = {r.address.lower() for r in self.recipients(addresses)}
        with self._lock:
            missing = [
                a for a in addresses
                if a.lower() not in known and self._misses.get(a.lower(), float("-inf")) <= now
            ]  # fmt: skip
        if not missing:
            return 0
        try:
            peers = {a: e for a, e in self.peers().items() if a.lower() != self.self_address}
        except Exception as exc:  # the registry is unreachable: learn nothing this time
            log.warning("cannot list peers to learn keys: %s", exc)
            return 0
        learned = 0
        with httpx.Client(timeout=PEER_TIMEOUT, follow_redirects=False) as client:
            for address in missing:
                if self._ask_peers(client, peers.values(), address):
                    learned += 1
                else:
                    with self._lock:
                        self._misses[address.lower()] = now + MISS_TTL
        return learned

    def _ask_peers(self, client: httpx.Client, endpoints: Iterable[str], address: str) -> bool:
        if not is_hex_address(address):
            return False
        path = KEYS_PATH + to_checksum_address(address)
        for endpoint in endpoints:
            try:
                answer = _fetch_small(client, endpoint.rstrip("/") + path)
                if answer is None:
                    continue
                key = bytes.fromhex(str(json.loads(answer)["public_key"]).removeprefix("0x"))
                self.record(address, key, SOURCE_PEER)
                return True
            except (httpx.HTTPError, ValueError, KeyError, TypeError, InvalidSignature) as exc:
                log.info("peer %s gave no valid key for %s: %s", endpoint, address, exc)
        return False


def _fetch_small(client: httpx.Client, url: str) -> bytes | None:
    """Return the body of a 200 answer to ``GET url``, or None for another status.

    Raises ``ValueError`` if the body exceeds ``PEER_MAX_ANSWER_BYTES`` or the answer takes
    longer than ``PEER_TIMEOUT`` in all (no redirect is followed)."""
    deadline = time.monotonic() + PEER_TIMEOUT
    with client.stream("GET", url) as response:
        if response.status_code != httpx.codes.OK:
            return None
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > PEER_MAX_ANSWER_BYTES:
                raise ValueError(f"answer longer than {PEER_MAX_ANSWER_BYTES} bytes")
            if time.monotonic() > deadline:
                raise ValueError(f"answer slower than {PEER_TIMEOUT}s")
        return bytes(body)
