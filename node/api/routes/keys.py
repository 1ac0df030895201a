"""Participants' public keys (``/keys``), served by every node: they are public and
self-certifying (an address is the hash of its key)."""

from __future__ import annotations

from typing import Annotated, Final

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from node.api.deps import KeysDep
from node.api.routes.subsystems import ADDRESS_PATTERN, MAX_NAME_BYTES
from node.api.schemas import Problem
from node.crypto.errors import InvalidSignature
from node.errors import ValidationError

router = APIRouter(tags=["subsystems"])

SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]{130}$"


class KeyAnnouncement(BaseModel):
    """A signed ``KEY_ANNOUNCEMENT_TEMPLATE`` (personal_sign) publishing a wallet's key."""

    address: str = Field(pattern=ADDRESS_PATTERN)
    subsystem: str = Field(min_length=1, max_length=MAX_NAME_BYTES)
    signature: str = Field(pattern=SIGNATURE_PATTERN)


class PublicKeyPublic(BaseModel):
    """A participant's secp256k1 public key (SEC1 compressed, hex)."""

    address: str
    public_key: str


@router.post("/keys", status_code=201, responses={400: {"model": Problem}})
def announce_key(body: KeyAnnouncement, keys: KeysDep) -> PublicKeyPublic:
    """Publish a wallet's public key: the signature of the key announcement recovers it."""
    try:
        key = keys.record_announcement(body.address, body.subsystem, body.signature)
    except InvalidSignature as exc:
        raise ValidationError(str(exc)) from exc
    return PublicKeyPublic(address=to_checksum_address(body.address), public_key=key.hex())


@router.get("/keys/{address}", responses={404: {"model": Problem}})
def get_key(
    address: Annotated[str, Path(pattern=ADDRESS_PATTERN)], keys: KeysDep
) -> PublicKeyPublic:
    """Return the public key this node knows for ``address`` (404 if none)."""
    key = keys.get(address)
    if key is None:
        raise HTTPException(404, f"no public key known for {address}")
    return PublicKeyPublic(address=to_checksum_address(address), public_key=key.hex())
