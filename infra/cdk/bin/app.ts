#!/usr/bin/env node
/**
 * The watchstate CDK app: one stack holding the Watchstate construct and the SAM
 * template's outputs. Settings are CDK context (`-c key=value`): `stackName`
 * (default watchstate), `architecture` (arm64 | x86_64, default arm64),
 * `adminKeyParameterName`, `publicUrl`, `importSchedule`, `exportSchedule`,
 * `schedulesEnabled` (true | false), `logLevel`. `WATCHSTATE_REQUIRE_BUILD=1`
 * (set by `make cdk-deploy`) refuses placeholder code.
 */
import { App, Stack, aws_lambda as lambda } from "aws-cdk-lib";

import { Watchstate, addOutputs } from "../lib/watchstate";

const app = new App();
const ctx = (key: string): string | undefined => app.node.tryGetContext(key);

const arch = ctx("architecture") ?? "arm64";
if (arch !== "arm64" && arch !== "x86_64") {
  throw new Error(`architecture must be arm64 or x86_64, not ${arch}`);
}

const stack = new Stack(app, "Watchstate", {
  stackName: ctx("stackName") ?? "watchstate",
  description: 'watchstate: keeps "watched" state in sync across Plex, Jellyfin and Emby (CDK app).',
});
const watchstate = new Watchstate(stack, "Watchstate", {
  architecture: arch === "arm64" ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
  adminKeyParameterName: ctx("adminKeyParameterName"),
  publicUrl: ctx("publicUrl"),
  importSchedule: ctx("importSchedule"),
  exportSchedule: ctx("exportSchedule"),
  schedulesEnabled: ctx("schedulesEnabled") === undefined ? undefined : String(ctx("schedulesEnabled")) !== "false",
  logLevel: ctx("logLevel"),
  requireBuild: process.env.WATCHSTATE_REQUIRE_BUILD === "1",
});
addOutputs(stack, watchstate);
