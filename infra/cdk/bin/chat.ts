//! The example app: one `ChatBackend` in one stack. `npx cdk deploy` from `infra/cdk` (after `cargo xtask build`)
//! deploys it; copy it into your own app to compose the construct with what you add around it.
//!
//! Context (`-c name=value`):
//! - `stackName`: the CloudFormation stack (default `chat`).
//! - `assetsBucket`: deploy without `cdk bootstrap`, uploading the function code to this existing bucket with the
//!   caller's own credentials (`CliCredentialsStackSynthesizer`); without it the default synthesizer uses the
//!   bootstrap stack's bucket and roles.
//! - `functionsDir`: the cargo-lambda output (default: the repository's `target/lambda`).
//!
//! The template's parameters are set in code (`parameters` below) or at deploy time with
//! `npx cdk deploy --parameters LogLevel=debug`.

import { App, CliCredentialsStackSynthesizer, Stack } from "aws-cdk-lib";

import { ChatBackend } from "../lib/chat-backend";

const app = new App();
const context = (name: string): string | undefined => app.node.tryGetContext(name);
const assetsBucket = context("assetsBucket");

const stack = new Stack(app, "Chat", {
  stackName: context("stackName") ?? "chat",
  synthesizer: assetsBucket ? new CliCredentialsStackSynthesizer({ fileAssetsBucketName: assetsBucket }) : undefined,
  // No AWS::CDK::Metadata resource: the stack holds exactly what the SAM template describes.
  analyticsReporting: false,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

new ChatBackend(stack, "Chat", { functionsDir: context("functionsDir") });
