"""Identity of a logged-in user carried across one proxy hop, signed by the relaying node.

A node that proxies a request for a user it authenticated adds ``X-Collegium-User`` (the
address), ``X-Collegium-User-Ts`` (unix seconds) and ``X-Collegium-User-Proof`` (an
EIP-191 signature by the node's wallet over method, path, user and time). The receiving
node accepts the user only if the proof recovers to an active registered node and is
fresh; clients cannot forge it, and the headers are stripped from client requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct

from node.auth.errors import NotAuthenticated

USER_HEADER: Final = "x-collegium-user"
USER_TS_HEADER: Final = "x-collegium-user-ts"
USER_PROOF_HEADER: Final = "x-collegium-user-proof"
FORWARD_HEADERS: Final = (USER_HEADER, USER_TS_HEADER, USER_PROOF_HEADER)
MAX_FORWARD_AGE: Final = 60
REASON_BAD_FORWARD: Final = "bad-forwarded-identity"


def compute_forward_message(method: str, path: str, user: str, timestamp: int) -> str:
    """Return the text a relaying node signs for ``user``'s request ``method path``."""
    return f"collegium/forwarded-user/v1\n{method.upper()} {path}\n{user.lower()}\n{timestamp}"


def sign_forward(account: Any, method: str, path: str, user: str, timestamp: int) -> str:
    """Return the 0x-hex proof ``account`` gives for forwarding ``user``'s request."""
    message = encode_defunct(text=compute_forward_message(method, path, user, timestamp))
    return "0x" + bytes(account.sign_message(message).signature).hex()


def verify_forward(
    method: str,
    path: str,
    user: str,
    timestamp: str,
    proof: str,
    *,
    now: int,
    is_peer: Callable[[str], bool],
) -> str:
    """Return the relaying node's address if the forwarded identity holds.

    Raises :class:`NotAuthenticated` if the proof is stale, malformed or not by a peer.
    """
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise NotAuthenticated(REASON_BAD_FORWARD, "bad timestamp") from exc
    if abs(now - ts) > MAX_FORWARD_AGE:
        raise NotAuthenticated(REASON_BAD_FORWARD, "stale proof")
    try:
        message = encode_defunct(text=compute_forward_message(method, path, user, ts))
        signer = str(Account.recover_message(message, signature=proof))
    except Exception as exc:
        raise NotAuthenticated(REASON_BAD_FORWARD, "malformed proof") from exc
    if not is_peer(signer):
        raise NotAuthenticated(REASON_BAD_FORWARD, f"{signer} is not a registered node")
    return signer
