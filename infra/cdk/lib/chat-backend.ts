//! `ChatBackend`: the stack `infra/template.yaml` describes, as a CDK construct.
//!
//! The SAM template stays the one source of truth: it is included as is (`CfnInclude` keeps the SAM transform,
//! `Globals`, parameters, conditions and outputs, with their logical ids), so the CDK and SAM paths deploy the
//! same resources and cannot drift. The construct only does what `sam build` does: it points each function's
//! `CodeUri` at an asset made from the project's own `cargo lambda build` output. No Docker, no build at synth.

import * as fs from "node:fs";
import * as path from "node:path";

import { Stack, Validations } from "aws-cdk-lib";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import * as sam from "aws-cdk-lib/aws-sam";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3assets from "aws-cdk-lib/aws-s3-assets";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { CfnInclude } from "aws-cdk-lib/cloudformation-include";
import { Construct } from "constructs";

/** The repository root: this file is `infra/cdk/lib/` (or `infra/cdk/dist/lib/` once compiled). */
const REPO_ROOT = findRepoRoot(__dirname);

/** The SAM template every deploy path reads. */
export const TEMPLATE_FILE = path.join(REPO_ROOT, "infra", "template.yaml");

/** Where `cargo lambda build --release` leaves `<binary>/bootstrap` (the shared `target/`). */
export const DEFAULT_FUNCTIONS_DIR = path.join(REPO_ROOT, "target", "lambda");

export type Architecture = "arm64" | "x86_64";

/**
 * The template's parameters, typed. Anything left out stays a CloudFormation parameter with the template's
 * default, so `cdk deploy --parameters Name=value` still sets it at deploy time.
 */
export interface ChatBackendParameters {
  /** Stage of the WebSocket API (default `prod`). */
  readonly stageName?: string;
  /** Lambda architecture; by default the one the binaries in `functionsDir` were built for (read at synth). */
  readonly architecture?: Architecture;
  /** Empty on AWS; an emulator's execute-api base URL elsewhere. */
  readonly managementEndpointBase?: string;
  readonly logLevel?: "error" | "warn" | "info" | "debug" | "trace";
  readonly connectionTtlSeconds?: number;
  readonly postsInFlight?: number;
  readonly fanoutInlineMax?: number;
  readonly maxGroupMembers?: number;
  readonly fanoutVisibilityTimeout?: number;
  readonly fanoutMaxReceiveCount?: number;
  /** -1 leaves the functions unreserved. */
  readonly reservedConcurrency?: number;
  readonly logRetentionDays?: number;
  readonly maxUploadBytes?: number;
  /** MIME types members may upload (never `text/html` or `image/svg+xml`). */
  readonly allowedUploadTypes?: string[];
  /** Origins whose pages may upload to the attachments bucket. */
  readonly uploadOrigins?: string[];
  readonly readUrlSeconds?: number;
  /** `enabled`: copy every integrator event to a queue (output `EventTapQueueUrl`), to watch or test them. */
  readonly eventTap?: "enabled" | "disabled";
  /** Who push services may contact about this sender (`mailto:` or `https:`), the VAPID token's `sub`. */
  readonly vapidContact?: string;
  /** SNS platform applications for phones' push (empty: that platform is not offered). */
  readonly fcmPlatformApplicationArn?: string;
  readonly apnsPlatformApplicationArn?: string;
  /** `true`: push subscriptions may name `http` endpoints (a push service on a private network). */
  readonly pushAllowHttp?: "true" | "false";
  /** SNS topic every alarm notifies. */
  readonly alarmTopicArn?: string;
}

/** Each typed parameter's name in the template; `test/` checks that the two lists are the same. */
export const PARAMETER_NAMES: { readonly [K in keyof Required<ChatBackendParameters>]: string } = {
  stageName: "StageName",
  architecture: "Architecture",
  managementEndpointBase: "ManagementEndpointBase",
  logLevel: "LogLevel",
  connectionTtlSeconds: "ConnectionTtlSeconds",
  postsInFlight: "PostsInFlight",
  fanoutInlineMax: "FanoutInlineMax",
  maxGroupMembers: "MaxGroupMembers",
  fanoutVisibilityTimeout: "FanoutVisibilityTimeout",
  fanoutMaxReceiveCount: "FanoutMaxReceiveCount",
  reservedConcurrency: "ReservedConcurrency",
  logRetentionDays: "LogRetentionDays",
  maxUploadBytes: "MaxUploadBytes",
  allowedUploadTypes: "AllowedUploadTypes",
  uploadOrigins: "UploadOrigins",
  readUrlSeconds: "ReadUrlSeconds",
  eventTap: "EventTap",
  vapidContact: "VapidContact",
  pushAllowHttp: "PushAllowHttp",
  fcmPlatformApplicationArn: "FcmPlatformApplicationArn",
  apnsPlatformApplicationArn: "ApnsPlatformApplicationArn",
  alarmTopicArn: "AlarmTopicArn",
};

