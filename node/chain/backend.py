"""Chain transport selection: the only module that knows embedded py-evm from an RPC URL.

Everything above this module talks to a :class:`ChainBackend`'s ``w3`` and never asks which
kind it is, except for dev/test chores (:meth:`ChainBackend.mine`, :meth:`ChainBackend.fund`)
that each transport implements its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from eth_typing import ChecksumAddress
from web3 import Web3

from node.chain.constants import EMBEDDED_CHAIN_ID, JSONRPC_SERVER_ERROR
from node.chain.provider import FailoverProvider
from node.errors import ChainError

if TYPE_CHECKING:  # py-evm and eth-tester load only when the embedded chain is opened
    from node.chain.embedded import EmbeddedChain, Synchronous

CHAIN_SUBDIR: Final = "chain"
"""The embedded chain lives in ``<data_dir>/chain``."""

DEFAULT_RPC_TIMEOUT: Final = 10.0
"""Seconds before an RPC request to an external chain gives up."""

ChainKind = Literal["embedded", "rpc"]


@dataclass
class ChainBackend:
    """A connected chain: a ``Web3`` plus what kind of transport it rides on.

    ``embedded`` is set for ``kind == "embedded"``; ``rpc_url`` for ``kind == "rpc"``.
    """

    w3: Web3
    kind: ChainKind
    chain_id: int
    embedded: EmbeddedChain | None = field(default=None, repr=False)
    rpc_url: str | None = None
    http_session: requests.Session | None = field(default=None, repr=False)
    """The ``requests.Session`` a plain web3 ``HTTPProvider`` was built with, which
    :meth:`close` closes: ``HTTPProvider(url, session=session)``, web3's public parameter
    (its own per-thread sessions are not reachable without private attributes)."""

    def close(self) -> None:
        """Release the transport (commit and unlock an embedded chain); idempotent."""
        if self.embedded is not None:
            self.embedded.close()
        elif isinstance(self.w3.provider, FailoverProvider):
            self.w3.provider.close()
        elif self.http_session is not None:
            self.http_session.close()

    def __enter__(self) -> ChainBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dev_address(self) -> ChecksumAddress | None:
        """Return the genesis-funded dev address of an embedded chain, else None."""
        return self.embedded.dev_address if self.embedded is not None else None

    def block_number(self) -> int:
        """Return the number of the latest mined block; raise ChainError on transport failure."""
        try:
            return int(self.w3.eth.block_number)
        except ChainError:
            raise
        except Exception as exc:
            raise ChainError(f"cannot read block number from {self._describe()}: {exc}") from exc

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks; return the new latest block number.

        Embedded: py-evm mines them in one commit. RPC: ``anvil_mine`` if the endpoint has
        it, else ``evm_mine`` one block at a time (hardhat, ganache). Raise ChainError if
        the endpoint supports neither or ``blocks`` is negative.
        """
        if blocks < 0:
            raise ChainError(f"cannot mine {blocks} blocks")
        if self.embedded is not None:
            return self.embedded.mine(blocks)
        if blocks == 0:
            return self.block_number()
        try:
            self._rpc("anvil_mine", [hex(blocks)])
        except ChainError as anvil_error:
            try:
                for _ in range(blocks):
                    self._rpc("evm_mine", [])
            except ChainError as evm_error:
                raise ChainError(
                    f"{self._describe()} cannot mine on demand (anvil_mine: {anvil_error}; "
                    f"evm_mine: {evm_error})"
                ) from evm_error
        return self.block_number()

    def fund(self, address: ChecksumAddress, wei: int) -> None:
        """Give ``address`` ``wei`` more on a dev/test chain.

        Embedded: a mined transfer from the dev key. RPC: ``anvil_setBalance`` (or
        ``hardhat_setBalance``) to its balance plus ``wei``. Raise ChainError if the
        endpoint has neither or the transfer fails.
        """
        if wei < 0:
            raise ChainError(f"cannot fund a negative amount ({wei} wei)")
        if self.embedded is not None:
            self.embedded.fund(address, wei)
            return
        try:
            balance = int(self.w3.eth.get_balance(address))
        except Exception as exc:
            raise ChainError(f"cannot read balance of {address}: {exc}") from exc
        target = hex(balance + wei)
        errors = []
        for method in ("anvil_setBalance", "hardhat_setBalance"):
            try:
                self._rpc(method, [address, target])
                return
            except ChainError as exc:
                errors.append(f"{method}: {exc}")
        raise ChainError(f"{self._describe()} cannot fund accounts ({'; '.join(errors)})")

    def json_rpc(
        self,
        method: str,
        params: Any,
        request_id: Any = None,
        *,
        call_time_cap: float | None = None,
    ) -> dict[str, Any]:
        """Return the standard JSON-RPC 2.0 response object for one request (serve it as is).

        Embedded: translated from eth-tester's dialect (see ``EmbeddedChain.json_rpc``, which
        also refuses raw transactions not signed for its chain id and stops ``eth_call`` /
        ``eth_estimateGas`` after ``call_time_cap`` seconds). RPC: forwarded (the endpoint
        applies its own limits). Failures come back as JSON-RPC errors; nothing is filtered
        here -- the caller decides which methods it serves. Raise ChainError only if the
        chain is closed.
        """
        if self.embedded is not None:
            return self.embedded.json_rpc(method, params, request_id, call_time_cap=call_time_cap)
        try:
            response = dict(self.w3.provider.make_request(method, params))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 -- transport failure as a JSON-RPC error
            response = {"error": {"code": JSONRPC_SERVER_ERROR, "message": str(exc)}}
        response["jsonrpc"] = "2.0"
        response["id"] = request_id
        return response

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """Return the result of a raw JSON-RPC call; raise ChainError on an error answer."""
        try:
            response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(f"{method} failed on {self._describe()}: {exc}") from exc
        if response.get("error"):
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainError(str(message))
        return response.get("result")

    def _describe(self) -> str:
        if self.kind == "embedded" and self.embedded is not None:
            return f"embedded chain {self.embedded.chain_dir}"
        return f"chain RPC {self.rpc_url}"


