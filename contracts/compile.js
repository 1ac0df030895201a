#!/usr/bin/env node
// Compile every contracts/src/*.sol with the pinned solc-js and write one artifact per contract
// to contracts/build/<Contract>.json (or to --out DIR). The output is deterministic: the same
// sources and compiler give byte-identical files, so CI can rebuild and compare.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const SRC_DIR = path.join(HERE, "src");
const DEFAULT_OUT = path.join(HERE, "build");

// Settings that define the bytecode. "cancun" runs on py-evm (CancunVM, PragueVM) and anvil.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
};

function parseArgs(argv) {
  let out = DEFAULT_OUT;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") {
      out = path.resolve(argv[++i]);
    } else {
      throw new Error(`unknown argument: ${argv[i]} (usage: node compile.js [--out DIR])`);
    }
  }
  return { out };
}

function readSources() {
  const names = fs
    .readdirSync(SRC_DIR)
    .filter((f) => f.endsWith(".sol"))
    .sort();
  const sources = {};
  for (const name of names) {
    sources[`src/${name}`] = { content: fs.readFileSync(path.join(SRC_DIR, name), "utf8") };
  }
  return sources;
}

function sha256Hex(text) {
  return "0x" + crypto.createHash("sha256").update(text, "utf8").digest("hex");
}

function main() {
  const { out } = parseArgs(process.argv.slice(2));
  const sources = readSources();
  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) {
    process.stderr.write((e.formattedMessage || e.message) + "\n");
  }
  if (errors.length > 0) {
    process.exit(1);
  }
  fs.mkdirSync(out, { recursive: true });
  const written = [];
  for (const file of Object.keys(output.contracts).sort()) {
    for (const contractName of Object.keys(output.contracts[file]).sort()) {
      const c = output.contracts[file][contractName];
      const artifact = {
        contractName,
        sourceName: file,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: { name: "solc", version: solc.version(), settings: SETTINGS },
        sourceHash: sha256Hex(sources[file].content),
      };
      const target = path.join(out, `${contractName}.json`);
      fs.writeFileSync(target, JSON.stringify(artifact, null, 2) + "\n");
      written.push(path.relative(process.cwd(), target));
    }
  }
  process.stdout.write(`wrote ${written.join(", ")}\n`);
}

main();
