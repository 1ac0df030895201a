// In-browser checks of one transaction: EIP-712 signature, RFC 6962 inclusion path (keccak256,
// 0x00 leaf / 0x01 node prefixes, as node/ledger/hasher.py and verify.py) and the on-chain root.

import {
  type Hex,
  type PublicClient,
  bytesToHex,
  concat,
  fromRlp,
  getAddress,
  hexToBigInt,
  keccak256,
  recoverTypedDataAddress,
} from "viem";
import type { Proof, Tx, TypedDataDoc, TypedFields } from "./api";
import { readRegistry } from "./chain";

export const LEAF_PREFIX = "0x00" as const;
export const NODE_PREFIX = "0x01" as const;
export const LEAF_VERSION = 1n;
export const LEAF_ITEMS = 13;
/** Private transactions (PrivateBusinessTransaction): node/ledger/transaction.py encode_leaf. */
export const PRIVATE_LEAF_VERSION = 2n;
export const PRIVATE_LEAF_ITEMS = 10;
export const PRIVATE_TYPE = "PrivateBusinessTransaction";

export interface CheckResult {
  ok: boolean;
  detail: string;
}

/** Return keccak256(0x00 || leaf). */
export function hashLeaf(leaf: Hex): Hex {
  return keccak256(concat([LEAF_PREFIX, leaf]));
}

/** Return keccak256(0x01 || left || right). */
export function hashChildren(left: Hex, right: Hex): Hex {
  return keccak256(concat([NODE_PREFIX, left, right]));
}

