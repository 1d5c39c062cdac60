//! Assertion tests on the synthesized CDK stack. The emulator does not enforce IAM or Lambda permissions, so a
//! missing statement or permission would pass every end-to-end test there: these checks are what catch it.
//!
//! They read the real cargo-lambda output (`CHAT_FUNCTIONS_DIR`, default the repository's `target/lambda`), so
//! run them after `cargo xtask build`; `cargo xtask test` does.

import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";

import { App, CliCredentialsStackSynthesizer, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";

import {
  ChatBackend,
  DEFAULT_FUNCTIONS_DIR,
  FUNCTIONS,
  PARAMETER_NAMES,
  TEMPLATE_FILE,
  builtArchitecture,
} from "../lib/chat-backend";
import { readSamTemplate } from "./sam-template";

const FUNCTIONS_DIR = process.env.CHAT_FUNCTIONS_DIR ?? DEFAULT_FUNCTIONS_DIR;
const ASSETS_BUCKET = "chat-cdk-assets";
/** What `cargo xtask deploy` and the end-to-end tests read from the stack (xtask/src/deploy.rs). */
const OUTPUTS_THE_TOOLS_READ = [
  "WebSocketApiId",
  "HttpApiId",
  "StageName",
  "TableName",
  "FanoutQueueUrl",
  "FanoutDeadLetterQueueUrl",
  "AttachmentsBucketName",
];

type Json = Record<string, any>;

/** Each synthesis stages copies of the function bundles (100+ MB), so the test removes what it wrote. */
const outdirs: string[] = [];
after(() => outdirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function synth(configure?: (backend: ChatBackend, stack: Stack) => void) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-cdk-test-"));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const stack = new Stack(app, "Chat", {
    synthesizer: new CliCredentialsStackSynthesizer({ fileAssetsBucketName: ASSETS_BUCKET }),
    analyticsReporting: false,
  });
  const backend = new ChatBackend(stack, "Chat", { functionsDir: FUNCTIONS_DIR });
  configure?.(backend, stack);
  const assembly = app.synth();
  return { backend, stack, template: Template.fromStack(stack).toJSON() as Json, assembly };
}

const sam = normalize(readSamTemplate(TEMPLATE_FILE));
const built = builtArchitecture(FUNCTIONS_DIR);
const synthesized = synth();
synthesized.template = normalize(synthesized.template);

test("every template parameter has a typed prop, and the other way round", () => {
  assert.deepEqual(Object.values(PARAMETER_NAMES).sort(), Object.keys(sam.Parameters).sort());
});

test("the stack is the SAM template: same resources, conditions, globals and outputs", () => {
  const { template } = synthesized;
  assert.equal(template.Transform, sam.Transform);
  assert.deepEqual(template.Conditions, sam.Conditions);
  assert.deepEqual(template.Outputs, sam.Outputs);
  // The one parameter the construct sets is the architecture, from the binaries it deploys.
  const expectedGlobals = structuredClone(sam.Globals);
  expectedGlobals.Function.Architectures = [built];
  assert.deepEqual(template.Globals, expectedGlobals);
  const { Architecture: _architecture, ...otherParameters } = sam.Parameters;
  assert.deepEqual(template.Parameters, otherParameters);

  // Resource by resource, so a failure names the one that drifted; functions differ only in their code.
  assert.deepEqual(Object.keys(template.Resources).sort(), Object.keys(sam.Resources).sort());
  for (const [logicalId, resource] of Object.entries(sam.Resources) as [string, Json][]) {
    const actual = structuredClone(template.Resources[logicalId]);
    if (logicalId in FUNCTIONS) delete actual.Properties.CodeUri;
    const expected = structuredClone(resource);
    if (logicalId in FUNCTIONS) delete expected.Properties.CodeUri;
    assert.deepEqual(actual, expected, `${logicalId} differs from infra/template.yaml`);
  }
});

