"""``accepted_json`` (the single submission's answer, written directly) says exactly what
``BusinessTxPublic.from_accepted`` dumps as the route: the same fields, in the same order,
with the same values, for public and private transactions and text outside ASCII."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from eth_account import Account

from node.api.schemas import COMPACT_JSON, BusinessTxPublic, accepted_json
from node.ledger.service import AcceptedTx
from node.ledger.transaction import BusinessTx


def accepted(**fields: object) -> AcceptedTx:
    values: dict[str, object] = {
        "subsystem": "main", "kind": "invoice",
        "parties": (Account.create().address, Account.create().address),
        "amount": "125.5", "currency": "EUR", "memo": "Zürich – café \u2028 \"quoted\" \\ /",
        "payload": "", "nonce": 2**62, "timestamp": 1_700_000_000,
    }  # fmt: skip
    values.update(fields)
    return AcceptedTx(
        tx_id="0x" + "ab" * 32, seq=41, signer=Account.create().address, cid="bafkreiexample",
        body=b"\x01", leaf_hash="0x" + "cd" * 32, signature="0x" + "ef" * 65,
        received_at=datetime(2026, 12, 7, 18, 30, 1, 123456), tx=BusinessTx(**values),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    "fields",
    [{}, {"private": True, "payload": "bafkreicipher", "payload_hash": "0x" + "12" * 32,
          "amount": "", "currency": "", "memo": "", "parties": ()}],
    ids=["public", "private"],
)  # fmt: skip
def test_the_direct_answer_is_the_models(fields: dict[str, object]) -> None:
    item = accepted(**fields)
    model = BusinessTxPublic.from_accepted(item)
    as_route = COMPACT_JSON.encode(model.model_dump(mode="json")).encode()
    assert accepted_json(item) == as_route
    assert list(json.loads(accepted_json(item))) == list(BusinessTxPublic.model_fields)
