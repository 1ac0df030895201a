// Load frontend/src/protocol (TypeScript) in node: vite bundles it (viem included) into one ES
// module in a temporary directory, which is then imported. Used by the vectors script and tests.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "vite";

const frontend = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Return the exports of src/protocol/index.ts. */
export async function loadProtocol() {
  const result = await build({
    configFile: false,
    root: frontend,
    logLevel: "silent",
    build: {
      write: false,
      minify: false,
      target: "node20",
      lib: { entry: join(frontend, "src", "protocol", "index.ts"), formats: ["es"], fileName: "protocol" },
    },
  });
  const output = (Array.isArray(result) ? result[0] : result).output;
  const dir = mkdtempSync(join(tmpdir(), "collegium-protocol-"));
  try {
    for (const chunk of output) {
      if (chunk.type === "chunk") writeFileSync(join(dir, chunk.fileName), chunk.code);
    }
    const entry = output.find((c) => c.type === "chunk" && c.isEntry);
    return await import(pathToFileURL(join(dir, entry.fileName)).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