test("every function's code is its cargo-lambda build, byte for byte", () => {
  const { template, assembly } = synthesized;
  const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, "Chat.assets.json"), "utf8"));
  for (const [logicalId, binary] of Object.entries(FUNCTIONS)) {
    const codeUri = template.Resources[logicalId].Properties.CodeUri;
    assert.equal(codeUri.Bucket, ASSETS_BUCKET, logicalId);
    const hash = codeUri.Key.replace(/\.zip$/, "");
    const asset = manifest.files[hash];
    assert.ok(asset, `${logicalId}: no asset ${hash} in the manifest`);
    assert.equal(asset.source.packaging, "zip");
    const destinations = Object.values(asset.destinations) as Json[];
    assert.deepEqual(
      destinations.map((destination) => [destination.bucketName, destination.objectKey]),
      [[ASSETS_BUCKET, codeUri.Key]],
    );
    const staged = path.join(assembly.directory, asset.source.path, "bootstrap");
    const source = path.join(FUNCTIONS_DIR, binary, "bootstrap");
    assert.equal(sha256(staged), sha256(source), `${logicalId}: the staged bootstrap is not ${source}`);
  }
});

test("each function keeps exactly the template's least-privilege policies, and no IAM is added", () => {
  const { template } = synthesized;
  for (const logicalId of Object.keys(FUNCTIONS)) {
    assert.deepEqual(
      template.Resources[logicalId].Properties.Policies,
      sam.Resources[logicalId].Properties.Policies,
      logicalId,
    );
    assert.equal(template.Resources[logicalId].Properties.Role, undefined, `${logicalId} must keep its SAM role`);
  }
  const iam = (resources: Json) =>
    Object.entries(resources)
      .filter(([, resource]) => String(resource.Type).startsWith("AWS::IAM::"))
      .map(([logicalId]) => logicalId)
      .sort();
  assert.deepEqual(iam(template.Resources), iam(sam.Resources));
});

test("every route's integration may invoke its function: a Lambda permission per integrated function", () => {
  const { template } = synthesized;
  const resources = Object.entries(template.Resources) as [string, Json][];
  const permissions = resources.filter(([, resource]) => resource.Type === "AWS::Lambda::Permission");
  const routes = resources.filter(([, resource]) => resource.Type === "AWS::ApiGatewayV2::Route");
  assert.ok(routes.length > 40, `only ${routes.length} routes`);
  for (const [routeId, route] of routes) {
    const integrationId = String(route.Properties.Target["Fn::Sub"]).match(/^integrations\/\$\{(\w+)\}$/)?.[1];
    assert.ok(integrationId, `${routeId}: target ${JSON.stringify(route.Properties.Target)}`);
    const integration = template.Resources[integrationId];
    assert.equal(integration?.Type, "AWS::ApiGatewayV2::Integration", `${routeId} targets ${integrationId}`);
    const uri = integration.Properties.IntegrationUri;
    const functionId = uri["Fn::GetAtt"]?.[0] ?? String(uri["Fn::Sub"]).match(/\$\{(\w+Function)\.Arn\}/)?.[1];
    assert.ok(functionId && functionId in FUNCTIONS, `${integrationId} integrates no known function`);
    const apiId = route.Properties.ApiId.Ref;
    const allowed = permissions.some(
      ([, permission]) =>
        permission.Properties.Action === "lambda:InvokeFunction" &&
        permission.Properties.Principal === "apigateway.amazonaws.com" &&
        permission.Properties.FunctionName.Ref === functionId &&
        String(permission.Properties.SourceArn["Fn::Sub"]).includes(`:\${${apiId}}/`),
    );
    assert.ok(allowed, `${routeId}: API ${apiId} has no permission to invoke ${functionId}`);
  }
});

test("the stack outputs what the tools read", () => {
  for (const output of OUTPUTS_THE_TOOLS_READ) {
    assert.ok(synthesized.template.Outputs[output], `output ${output} is missing`);
  }
});

