// did:key of a P-256 session key: multicodec p256-pub (0x1200, varint 80 24) + the 33-byte
// compressed SEC1 point, multibase base58btc ("z"), so it starts with "did:key:zDn".

import { base58btc, concatBytes } from "./encoding";

/** The unsigned-varint multicodec prefix of a P-256 public key (0x1200). */
export const P256_PUB_PREFIX = Uint8Array.of(0x80, 0x24);
const UNCOMPRESSED = 0x04;

/** Return the 33-byte compressed SEC1 form of a P-256 point (65-byte uncompressed or already 33). */
export function compressP256(point: Uint8Array): Uint8Array {
  if (point.length === 33 && (point[0] === 0x02 || point[0] === 0x03)) return point;
  if (point.length !== 65 || point[0] !== UNCOMPRESSED)
    throw new Error(`not a SEC1 P-256 point (${point.length} bytes)`);
  const x = point.subarray(1, 33);
  const yIsOdd = (point[64] & 1) === 1;
  return concatBytes(Uint8Array.of(yIsOdd ? 0x03 : 0x02), x);
}

/** Return the did:key of a P-256 public key given as a SEC1 point. */
export function didKeyFromP256(point: Uint8Array): string {
  return `did:key:z${base58btc(concatBytes(P256_PUB_PREFIX, compressP256(point)))}`;
}

/** Return the did:key of a WebCrypto ECDSA P-256 public key (public keys are always exportable). */
export async function didKeyOf(publicKey: CryptoKey): Promise<string> {
  return didKeyFromP256(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey)));
}
