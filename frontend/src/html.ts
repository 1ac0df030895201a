// Tiny HTML templating with escaping: interpolations are escaped unless wrapped by raw().

export class Raw {
  constructor(readonly html: string) {}
}

/** Return `html` marked as already safe. */
export function raw(html: string): Raw {
  return new Raw(html);
}

/** Return `value` with HTML special characters escaped. */
export function esc(value: unknown): string {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function part(v: unknown): string {
  if (v instanceof Raw) return v.html;
  if (Array.isArray(v)) return v.map(part).join("");
  return esc(v);
}

/** Tagged template: return a Raw with every interpolation escaped (arrays joined). */
export function h(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  return raw(strings.reduce((out, s, i) => out + s + (i < values.length ? part(values[i]) : ""), ""));
}

/** Return a shortened hex/CID for display. */
export function short(value: string, keep = 10): string {
  return value.length <= 2 * keep ? value : `${value.slice(0, keep)}…${value.slice(-6)}`;
}