test("typed props set the template's parameters", () => {
  const app = new App();
  const stack = new Stack(app, "Typed");
  new ChatBackend(stack, "Chat", {
    functionsDir: FUNCTIONS_DIR,
    parameters: { logLevel: "debug", fanoutInlineMax: 100, allowedUploadTypes: ["image/png", "image/jpeg"] },
  });
  const template = Template.fromStack(stack).toJSON() as Json;
  assert.equal(template.Parameters.LogLevel, undefined);
  assert.equal(template.Parameters.FanoutInlineMax, undefined);
  const environment = template.Globals.Function.Environment.Variables;
  assert.equal(environment.RUST_LOG, "debug");
  assert.equal(environment.FANOUT_INLINE_MAX, 100);
  assert.equal(environment.ALLOWED_UPLOAD_TYPES, "image/png,image/jpeg");
});

test("a team composes the construct: alarms to their topic, the table granted to their function", () => {
  const { template } = synth((backend, stack) => {
    const topic = new sns.Topic(stack, "OnCall");
    for (const alarm of backend.alarms) {
      new cloudwatch.CompositeAlarm(stack, `${alarm.node.id}Page`, {
        alarmRule: cloudwatch.AlarmRule.fromAlarm(alarm, cloudwatch.AlarmState.ALARM),
      }).addAlarmAction(new cloudwatchActions.SnsAction(topic));
    }
    const report = new lambda.Function(stack, "Report", {
      runtime: lambda.Runtime.PROVIDED_AL2023,
      handler: "bootstrap",
      code: lambda.Code.fromAsset(path.join(FUNCTIONS_DIR, "rest-api")),
    });
    backend.table.grantReadData(report);
    backend.fanoutDeadLetterQueue.grantConsumeMessages(report);
    backend.functions.MessageFunction.grantInvoke(report);
  });
  const composites = Object.values(template.Resources as Json).filter(
    (resource) => resource.Type === "AWS::CloudWatch::CompositeAlarm",
  );
  assert.equal(composites.length, Object.values(sam.Resources).filter((r: any) => r.Type === "AWS::CloudWatch::Alarm").length);
  const policy = Object.values(template.Resources as Json).find((resource) => resource.Type === "AWS::IAM::Policy");
  const statements = JSON.stringify(policy.Properties.PolicyDocument.Statement);
  assert.match(statements, /"ChatTable","Arn"/);
  assert.match(statements, /"FanoutDeadLetterQueue","Arn"/);
  assert.match(statements, /"MessageFunction","Arn"/);
});

test("binaries of another architecture, or missing ones, fail the synth with the fix", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-cdk-arch-"));
  const elf = (machine: number) => {
    const header = Buffer.alloc(64);
    header.writeUInt32BE(0x7f454c46, 0);
    header.writeUInt16LE(machine, 18);
    return header;
  };
  for (const binary of Object.values(FUNCTIONS)) {
    fs.mkdirSync(path.join(dir, binary));
    fs.writeFileSync(path.join(dir, binary, "bootstrap"), elf(0x3e));
  }
  const attempt = (architecture?: "arm64" | "x86_64") => () =>
    new ChatBackend(new Stack(new App(), "Arch"), "Chat", { functionsDir: dir, parameters: { architecture } });
  assert.doesNotThrow(attempt());
  assert.throws(attempt("arm64"), /built for x86_64, but the stack's architecture is arm64.*--arch arm64/);
  fs.writeFileSync(path.join(dir, "ws-message", "bootstrap"), elf(0xb7));
  assert.throws(attempt(), /different architectures \(x86_64: .*; arm64: ws-message\)/);
  fs.rmSync(path.join(dir, "rest-api", "bootstrap"));
  assert.throws(attempt(), /rest-api\/bootstrap does not exist/);
});

/** `Fn::GetAtt` in its list form: `CfnInclude` keeps the template's `A.B` string where it was written so. */
function normalize(value: any): any {
  if (Array.isArray(value)) return value.map(normalize);
  if (value === null || typeof value !== "object") return value;
  // One dependency may be written bare or as a one-item list.
  if (typeof value.DependsOn === "string") value = { ...value, DependsOn: [value.DependsOn] };
  const getAtt = value["Fn::GetAtt"];
  if (typeof getAtt === "string" && Object.keys(value).length === 1) {
    const dot = getAtt.indexOf(".");
    return { "Fn::GetAtt": [getAtt.slice(0, dot), getAtt.slice(dot + 1)] };
  }
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, normalize(inner)]));
}

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}