def open_embedded(
    data_dir: Path,
    fund: Sequence[ChecksumAddress] = (),
    *,
    synchronous: Synchronous = "FULL",
    directory: Path | None = None,
) -> ChainBackend:
    """Return the embedded chain kept in ``directory`` (default ``data_dir / "chain"``),
    created on first use.

    ``fund`` addresses get a generous dev balance (at genesis, or by transfer if they are
    empty when an existing chain is opened). Raise ConfigError if the directory is in use,
    incomplete, or holds another chain (genesis mismatch).
    """
    from node.chain.embedded import EmbeddedChain  # lazily: py-evm, only for an embedded chain

    where = Path(directory) if directory else Path(data_dir) / CHAIN_SUBDIR
    embedded = EmbeddedChain.open(where, fund, synchronous=synchronous)
    return ChainBackend(
        w3=embedded.w3, kind="embedded", chain_id=embedded.chain_id, embedded=embedded
    )


def split_rpc_urls(url: str) -> list[str]:
    """Return the URLs of a ``--chain`` value: one URL, or several separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


def open_rpc(url: str, timeout: float = DEFAULT_RPC_TIMEOUT) -> ChainBackend:
    """Return a backend over the Ethereum JSON-RPC endpoint ``url`` (HTTP/HTTPS).

    ``url`` may list several endpoints of the same chain separated by commas: requests fail
    over between them (:class:`~node.chain.provider.FailoverProvider`). Raise ChainError
    with the URLs (credentials removed) if one is not HTTP(S), if they are unreachable or do
    not answer ``eth_chainId``, or if two of them serve different chains.
    """
    urls = split_rpc_urls(url)
    shown_urls = [redact_url(u) for u in urls]
    shown = ",".join(shown_urls)
    if not urls:
        raise ChainError("no chain RPC URL given")
    for raw, name in zip(urls, shown_urls, strict=True):
        if urlsplit(raw).scheme not in ("http", "https"):
            raise ChainError(f"chain RPC URL must be http:// or https://, got {name!r}")
    provider = FailoverProvider(urls, timeout=timeout, shown=shown_urls)
    w3 = Web3(provider)
    attempts, provider.max_attempts = provider.max_attempts, 2 * len(urls)  # fail fast at start
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:
        provider.close()
        raise ChainError(
            f"chain RPC at {shown} is unreachable or not an Ethereum node "
            f"(eth_chainId failed: {type(exc).__name__}: {exc})"
        ) from exc
    provider.max_attempts = attempts
    if len(urls) > 1:
        _check_same_chain(urls, shown_urls, chain_id, timeout)
    return ChainBackend(w3=w3, kind="rpc", chain_id=chain_id, rpc_url=shown)


def _check_same_chain(urls: list[str], shown: list[str], chain_id: int, timeout: float) -> None:
    """Raise ChainError if a reachable endpoint serves another chain id (an unreachable one
    is left to failover: it may come back)."""
    for raw, name in zip(urls, shown, strict=True):
        single = FailoverProvider([raw], timeout=timeout, max_attempts=1, shown=[name])
        try:
            other = int(Web3(single).eth.chain_id)
        except Exception:  # noqa: BLE001 -- down now; failover copes
            continue
        finally:
            single.close()
        if other != chain_id:
            raise ChainError(f"chain RPC {name} serves chain id {other}, not {chain_id}")


def open_chain(
    data_dir: Path,
    rpc_url: str | None,
    fund: Sequence[ChecksumAddress] = (),
    *,
    directory: Path | None = None,
) -> ChainBackend:
    """Return the RPC backend if ``rpc_url`` is given, else the embedded chain in ``data_dir``.

    ``fund`` applies to the embedded chain only (use :meth:`ChainBackend.fund` on anvil).
    Raise ChainError (RPC unreachable) or ConfigError (embedded chain dir unusable).
    """
    if rpc_url:
        return open_rpc(rpc_url)
    return open_embedded(data_dir, fund, directory=directory)


INDEPENDENT_CHECK: Final = (
    "for an independent check, run `collegium verify-tx BUNDLE --chain <an Ethereum RPC you "
    "trust> --gateway <an IPFS gateway>` against the chain the registry lives on"
)


def describe_chain_trust(chain_id: int, rpc_url: str | None) -> tuple[str, str | None]:
    """Return (which chain an audit checked, the trust caveat or None).

    ``rpc_url`` None means this process's own embedded chain. A Collegium embedded chain
    (chain id 1337), served by a node at ``/rpc``, is that node's own record: checking against
    it trusts the node, so the caveat says so and how to check independently.
    """
    where = "the embedded chain in this data directory" if rpc_url is None else redact_url(rpc_url)
    named = f"chain id {chain_id} at {where}"
    if rpc_url is None or chain_id == EMBEDDED_CHAIN_ID:
        return (
            named,
            "this is a Collegium node's own embedded chain: the check trusts that node; "
            + INDEPENDENT_CHECK,
        )
    return named, None


def redact_url(url: str) -> str:
    """Return ``url`` without the user:password part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
