"""Business transactions: the EIP-712 typed data a wallet signs, and its canonical leaf.

A business transaction is signed by a wallet with EIP-712 (``eth_signTypedData_v4``).
The domain binds it to one chain and one registry contract, so a signature cannot be
replayed on another deployment; the per-signer ``nonce`` stops replays on this one.

The canonical body stored in the content store and hashed into the ledger is the RLP
list::

    [LEAF_VERSION, chain_id, registry, subsystem, kind, [party...], amount, currency,
     memo, payload, nonce, timestamp, signature]

from which anyone can recompute the EIP-712 digest and recover the signer.

A *private* transaction (``PrivateBusinessTransaction``, leaf version 2) keeps its
business content in an encrypted payload: only the subsystem, the kind, the CID of the
ciphertext and ``payloadHash = keccak256(salt || plaintext)`` are signed and public::

    [PRIVATE_LEAF_VERSION, chain_id, registry, subsystem, kind, payload, payload_hash,
     nonce, timestamp, signature]

It is a separate EIP-712 primary type (its own type hash), so the public type and every
signature made with it are unchanged, and neither signature can be taken for the other.
A participant who can decrypt the payload proves its content by revealing the salt.

One module per job (this ``__init__`` re-exports every public name): ``typeddata.py`` the
EIP-712 domain, message, type hashes and digest; ``signature.py`` signer recovery;
``validation.py`` the field checks; ``leaf.py`` the signed transaction and its RLP leaf.

The signing digest is computed directly in ``typeddata.py`` (type hashes and the domain
separator are constants), which is several times faster than a generic EIP-712 encoder; a
test checks it byte for byte against ``eth_account``. Recovery uses ``eth_keys`` (coincurve
backend when installed).
"""

from __future__ import annotations

from node.ledger.transaction.leaf import (
    LEAF_VERSION,
    PAYLOAD_HASH_LEN,
    PRIVATE_LEAF_VERSION,
    RLP_LIST,
    RLP_LONG_OFFSET,
    RLP_SHORT,
    RLP_STRING,
    SignedBusinessTx,
    compute_rlp,
    decode_leaf,
    decode_leaf_payload,
    encode_leaf,
    verify_signed_tx,
)
from node.ledger.transaction.signature import (
    SECP256K1_HALF_N,
    SECP256K1_N,
    SIGNATURE_LEN,
    V_OFFSET,
    compute_checksum_address,
    recover_digest_signer,
)
from node.ledger.transaction.typeddata import (
    ADDRESS_HEX_LEN,
    DOMAIN_TYPEHASH,
    EIP712_DOMAIN_NAME,
    EIP712_DOMAIN_VERSION,
    EIP712_TYPES,
    PRIMARY_TYPE,
    PRIVATE_EIP712_TYPES,
    PRIVATE_TYPE,
    PRIVATE_TYPEHASH,
    PUBLIC_TYPEHASH,
    BusinessTx,
    Domain,
    TxId,
    compute_digest,
    compute_domain_separator,
    compute_struct_hash,
    compute_tx_id,
    compute_type_string,
    recover_signer,
    sign_tx,
    typed_data,
    typed_data_schema,
)
from node.ledger.transaction.validation import (
    AMOUNT_RE,
    CURRENCY_RE,
    HASH_RE,
    KIND_RE,
    KNOWN_KINDS,
    MAX_AMOUNT_DECIMALS,
    MAX_AMOUNT_DIGITS,
    MAX_CURRENCY_LEN,
    MAX_INDEX_INT,
    MAX_KIND_LEN,
    MAX_MEMO_LEN,
    MAX_PARTIES,
    MAX_PAYLOAD_LEN,
    MAX_SUBSYSTEM_LEN,
    MAX_UINT64,
    NAME_RE,
    ZERO_ADDRESS,
    compute_payload_hash,
    is_hex_address,
    validate_amount,
    validate_tx,
)

__all__ = [
    "ADDRESS_HEX_LEN",
    "AMOUNT_RE",
    "BusinessTx",
    "CURRENCY_RE",
    "DOMAIN_TYPEHASH",
    "Domain",
    "EIP712_DOMAIN_NAME",
    "EIP712_DOMAIN_VERSION",
    "EIP712_TYPES",
    "HASH_RE",
    "KIND_RE",
    "KNOWN_KINDS",
    "LEAF_VERSION",
    "MAX_AMOUNT_DECIMALS",
    "MAX_AMOUNT_DIGITS",
    "MAX_CURRENCY_LEN",
    "MAX_INDEX_INT",
    "MAX_KIND_LEN",
    "MAX_MEMO_LEN",
    "MAX_PARTIES",
    "MAX_PAYLOAD_LEN",
    "MAX_SUBSYSTEM_LEN",
    "MAX_UINT64",
    "NAME_RE",
    "PAYLOAD_HASH_LEN",
    "PRIMARY_TYPE",
    "PRIVATE_EIP712_TYPES",
    "PRIVATE_LEAF_VERSION",
    "PRIVATE_TYPE",
    "PRIVATE_TYPEHASH",
    "PUBLIC_TYPEHASH",
    "RLP_LIST",
    "RLP_LONG_OFFSET",
    "RLP_SHORT",
    "RLP_STRING",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "SIGNATURE_LEN",
    "SignedBusinessTx",
    "TxId",
    "V_OFFSET",
    "ZERO_ADDRESS",
    "compute_checksum_address",
    "compute_digest",
    "compute_domain_separator",
    "compute_payload_hash",
    "compute_rlp",
    "compute_struct_hash",
    "compute_tx_id",
    "compute_type_string",
    "decode_leaf",
    "decode_leaf_payload",
    "encode_leaf",
    "is_hex_address",
    "recover_digest_signer",
    "recover_signer",
    "sign_tx",
    "typed_data",
    "typed_data_schema",
    "validate_amount",
    "validate_tx",
    "verify_signed_tx",
]
