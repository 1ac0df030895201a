"""Contract artifacts and deployment; the ``node.chain.contracts`` names of the web3.py
"contract" layer.

The artifacts are the committed output of ``contracts/compile.js`` in ``contracts/build``.
Sending a locally signed transaction is :mod:`node.chain.sending`, decoding a revert
(:class:`ContractRevert`, e.g. ``registry rejected the call: NotRegisteredNode(0xAbC…)``)
:mod:`node.chain.reverts`; their public names are importable from here too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils import to_checksum_address
from web3 import Web3

from node.chain.reverts import (
    ContractRevert,
    compute_error_selectors,
    decode_revert,
    extract_revert_data,
    revert_from_exception,
)
from node.chain.sending import (
    TransactionError,
    TxHash,
    TxResult,
    account_lock,
    embedded_gas_limit,
    send_transaction,
    tx_result,
)
from node.errors import ChainError, ConfigError
from node.resources import bundled, contracts_dir


def _artifacts_dir() -> Path:
    try:
        return contracts_dir()
    except ConfigError:
        return bundled("contracts")


ARTIFACTS_DIR: Path = _artifacts_dir()
"""Where ``<Contract>.json`` is: ``contracts/build`` in a checkout (``contracts/compile.js`` writes
it), the wheel's package data otherwise (:mod:`node.resources`)."""


class ArtifactError(ChainError):
    """A contract artifact is missing or malformed (run ``npm run build`` in contracts/)."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as written by ``contracts/compile.js``."""

    contract_name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: HexStr
    deployed_bytecode: HexStr
    compiler_version: str
    source_hash: HexStr


def load_artifact(name: str, directory: Path | None = None) -> Artifact:
    """Return the artifact ``<directory>/<name>.json`` (default :data:`ARTIFACTS_DIR`).

    Raises :class:`ArtifactError` if the file is absent or lacks a field.
    """
    path = (directory or ARTIFACTS_DIR) / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Artifact(
            contract_name=str(raw["contractName"]),
            abi=tuple(raw["abi"]),
            bytecode=HexStr(raw["bytecode"]),
            deployed_bytecode=HexStr(raw["deployedBytecode"]),
            compiler_version=str(raw["compiler"]["version"]),
            source_hash=HexStr(raw["sourceHash"]),
        )
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"no artifact {path} (run `npm ci && npm run build` in contracts/)"
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"malformed artifact {path}: {exc}") from exc


def deploy(
    w3: Web3,
    account: LocalAccount,
    name: str,
    *args: Any,
    error_type: type[ContractRevert] = ContractRevert,
) -> ChecksumAddress:
    """Deploy artifact ``name`` with constructor ``args`` from ``account``; return its address.

    Raises ``error_type`` (a :class:`ContractRevert`) if the constructor reverts,
    :class:`TransactionError` if the transaction fails otherwise, :class:`ArtifactError` if the
    artifact is absent.
    """
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    receipt = send_transaction(
        w3, account, factory.constructor(*args), name, artifact.abi, error_type=error_type
    )
    address = receipt.get("contractAddress")
    if not address:
        raise TransactionError(f"deploying {name} produced no contract address")
    return to_checksum_address(address)


__all__ = [
    "ARTIFACTS_DIR",
    "Artifact",
    "ArtifactError",
    "ContractRevert",
    "TransactionError",
    "TxHash",
    "TxResult",
    "account_lock",
    "compute_error_selectors",
    "decode_revert",
    "deploy",
    "embedded_gas_limit",
    "extract_revert_data",
    "load_artifact",
    "revert_from_exception",
    "send_transaction",
    "tx_result",
]