/** Return the root implied by an RFC 9162 inclusion proof (section 2.1.3.2); throws if malformed. */
export function rootFromInclusionProof(index: number, size: number, leafHash: Hex, path: Hex[]): Hex {
  if (!(index >= 0 && index < size)) throw new Error(`leaf index ${index} is outside a tree of size ${size}`);
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leafHash;
  for (const p of path) {
    if (sn === 0n) throw new Error("inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = hashChildren(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof is too short");
  return r;
}

/** Return the EIP-712 types and primary type `tx` was signed with (public or private). */
export function typesOf(tx: Tx, doc: TypedDataDoc): { types: TypedFields; primaryType: string } {
  if (!tx.private) return { types: doc.types, primaryType: doc.primaryType };
  if (!doc.private) throw new Error("the node's typed-data document has no private transaction type");
  return doc.private;
}

/** Return the EIP-712 message of `tx` (the fields its signer signed). */
export function message(tx: Tx): Record<string, unknown> {
  if (tx.private)
    return {
      subsystem: tx.subsystem,
      kind: tx.kind,
      payload: tx.payload,
      payloadHash: tx.payload_hash as Hex,
      nonce: BigInt(tx.nonce),
      timestamp: BigInt(tx.timestamp),
    };
  return {
    subsystem: tx.subsystem,
    kind: tx.kind,
    parties: tx.parties,
    amount: tx.amount,
    currency: tx.currency,
    memo: tx.memo,
    payload: tx.payload,
    nonce: BigInt(tx.nonce),
    timestamp: BigInt(tx.timestamp),
  };
}

/** Check the EIP-712 signature: the recovered address must be the transaction's signer. */
export async function checkSignature(tx: Tx, doc: TypedDataDoc): Promise<CheckResult> {
  const signed = typesOf(tx, doc);
  const { EIP712Domain: _domain, ...types } = signed.types;
  const recovered = await recoverTypedDataAddress({
    domain: doc.domain,
    types,
    primaryType: signed.primaryType,
    message: message(tx),
    signature: tx.signature,
  });
  const ok = getAddress(recovered) === getAddress(tx.signer);
  return {
    ok,
    detail: ok ? `recovered ${recovered}, the signer` : `recovered ${recovered}, not the signer ${tx.signer}`,
  };
}

function text(item: unknown): string {
  return new TextDecoder().decode(hexBytes(item));
}

function hexBytes(item: unknown): Uint8Array {
  if (typeof item !== "string") throw new Error("leaf item is a list where bytes were expected");
  const hex = item.slice(2);
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function int(item: unknown): bigint {
  return item === "0x" ? 0n : hexToBigInt(item as Hex);
}

/** Return the mismatching field names between the canonical leaf (RLP) and the shown transaction. */
export function compareLeaf(leaf: Hex, tx: Tx, doc: TypedDataDoc): string[] {
  const items = fromRlp(leaf, "hex") as unknown[];
  if (!Array.isArray(items) || items.length !== (tx.private ? PRIVATE_LEAF_ITEMS : LEAF_ITEMS)) return ["leaf structure"];
  const wrong: string[] = [];
  const expect = (name: string, same: boolean) => {
    if (!same) wrong.push(name);
  };
  if (tx.private) {
    // [2, chainId, registry, subsystem, kind, payload, payloadHash, nonce, timestamp, signature]
    expect("version", int(items[0]) === PRIVATE_LEAF_VERSION);
    expect("chainId", int(items[1]) === BigInt(doc.domain.chainId));
    expect("registry", getAddress(items[2] as Hex) === getAddress(doc.domain.verifyingContract));
    expect("subsystem", text(items[3]) === tx.subsystem);
    expect("kind", text(items[4]) === tx.kind);
    expect("payload", text(items[5]) === tx.payload);
    expect("payloadHash", bytesToHex(hexBytes(items[6])) === (tx.payload_hash ?? "").toLowerCase());
    expect("nonce", int(items[7]) === BigInt(tx.nonce));
    expect("timestamp", int(items[8]) === BigInt(tx.timestamp));
    expect("signature", bytesToHex(hexBytes(items[9])) === tx.signature.toLowerCase());
    return wrong;
  }
  expect("version", int(items[0]) === LEAF_VERSION);
  expect("chainId", int(items[1]) === BigInt(doc.domain.chainId));
  expect("registry", getAddress(items[2] as Hex) === getAddress(doc.domain.verifyingContract));
  expect("subsystem", text(items[3]) === tx.subsystem);
  expect("kind", text(items[4]) === tx.kind);
  const parties = (items[5] as Hex[]).map((p) => getAddress(p));
  expect("parties", parties.join() === tx.parties.map((p) => getAddress(p)).join());
  expect("amount", text(items[6]) === tx.amount);
  expect("currency", text(items[7]) === tx.currency);
  expect("memo", text(items[8]) === tx.memo);
  expect("payload", text(items[9]) === tx.payload);
  expect("nonce", int(items[10]) === BigInt(tx.nonce));
  expect("timestamp", int(items[11]) === BigInt(tx.timestamp));
  expect("signature", bytesToHex(hexBytes(items[12])) === tx.signature.toLowerCase());
  return wrong;
}

/** Check the Merkle path: the leaf is this transaction and the path leads to the proof's root. */
export function checkMerkle(tx: Tx, proof: Proof, doc: TypedDataDoc): CheckResult & { computed?: Hex } {
  const wrong = compareLeaf(proof.leaf, tx, doc);
  if (wrong.length) return { ok: false, detail: `the proof's leaf is not this transaction (${wrong.join(", ")})` };
  const leafHash = hashLeaf(proof.leaf);
  if (leafHash !== tx.leaf_hash.toLowerCase())
    return { ok: false, detail: `leaf hash ${leafHash} differs from the recorded ${tx.leaf_hash}` };
  let computed: Hex;
  try {
    computed = rootFromInclusionProof(proof.leaf_index, proof.tree_size, leafHash, proof.path);
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
  const ok = computed === proof.root.toLowerCase();
  return {
    ok,
    computed,
    detail: ok
      ? `leaf ${proof.leaf_index} of ${proof.tree_size}: ${proof.path.length} hashes lead to root ${computed}`
      : `path leads to ${computed}, not the claimed root ${proof.root}`,
  };
}

/** Check the root recomputed from the path against the registry's getAnchor(i) on-chain. */
export async function checkOnChain(
  client: PublicClient,
  proof: Proof,
  computed: Hex | undefined,
): Promise<CheckResult> {
  const [root, treeSize, , , , , blockNumber] = await readRegistry<
    [Hex, bigint, bigint, string, string, Hex, bigint]
  >(client, proof.registry, "getAnchor", [BigInt(proof.anchor_index)]);
  const expected = computed ?? proof.root.toLowerCase();
  if (root.toLowerCase() !== expected)
    return { ok: false, detail: `anchor #${proof.anchor_index} on-chain has root ${root}, the proof gives ${expected}` };
  if (Number(treeSize) !== proof.tree_size)
    return { ok: false, detail: `anchor #${proof.anchor_index} on-chain covers ${treeSize} leaves, not ${proof.tree_size}` };
  return {
    ok: true,
    detail: `registry ${proof.registry} anchor #${proof.anchor_index} (block ${blockNumber}) has root ${root}`,
  };
}
