// The check behind each flow's "every accessible name was used" step can fail: it
// lists what a flow did not use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DESIGN_NAMES, unused } from "./names.mjs";

test("unused lists the DESIGN 6 names a flow never looked up, case insensitive", () => {
  assert.deepEqual(unused(new Set(["admin KEY", "Sign in"]), ["Admin key", "Sign in", "Sign out"]), ["Sign out"]);
  assert.deepEqual(unused(new Set(DESIGN_NAMES)), []);
  assert.equal(unused(new Set()).length, DESIGN_NAMES.length);
});
