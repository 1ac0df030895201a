// Verify one Collegium business transaction from its proof bundle with viem, using only a chain
// JSON-RPC URL and an IPFS gateway (docs/client.md). Copy it: it uses no project code.
//
//   node verify-proof.mjs BUNDLE CHAIN_RPC_URL GATEWAY_URL
//
// BUNDLE is a file or the URL of GET /api/v1/transactions/{id}/proof. Checks: the leaf fetched
// from the gateway is the bundle's; its EIP-712 signature (public transactions); the inclusion
// path from keccak256(0x00 || leaf) to the root (RFC 9162, keccak256); the root and tree size
// anchored in the registry at anchor_index. Prints one line per check; exit 0 iff all hold.
import { readFileSync } from "node:fs";
import {
  bytesToHex, concat, createPublicClient, fromRlp, hashTypedData, hexToBigInt, hexToBytes,
  hexToString, http, keccak256, parseAbi, recoverTypedDataAddress,
} from "viem";

const [source, rpcUrl, gatewayUrl] = process.argv.slice(2);
if (!gatewayUrl) {
  console.error("usage: node verify-proof.mjs BUNDLE CHAIN_RPC_URL GATEWAY_URL");
  process.exit(2);
}
const bundle = source.startsWith("http")
  ? await (await fetch(source)).json()
  : JSON.parse(readFileSync(source, "utf8"));
if ((bundle.hash ?? "keccak256") !== "keccak256") {
  console.error(`unknown tree hash ${bundle.hash}: this verifier knows keccak256`);
  process.exit(3);
}
const results = [];
const check = (name, ok, detail) => results.push({ name, ok, detail });

// 1. the leaf, from the gateway (a raw block: its bytes are the leaf)
const res = await fetch(`${gatewayUrl.replace(/\/$/, "")}/ipfs/${bundle.cid}?format=raw`);
const leaf = bytesToHex(new Uint8Array(await res.arrayBuffer()));
check("leaf", res.ok && leaf === bundle.leaf.toLowerCase(), `${bundle.cid} from the gateway`);

// 2. the signature of a public transaction (leaf version 1): rebuild the EIP-712 message
const items = fromRlp(leaf, "hex");
const num = (x) => (x === "0x" ? 0n : hexToBigInt(x));
if (num(items[0]) === 1n) {
  const [, chainId, registry, subsystem, kind, parties, amount, currency, memo, payload, nonce,
    timestamp, signature] = items;
  const typed = {
    domain: { name: "Collegium", version: "1", chainId: num(chainId), verifyingContract: registry },
    types: {
      BusinessTransaction: [
        { name: "subsystem", type: "string" }, { name: "kind", type: "string" },
        { name: "parties", type: "address[]" }, { name: "amount", type: "string" },
        { name: "currency", type: "string" }, { name: "memo", type: "string" },
        { name: "payload", type: "string" }, { name: "nonce", type: "uint64" },
        { name: "timestamp", type: "uint64" },
      ],
    },
    primaryType: "BusinessTransaction",
    message: {
      subsystem: hexToString(subsystem), kind: hexToString(kind), parties,
      amount: hexToString(amount), currency: hexToString(currency), memo: hexToString(memo),
      payload: hexToString(payload), nonce: num(nonce), timestamp: num(timestamp),
    },
  };
  const digest = hashTypedData(typed);
  const signer = await recoverTypedDataAddress({ ...typed, signature });
  check("signature", digest === bundle.tx_id.toLowerCase(), `signed by ${signer}`);
} else {
  check("signature", true, "private transaction: checked by participants (payloadHash)");
}

// 3. the inclusion path (RFC 9162 section 2.1.3.2, with keccak256)
const node = (l, r) => keccak256(concat(["0x01", l, r]));
let fn = BigInt(bundle.leaf_index);
let sn = BigInt(bundle.tree_size) - 1n;
let r = keccak256(concat(["0x00", leaf]));
let pathOk = fn <= sn;
for (const p of bundle.path) {
  if (sn === 0n) { pathOk = false; break; }
  if ((fn & 1n) === 1n || fn === sn) {
    r = node(p, r);
    while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
  } else {
    r = node(r, p);
  }
  fn >>= 1n; sn >>= 1n;
}
pathOk = pathOk && sn === 0n && r === bundle.root.toLowerCase();
check("inclusion", pathOk, `root ${r}`);

// 4. the root anchored on-chain
const client = createPublicClient({ transport: http(rpcUrl) });
const abi = parseAbi([
  "function getAnchor(uint256) view returns (bytes32 root, uint64 treeSize, uint64 count, string batchCid, string subsystem, address node, uint64 blockNumber)",
]);
const [root, treeSize] = await client.readContract({
  address: bundle.registry, abi, functionName: "getAnchor", args: [BigInt(bundle.anchor_index)],
});
check("anchor", root === bundle.root.toLowerCase() && treeSize === BigInt(bundle.tree_size),
  `anchor #${bundle.anchor_index} in ${bundle.registry}`);

for (const c of results) console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(10)} ${c.detail}`);
const ok = results.every((c) => c.ok);
console.log(ok ? "VALID" : "INVALID");
process.exit(ok ? 0 : 3);