/** The template's functions by logical id, with the cargo binary each one runs. */
export const FUNCTIONS = {
  ConnectFunction: "ws-connect",
  DisconnectFunction: "ws-disconnect",
  MessageFunction: "ws-message",
  RestApiFunction: "rest-api",
  FanoutWorkerFunction: "fanout-worker",
  AccountWorkerFunction: "account-worker",
  AttachmentProcessorFunction: "attachment-processor",
  EventsWorkerFunction: "events-worker",
  PushWorkerFunction: "push-worker",
  PushSenderFunction: "push-sender",
} as const;

export type FunctionId = keyof typeof FUNCTIONS;

export interface ChatBackendProps {
  readonly parameters?: ChatBackendParameters;
  /**
   * The cargo-lambda output: one `<binary>/bootstrap` per function (default: the repository's `target/lambda`).
   * Build it for the stack's architecture: `cargo xtask build --arch arm64` (or `cargo lambda build --release
   * --arm64`).
   */
  readonly functionsDir?: string;
}

/** The chat backend: WebSocket and HTTP APIs, functions, table, queues, bucket and alarms of the SAM template. */
export class ChatBackend extends Construct {
  /** The included template, for anything the getters below do not cover (`getResource`, `getOutput`, …). */
  public readonly template: CfnInclude;
  public readonly webSocketApi: apigwv2.IWebSocketApi;
  /** The WebSocket API's stage name (the `StageName` parameter). */
  public readonly webSocketStageName: string;
  public readonly httpApi: apigwv2.IHttpApi;
  public readonly table: dynamodb.ITable;
  public readonly attachmentsBucket: s3.IBucket;
  public readonly jwtSecret: secretsmanager.ISecret;
  public readonly fanoutQueue: sqs.IQueue;
  public readonly fanoutDeadLetterQueue: sqs.IQueue;
  public readonly attachmentDeadLetterQueue: sqs.IQueue;
  /** Every function, by the template's logical id. */
  public readonly functions: { readonly [K in FunctionId]: lambda.IFunction };
  /** Every CloudWatch alarm of the template (add actions, put them on a dashboard). */
  public readonly alarms: cloudwatch.IAlarm[];
  /** The code asset of each function. */
  public readonly codeAssets: { readonly [K in FunctionId]: s3assets.Asset };

  constructor(scope: Construct, id: string, props: ChatBackendProps = {}) {
    super(scope, id);
    const functionsDir = path.resolve(props.functionsDir ?? DEFAULT_FUNCTIONS_DIR);
    const built = builtArchitecture(functionsDir);
    const parameters = { ...props.parameters, architecture: props.parameters?.architecture ?? built };
    if (parameters.architecture !== built) {
      throw new Error(
        `ChatBackend: the functions in ${functionsDir} are built for ${built}, but the stack's architecture is ` +
          `${parameters.architecture}. Build them with \`cargo xtask build --arch ${parameters.architecture}\`.`,
      );
    }
    this.template = new CfnInclude(this, "Template", {
      templateFile: TEMPLATE_FILE,
      parameters: templateParameters(parameters),
    });
    Validations.of(this.template).acknowledge({
      id: "CloudFormation-Validate::W1030",
      reason: "The alarms name AlarmTopicArn only under the HasAlarmTopic condition, true when it is not empty",
    });

    const assets: Partial<Record<FunctionId, s3assets.Asset>> = {};
    const functions: Partial<Record<FunctionId, lambda.IFunction>> = {};
    for (const [logicalId, binary] of Object.entries(FUNCTIONS) as [FunctionId, string][]) {
      const fn = this.template.getResource(logicalId) as sam.CfnFunction;
      const asset = new s3assets.Asset(this, `${logicalId}Code`, { path: path.join(functionsDir, binary) });
      fn.codeUri = { bucket: asset.s3BucketName, key: asset.s3ObjectKey };
      assets[logicalId] = asset;
      functions[logicalId] = lambda.Function.fromFunctionAttributes(this, logicalId, {
        functionArn: fn.getAtt("Arn").toString(),
        sameEnvironment: true,
      });
    }
    this.codeAssets = assets as ChatBackend["codeAssets"];
    this.functions = functions as ChatBackend["functions"];

    const ref = (logicalId: string) => this.template.getResource(logicalId).ref;
    const getAtt = (logicalId: string, attribute: string) =>
      this.template.getResource(logicalId).getAtt(attribute).toString();
    const region = Stack.of(this).region;
    const urlSuffix = Stack.of(this).urlSuffix;

    this.webSocketStageName = parameters.stageName ?? this.template.getParameter("StageName").valueAsString;
    this.webSocketApi = apigwv2.WebSocketApi.fromWebSocketApiAttributes(this, "WebSocketApi", {
      webSocketId: ref("WebSocketApi"),
      apiEndpoint: `wss://${ref("WebSocketApi")}.execute-api.${region}.${urlSuffix}`,
    });
    this.httpApi = apigwv2.HttpApi.fromHttpApiAttributes(this, "HttpApi", {
      httpApiId: ref("HttpApi"),
      apiEndpoint: `https://${ref("HttpApi")}.execute-api.${region}.${urlSuffix}`,
    });
    this.table = dynamodb.Table.fromTableAttributes(this, "Table", { tableArn: getAtt("ChatTable", "Arn") });
    this.attachmentsBucket = s3.Bucket.fromCfnBucket(this.template.getResource("AttachmentsBucket") as s3.CfnBucket);
    this.jwtSecret = secretsmanager.Secret.fromSecretCompleteArn(this, "JwtSecret", ref("JwtSecret"));
    const queue = (logicalId: string) =>
      sqs.Queue.fromQueueAttributes(this, logicalId, {
        queueArn: getAtt(logicalId, "Arn"),
        queueUrl: ref(logicalId),
      });
    this.fanoutQueue = queue("FanoutQueue");
    this.fanoutDeadLetterQueue = queue("FanoutDeadLetterQueue");
    this.attachmentDeadLetterQueue = queue("AttachmentDeadLetterQueue");
    this.alarms = this.template.node
      .findAll()
      .filter((child): child is cloudwatch.CfnAlarm => child instanceof cloudwatch.CfnAlarm)
      .map((alarm) => cloudwatch.Alarm.fromAlarmArn(this, `${alarm.node.id}Ref`, alarm.attrArn));
  }
}

