// The SAM template and the CDK app deploy the same thing (issue 11): the same
// functions (memory, timeout, architecture, environment, logging), the same IAM
// actions per function, the same table, queues, rules, schedules, alarms and outputs.
// The SAM side is `infra/template.yaml` expanded by the SAM translator
// (test/sam-to-cfn.py); the CDK side is the app (dist/bin/app.js) synthesized with
// placeholder code. Run with `make cdk-test` (or `npm test` in infra/cdk).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { model } from "./model.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const cdkDir = path.resolve(here, "..");
const samTemplate = path.resolve(cdkDir, "..", "template.yaml");

function samModel(templatePath = samTemplate) {
  const json = execFileSync("python3", [path.join(here, "sam-to-cfn.py"), templatePath], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return model(JSON.parse(json));
}

function cdkTemplate(context = {}) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "watchstate-cdk-"));
  try {
    execFileSync(process.execPath, [path.join(cdkDir, "dist", "bin", "app.js")], {
      env: {
        ...process.env,
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify({ "aws:cdk:enable-path-metadata": true, ...context }),
        // No build output: the placeholder code, as `make cdk-synth` on a fresh clone.
        WATCHSTATE_REQUIRE_BUILD: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return JSON.parse(fs.readFileSync(path.join(outdir, "Watchstate.template.json"), "utf8"));
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

const sam = samModel();
const cdk = model(cdkTemplate());

// Each part compared on its own, so a failure names what drifted.
for (const part of Object.keys(sam)) {
  test(`SAM and CDK agree on ${part}`, () => {
    assert.deepEqual(cdk[part], sam[part]);
  });
}

test("the comparison covers the deployment (not vacuous)", () => {
  assert.deepEqual(Object.keys(sam.functions).sort(), [
    "ApiFunction",
    "ExportFunction",
    "ImportFunction",
    "PushFunction",
    "WebhookFunction",
  ]);
  for (const [name, f] of Object.entries(sam.functions)) {
    assert.ok(Object.keys(f.actions).length > 0, `${name} has no IAM actions`);
    assert.ok(f.environment.TABLE_NAME, `${name} has no TABLE_NAME`);
  }
  assert.equal(Object.keys(sam.tables).length, 1);
  assert.ok(Object.keys(sam.rules).length >= 2);
  assert.ok(Object.keys(sam.schedules).length >= 2);
  assert.ok(Object.keys(sam.outputs).length >= 4);
  assert.ok(Object.keys(sam.routes).length >= 2);
});

test("arm64 is the default on both sides, x86_64 a setting", () => {
  for (const f of Object.values(sam.functions)) assert.deepEqual(f.architectures, ["arm64"]);
  const x86 = model(cdkTemplate({ architecture: "x86_64" }));
  for (const f of Object.values(x86.functions)) assert.deepEqual(f.architectures, ["x86_64"]);
});

test("a one-line change to the SAM template is caught", () => {
  const text = fs.readFileSync(samTemplate, "utf8");
  const changed = text.replace(/^(\s+)MemorySize: 512$/m, "$1MemorySize: 1024");
  assert.notEqual(changed, text, "the template has a MemorySize: 512 line to change");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "watchstate-sam-"));
  try {
    const file = path.join(dir, "template.yaml");
    fs.writeFileSync(file, changed);
    assert.notDeepEqual(samModel(file).functions, cdk.functions);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the construct embeds twice in a user's stack", async () => {
  const { App, Stack } = await import("aws-cdk-lib");
  const { Template } = await import("aws-cdk-lib/assertions");
  const { Watchstate } = await import(path.join(cdkDir, "dist", "lib", "watchstate.js"));
  const app = new App();
  const stack = new Stack(app, "Mine");
  new Watchstate(stack, "Home", { name: "home" });
  new Watchstate(stack, "Cabin", { name: "cabin" });
  const t = Template.fromStack(stack);
  t.resourceCountIs("AWS::Lambda::Function", 10);
  t.hasResourceProperties("AWS::Events::EventBus", { Name: "cabin-bus" });
  t.hasResourceProperties("AWS::Logs::LogGroup", { LogGroupName: "/aws/lambda/home-webhook" });
});
