// What the explorer says about the node's own trustworthiness (issue 13): the health
// reasons on the Overview, and which chain a Verify checked.
import { h, type Raw } from "./html";

export interface HealthReason {
  code: string;
  message: string;
}

/** Return the Overview's health banner: `degraded` with each reason in words, or nothing. */
export function healthBanner(health: { status: string; reasons?: HealthReason[] }): Raw {
  if (health.status === "ok" || !health.reasons?.length) return h``;
  return h`<div class="msg bad" role="alert" data-testid="health-degraded"><strong>This node is degraded.</strong><ul>${health.reasons.map(
    (r) => h`<li data-reason="${r.code}">${r.message}</li>`,
  )}</ul></div>`;
}

/** Return the sentence naming the chain a Verify checked and, when it is the node's own
 * embedded chain (or a chain it relays), what the check trusts and how to check independently. */
export function chainTrustNote(kind: string, chainId: number, rpcUrl: string): Raw {
  const origin = new URL(rpcUrl, location.href).origin;
  const named = `Checked against chain id ${chainId} through ${origin}/rpc (this node's RPC).`;
  const independent =
    "For an independent check, run collegium verify-tx with the proof bundle, --chain set to an Ethereum RPC you trust and --gateway to an IPFS gateway.";
  const caveat =
    kind === "embedded"
      ? "This is the node's own embedded chain: the check trusts this node."
      : "The node relays its chain: the check trusts this node's relay.";
  return h`<p class="muted" data-testid="verify-trust">${named} ${caveat} ${independent}</p>`;
}