/** The typed parameters as `CfnInclude` wants them: the template's names, lists joined as the template reads them. */
function templateParameters(parameters: ChatBackendParameters): Record<string, string | number | string[]> {
  const values: Record<string, string | number | string[]> = {};
  for (const [key, value] of Object.entries(parameters) as [keyof ChatBackendParameters, unknown][]) {
    if (value === undefined) continue;
    const name = PARAMETER_NAMES[key];
    if (name === undefined) throw new Error(`ChatBackend: unknown parameter \`${key}\``);
    if (key === "allowedUploadTypes") values[name] = (value as string[]).join(",");
    else values[name] = value as string | number | string[];
  }
  return values;
}

/** ELF `e_machine` of each architecture (offset 18, little-endian). */
const ELF_MACHINE: Record<Architecture, number> = { x86_64: 0x3e, arm64: 0xb7 };

/**
 * The architecture every function's `bootstrap` in `functionsDir` is built for, read from its ELF header. Fails at
 * synth, with the fix, when one is missing or they differ: on AWS a binary of the wrong architecture only shows
 * at its first cold start (`Runtime.InvalidEntrypoint`).
 */
export function builtArchitecture(functionsDir: string): Architecture {
  const found = new Map<Architecture, string[]>();
  for (const binary of Object.values(FUNCTIONS)) {
    const bootstrap = path.join(functionsDir, binary, "bootstrap");
    let header: Buffer;
    try {
      header = fs.readFileSync(bootstrap).subarray(0, 20);
    } catch {
      throw new Error(`ChatBackend: ${bootstrap} does not exist. Build the functions first: \`cargo xtask build\``);
    }
    const machine = header.length === 20 && header.readUInt32BE(0) === 0x7f454c46 ? header.readUInt16LE(18) : -1;
    const arch = (Object.keys(ELF_MACHINE) as Architecture[]).find((name) => ELF_MACHINE[name] === machine);
    if (arch === undefined) throw new Error(`ChatBackend: ${bootstrap} is not an x86_64 or arm64 Linux executable`);
    found.set(arch, [...(found.get(arch) ?? []), binary]);
  }
  if (found.size !== 1) {
    const mixed = [...found].map(([arch, binaries]) => `${arch}: ${binaries.join(", ")}`).join("; ");
    throw new Error(`ChatBackend: the functions in ${functionsDir} are built for different architectures (${mixed})`);
  }
  return [...found.keys()][0];
}

function findRepoRoot(start: string): string {
  for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "infra", "template.yaml"))) return dir;
  }
  throw new Error(`ChatBackend: no infra/template.yaml above ${start}`);
}
