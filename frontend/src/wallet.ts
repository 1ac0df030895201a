// EIP-1193 wallet: connect, check the chain, sign in with Ethereum (EIP-4361), sign EIP-712.

import { type Hex, getAddress, numberToHex } from "viem";
import { API, ApiError, getJson, type Me, nodeUrl, postJson, type TypedDataDoc, type UnsignedTx } from "./api";
import { DELEGATION_TTL_MS, delegationMessage } from "./protocol";
import { clearSession, newSessionKey, saveSession } from "./session";
import { getUserJson } from "./userapi";

export const USER_REJECTED = 4001;
export const UNAUTHORIZED = 4100;
export const UNSUPPORTED_METHOD = 4200;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const UNRECOGNIZED_CHAIN = 4902;

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
  on?(event: string, cb: (...a: unknown[]) => void): void;
}

declare global {
  interface Window {
    ethereum?: Eip1193;
  }
}

/** A wallet problem worded for the user. */
export class WalletError extends Error {}

/** Return the injected wallet or throw a WalletError saying none is present. */
export function provider(): Eip1193 {
  if (!window.ethereum)
    throw new WalletError(
      "No wallet found. Install an Ethereum wallet (an EIP-1193 browser extension such as MetaMask) and reload.",
    );
  return window.ethereum;
}

/** Return `promise`'s value; rephrase wallet errors (rejection, unknown method) for the user. */
export async function friendly<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === USER_REJECTED) throw new WalletError("You rejected the request in your wallet; nothing was sent.");
    if (code === UNAUTHORIZED)
      throw new WalletError("Your wallet did not authorize this account for the request: select the signed-in account in your wallet.");
    if (e instanceof WalletError || e instanceof ApiError) throw e;
    throw new WalletError(`Wallet error: ${(e as Error).message ?? String(e)}`);
  }
}

/** Return the connected account, asking the wallet for access. */
export async function connect(): Promise<`0x${string}`> {
  const accounts = (await friendly(provider().request({ method: "eth_requestAccounts" }))) as string[];
  if (!accounts?.length) throw new WalletError("The wallet returned no account.");
  return getAddress(accounts[0]);
}

/** The account this tab connected (shared by the pages), null until one connects. */
let account: `0x${string}` | null = null;

/** Return the account this tab connected, or null. */
export function connectedAccount(): `0x${string}` | null {
  return account;
}

/** Return the account this tab connected, connecting the wallet first when there is none. */
export async function ensureAccount(): Promise<`0x${string}`> {
  account ??= await connect();
  return account;
}

/** Connect the wallet again (the user may have switched accounts) and keep its account. */
export async function reconnect(): Promise<`0x${string}`> {
  account = await connect();
  return account;
}

/** Return the wallet's chain id. */
export async function walletChainId(): Promise<number> {
  return Number(await friendly(provider().request({ method: "eth_chainId" })));
}

/** Throw a WalletError if the wallet is not on `expected`. */
export async function requireChain(expected: number): Promise<void> {
  const actual = await walletChainId();
  if (actual !== expected)
    throw new WalletError(
      `Wrong network: your wallet is on chain ${actual}, this node's chain is ${expected}. Use "Switch network" or change it in your wallet.`,
    );
}

/** Ask the wallet to switch to (or add) the node's chain. */
export async function switchChain(chainId: number): Promise<void> {
  const eth = provider();
  try {
    await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: numberToHex(chainId) }] });
  } catch (e) {
    if ((e as { code?: number }).code !== UNRECOGNIZED_CHAIN) return friendly(Promise.reject(e));
    await friendly(
      eth.request({
        method: "wallet_addEthereumChain",
        params: [
          {
            chainId: numberToHex(chainId),
            chainName: `Collegium ${chainId}`,
            nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
            rpcUrls: [nodeUrl("/rpc")],
          },
        ],
      }),
    );
  }
}

export interface Session {
  address: string;
  [k: string]: unknown;
}

/** Sign in with Ethereum: a new session key, the wallet's delegation to it (EIP-4361 + EIP-5573
 * ReCap, nonce from the node), a login that also opens a local cookie session, then `/auth/me`
 * signed with the session key. */
