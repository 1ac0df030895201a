// The signed-request protocol without browser storage: encodings, did:key, delegation, RFC 9421.
export * from "./encoding";
export * from "./didkey";
export * from "./delegation";
export * from "./httpsig";
