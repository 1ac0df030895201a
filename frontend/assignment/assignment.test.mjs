// Runs the shared vectors (tests/vectors/assignment/*.json) against the JS twin:
//   cd frontend/assignment && npm ci && node --test
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import {
  AssignmentError,
  computeAssignment,
  computeLog2Fixed,
  computeSlotScore,
  isChecksumAddress,
} from "./assignment.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const vectorDir = join(here, "..", "..", "tests", "vectors", "assignment");
const vectorFiles = readdirSync(vectorDir).filter((f) => f.endsWith(".json")).sort();

test("there are vectors", () => {
  assert.ok(vectorFiles.length >= 20, `only ${vectorFiles.length} vectors in ${vectorDir}`);
});

for (const file of vectorFiles) {
  const vector = JSON.parse(readFileSync(join(vectorDir, file), "utf8"));
  test(`vector ${vector.name}`, () => {
    if (vector.error) {
      let thrown;
      assert.throws(
        () => computeAssignment(vector.input),
        (err) => {
          thrown = err;
          return err instanceof AssignmentError;
        },
      );
      for (const [key, value] of Object.entries(vector.error)) {
        assert.deepEqual(thrown[key], value, `error field ${key}: ${thrown.message}`);
      }
    } else {
      assert.deepEqual(computeAssignment(vector.input), vector.output);
    }
    // hand-*.json: the scores their derivation compares (docs/assignment-vectors.md)
    for (const entry of vector.scores ?? []) {
      const score = computeSlotScore(
        hexBytes(vector.input.seed), vector.input.epoch, entry.role, entry.subsystem,
        hexBytes(entry.id), entry.capacity,
      );
      assert.equal(score, BigInt(entry.score), `${entry.role} ${entry.subsystem} ${entry.id}`);
    }
  });
}

function hexBytes(hex) {
  return Uint8Array.from(hex.slice(2).match(/../g), (byte) => parseInt(byte, 16));
}

test("log2 is exact on powers of two", () => {
  for (let k = 0n; k <= 64n; k++) assert.equal(computeLog2Fixed(1n << k), k << 32n);
});

test("slot score matches a Python-computed value", () => {
  // python -c "from node.assignment import compute_slot_score as s; print(s(bytes(32), 7,
  //   'fe_system', None, bytes.fromhex('00'*19+'01'), 3))"
  const score = computeSlotScore(new Uint8Array(32), 7, "fe_system", null, Uint8Array.from([...new Array(19).fill(0), 1]), 3);
  assert.equal(score, 13029331929748821n);
});

test("EIP-55 checksum check", () => {
  assert.ok(isChecksumAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
  assert.ok(!isChecksumAddress("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
});

test("input order does not matter", () => {
  const vector = JSON.parse(readFileSync(join(vectorDir, "random-4.json"), "utf8"));
  const shuffled = structuredClone(vector.input);
  shuffled.nodes.reverse();
  shuffled.subsystems.reverse();
  assert.deepEqual(computeAssignment(shuffled), vector.output);
});