export async function signIn(address: `0x${string}`, chainId: number): Promise<Session> {
  let nonce: string;
  try {
    nonce = (await getJson<{ nonce: string }>(`${API}/auth/nonce`)).nonce;
  } catch (e) {
    if (e instanceof ApiError && e.status === 405)
      nonce = (await postJson<{ nonce: string }>(`${API}/auth/nonce`, {})).nonce;
    else if (e instanceof ApiError && e.status === 404)
      throw new WalletError("Sign-in is not available on this node yet (no /api/v1/auth endpoints).");
    else throw e;
  }
  const { domain } = await getJson<TypedDataDoc>(`${API}/transactions/typed-data`);
  const key = await newSessionKey();
  const url = new URL(nodeUrl("/"));
  const issuedAt = new Date();
  const expirationTime = new Date(issuedAt.getTime() + DELEGATION_TTL_MS);
  const message = delegationMessage({
    scheme: url.protocol.replace(/:$/, ""),
    domain: url.host,
    address,
    chainId,
    registry: domain.verifyingContract,
    nonce,
    sessionDid: key.did,
    issuedAt,
    expirationTime,
  });
  const signature = (await friendly(provider().request({ method: "personal_sign", params: [message, address] }))) as string;
  await clearSession();
  await postJson(`${API}/auth/login`, { message, signature });
  await saveSession(key, address, message, signature, expirationTime);
  return getUserJson<Session & Me>(`${API}/auth/me`);
}

/** Sign out: forget the session key and its delegation, and close the node's cookie session. */
export async function signOut(): Promise<void> {
  await clearSession();
  await postJson(`${API}/auth/logout`, {}).catch(() => undefined);
}

/** Return the signature of a business transaction by `address` (eth_signTypedData_v4). */
export async function signTransaction(
  address: `0x${string}`,
  doc: TypedDataDoc,
  message: Record<string, unknown>,
): Promise<`0x${string}`> {
  const typed = { types: doc.types, primaryType: doc.primaryType, domain: doc.domain, message };
  return (await friendly(
    provider().request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(typed)] }),
  )) as `0x${string}`;
}

/** Return whether an EIP-1193 error says the wallet does not offer the method. */
function isUnsupported(e: unknown): boolean {
  const code = (e as { code?: number }).code;
  return code === UNSUPPORTED_METHOD || code === JSONRPC_METHOD_NOT_FOUND;
}

/** Return the hash of `tx` signed and sent by the wallet (`eth_sendTransaction`, the method every
 * browser wallet offers), or null when the wallet does not offer it. */
export async function sendWithWallet(tx: UnsignedTx): Promise<Hex | null> {
  try {
    return (await provider().request({
      method: "eth_sendTransaction",
      params: [{ from: tx.from, to: tx.to, data: tx.data, value: tx.value }],
    })) as Hex;
  } catch (e) {
    if (isUnsupported(e)) return null;
    return friendly(Promise.reject(e));
  }
}

/** Return `tx` signed by the wallet (`eth_signTransaction`) with every field filled in, for the
 * node to relay; throws a WalletError when the wallet can neither send nor sign transactions. */
export async function signForRelay(
  tx: UnsignedTx,
  fields: { nonce: number; gas: bigint; gasPrice: bigint },
): Promise<Hex> {
  try {
    return (await provider().request({
      method: "eth_signTransaction",
      params: [
        {
          from: tx.from,
          to: tx.to,
          data: tx.data,
          value: tx.value,
          nonce: numberToHex(fields.nonce),
          gas: numberToHex(fields.gas),
          gasPrice: numberToHex(fields.gasPrice),
          chainId: numberToHex(tx.chain_id),
        },
      ],
    })) as Hex;
  } catch (e) {
    if (isUnsupported(e))
      throw new WalletError("Your wallet can neither send nor sign transactions (eth_sendTransaction, eth_signTransaction).");
    return friendly(Promise.reject(e));
  }
}

/** The fields of a registry action a person signs (docs/client.md). */
export interface ActionFields {
  action: string;
  subsystem?: string;
  account?: string;
  data?: string;
}

/** A relayed action once mined. */
export interface RelayedAction {
  action: string;
  signer: string;
  nonce: number;
  tx_hash: Hex;
  block_number: number;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** Have `signer`'s wallet sign `fields` as an EIP-712 registry action and the node relay it
 * (the node pays the gas: the wallet needs no ether). The node prepares the typed data with the
 * signer's next nonce; it is checked here against what was asked before the wallet signs. */
export async function signAndRelay(signer: `0x${string}`, fields: ActionFields): Promise<RelayedAction> {
  const asked = { subsystem: "", account: ZERO_ADDRESS, data: "", ...fields, signer };
  const prepared = await postJson<{ action: Record<string, unknown>; typed_data: unknown }>(`${API}/actions/typed-data`, asked);
  for (const key of ["action", "subsystem", "account", "data", "signer"] as const) {
    if (String(prepared.action[key]).toLowerCase() !== String(asked[key]).toLowerCase())
      throw new WalletError(`The node prepared a different action (${key}: ${String(prepared.action[key])}); nothing was signed.`);
  }
  const signature = await friendly(
    provider().request({ method: "eth_signTypedData_v4", params: [signer, JSON.stringify(prepared.typed_data)] }),
  );
  return postJson<RelayedAction>(`${API}/actions`, { ...prepared.action, signature });
}
