// A POSIX ustar archive of some files, written in the browser: a build folder picked in the page
// is uploaded to the node as one .tar (node/frontend/archive.py unpacks it).

const BLOCK = 512;
const NAME_BYTES = 100;
const PREFIX_BYTES = 155;

export interface TarEntry {
  /** Path inside the archive, "/"-separated (e.g. "dist/assets/app.js"). */
  path: string;
  data: Uint8Array;
}

const utf8 = new TextEncoder();

function put(header: Uint8Array, offset: number, length: number, text: string | Uint8Array): void {
  const bytes = typeof text === "string" ? utf8.encode(text) : text;
  if (bytes.length > length) throw new Error(`tar: field too long (${bytes.length} > ${length})`);
  header.set(bytes, offset);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, "0") + "\0";
}

/** Return [prefix, name] of `path` so that each fits its ustar field; throw if it cannot. */
function splitPath(path: string): [Uint8Array, Uint8Array] {
  const whole = utf8.encode(path);
  if (whole.length <= NAME_BYTES) return [new Uint8Array(), whole];
  for (let i = path.indexOf("/"); i > 0; i = path.indexOf("/", i + 1)) {
    const prefix = utf8.encode(path.slice(0, i));
    const name = utf8.encode(path.slice(i + 1));
    if (prefix.length <= PREFIX_BYTES && name.length <= NAME_BYTES && name.length > 0) return [prefix, name];
  }
  throw new Error(`The path ${path} is too long for a tar archive.`);
}

function header(path: string, size: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const [prefix, name] = splitPath(path);
  put(h, 0, NAME_BYTES, name);
  put(h, 100, 8, "0000644\0");
  put(h, 108, 8, "0000000\0");
  put(h, 116, 8, "0000000\0");
  put(h, 124, 12, octal(size, 12));
  put(h, 136, 12, octal(0, 12));
  put(h, 148, 8, "        "); // the checksum counts its own field as spaces
  put(h, 156, 1, "0");
  put(h, 257, 6, "ustar\0");
  put(h, 263, 2, "00");
  put(h, 345, PREFIX_BYTES, prefix);
  const sum = h.reduce((a, b) => a + b, 0);
  put(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** Return a ustar archive of `entries` (regular files; folders are implied by the paths). */
export function tar(entries: TarEntry[]): Uint8Array {
  const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
  const total = entries.reduce((a, e) => a + BLOCK + padded(e.data.length), 0) + 2 * BLOCK;
  const out = new Uint8Array(total);
  let at = 0;
  for (const e of entries) {
    out.set(header(e.path, e.data.length), at);
    out.set(e.data, at + BLOCK);
    at += BLOCK + padded(e.data.length);
  }
  return out; // ends with two zero blocks (the array is zero-filled)
}
