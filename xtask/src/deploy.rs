//! Deploying `infra/template.yaml` to a local emulator with the AWS CLI.
//!
//! The same steps as a real deployment (`sam build` + `sam deploy`), spelled
//! out: point each function's CodeUri at its `cargo lambda build` output,
//! `aws cloudformation package` (zip + upload to S3), `aws cloudformation
//! deploy` (change set, SAM transform inside the emulator), then read the
//! stack outputs and turn them into local endpoint URLs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::arch;
use crate::paths::Paths;
use crate::{Res, check_interrupted, cmd, toolchain, write_json};

/// S3 bucket `aws cloudformation package` uploads the function zips to.
const ARTIFACT_BUCKET: &str = "chat-artifacts";
const REGION: &str = "us-east-1";

/// Set the environment every AWS client we start gets: the local endpoint,
/// dummy credentials, and config/credential files that do not exist, so a
/// developer's real AWS profile can never be picked up by accident.
/// The non-existent files live under `local` (`.local/`).
pub fn sandbox_aws_env(command: &mut Command, local: &Path, port: u16) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let sandbox = local.join("aws-sandbox");
    command
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", sandbox.join("config-does-not-exist"))
        .env("AWS_SHARED_CREDENTIALS_FILE", sandbox.join("credentials-do-not-exist"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
}

/// An emulator reachable at `http://127.0.0.1:<port>`.
pub struct AwsTarget {
    port: u16,
    aws: PathBuf,
    python: PathBuf,
    local: PathBuf,
    root: PathBuf,
}

impl AwsTarget {
    pub fn new(paths: &Paths, port: u16) -> Self {
        AwsTarget {
            port,
            aws: paths.venv_bin("aws"),
            python: paths.venv_bin("python"),
            local: paths.local.clone(),
            root: paths.root.clone(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the functions reach the Management API on this emulator (the template's `ManagementEndpointBase`).
    pub fn management_endpoint_base(&self) -> String {
        format!("{}/_aws/execute-api", self.endpoint())
    }

    /// Give `command` the sandboxed AWS environment for this emulator.
    pub fn apply_env(&self, command: &mut Command) {
        sandbox_aws_env(command, &self.local, self.port);
    }

    /// `aws <args>` against this emulator.
    pub fn aws<const N: usize>(&self, args: [&str; N]) -> Command {
        let mut command = self.aws_command();
        command.args(args);
        command
    }

    /// `aws` against this emulator, arguments to be added.
    pub fn aws_command(&self) -> Command {
        let mut command = Command::new(&self.aws);
        command.current_dir(&self.root);
        self.apply_env(&mut command);
        command
    }
}

/// Parse `--endpoint`: only plain-HTTP loopback URLs with a port are accepted.
pub fn parse_local_endpoint(url: &str) -> Res<u16> {
    let bad = || format!("`--endpoint {url}`: expected http://127.0.0.1:PORT");
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    if host != "127.0.0.1" && host != "localhost" {
        return Err(format!("`--endpoint {url}`: only a local emulator (127.0.0.1) is supported"));
    }
    port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(bad)
}

/// What local clients need to reach a deployed stack.
pub struct Endpoints {
    pub websocket: String,
    pub http: String,
    pub aws_endpoint: String,
    pub region: String,
    pub table_name: String,
    pub stack_name: String,
    pub fanout_queue_url: String,
    pub fanout_dead_letter_queue_url: String,
    pub attachments_bucket: String,
    /// The copy of every integrator event (absent on a stack deployed without `EventTap=enabled`).
    pub event_tap_queue_url: Option<String>,
}

impl Endpoints {
    pub fn to_json(&self) -> Value {
        json!({
            "websocket": self.websocket,
            "http": self.http,
            "awsEndpoint": self.aws_endpoint,
            "region": self.region,
            "tableName": self.table_name,
            "stackName": self.stack_name,
            "fanoutQueueUrl": self.fanout_queue_url,
            "fanoutDeadLetterQueueUrl": self.fanout_dead_letter_queue_url,
            "attachmentsBucket": self.attachments_bucket,
            "eventTapQueueUrl": self.event_tap_queue_url,
        })
    }
}

/// Package and deploy the template as `stack` with the template parameters `overrides` (`Name=value`); writes
/// `template.yaml`, `packaged.yaml` and `endpoints.json` into `out_dir`.
pub fn deploy(paths: &Paths, target: &AwsTarget, stack: &str, out_dir: &Path, overrides: &[&str]) -> Res<Endpoints> {
    let template = paths.root.join("infra").join("template.yaml");
    if !template.is_file() {
        return Err(format!("{} does not exist", template.display()));
    }
    fs::create_dir_all(out_dir).map_err(|err| format!("cannot create {}: {err}", out_dir.display()))?;
    let local_template = out_dir.join("template.yaml");
    let packaged = out_dir.join("packaged.yaml");

    substep(&format!("create bucket s3://{ARTIFACT_BUCKET}"), || ensure_bucket(target, ARTIFACT_BUCKET))?;

    // The template's Architecture follows the binaries, so the two cannot disagree.
    let arch = substep("read the functions' architecture", || runnable_build(paths))?;

    substep("point CodeUri at the cargo-lambda output", || {
        let lambda_dir = toolchain::lambda_dir(paths)?;
        let mut command = Command::new(&target.python);
        command
            .current_dir(&paths.root)
            .arg(paths.localstack.join("package_template.py"))
            .arg(&template)
            .arg(&local_template)
            .arg("--lambda-dir")
            .arg(lambda_dir);
        let output = cmd::output(&mut command)?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        Ok(())
    })?;

    substep("aws cloudformation package", || {
        let template = local_template.to_string_lossy();
        let packaged = packaged.to_string_lossy();
        cmd::output(&mut target.aws([
            "cloudformation",
            "package",
            "--template-file",
            &template,
            "--s3-bucket",
            ARTIFACT_BUCKET,
            "--output-template-file",
            &packaged,
        ]))
        .map(drop)
    })?;
    check_interrupted()?;

    if stack_status(target, stack).as_deref() == Some("ROLLBACK_COMPLETE") {
        // A failed first deploy leaves a stack AWS (and LocalStack) refuse to
        // update; it holds no resources, so delete it and start over.
        substep(&format!("delete stack {stack} left in ROLLBACK_COMPLETE"), || delete_stack(target, stack))?;
    }

    // CloudFormation cannot create SNS platform applications (operators make them with their FCM and APNs
    // credentials); the emulator takes placeholder ones, so phones' push runs through SNS locally too.
    let fcm = substep("SNS platform application for FCM", || platform_application(target, "GCM", "chat-local-fcm"))?;
    let apns =
        substep("SNS platform application for APNs", || platform_application(target, "APNS", "chat-local-apns"))?;

    substep("aws cloudformation deploy", || {
        let template = packaged.to_string_lossy();
        let management = format!("ManagementEndpointBase={}", target.management_endpoint_base());
        let mut command = target.aws([
            "cloudformation",
            "deploy",
            "--template-file",
            &template,
            "--stack-name",
            stack,
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--no-fail-on-empty-changeset",
            // The packaged template is over CloudFormation's 51,200-byte inline limit: it goes through S3.
            "--s3-bucket",
            ARTIFACT_BUCKET,
            "--parameter-overrides",
            &format!("Architecture={arch}"),
            &management,
            // A copy of every integrator event on a queue, for the tests and for watching a dev stack.
            "EventTap=enabled",
            // The tests' push service listens on loopback, without TLS.
            "PushAllowHttp=true",
            &format!("FcmPlatformApplicationArn={fcm}"),
            &format!("ApnsPlatformApplicationArn={apns}"),
        ]);
        command.args(overrides);
        let deployed = cmd::run(&mut command);
        if deployed.is_err() {
            print_stack_events(target, stack);
        }
        deployed
    })?;

    read_endpoints(target, stack, out_dir)
}

/// The ARN of the emulator's platform application `name` (made if missing; the same name answers the same ARN).
fn platform_application(target: &AwsTarget, platform: &str, name: &str) -> Res<String> {
    let output = cmd::output(&mut target.aws([
        "sns",
        "create-platform-application",
        "--name",
        name,
        "--platform",
        platform,
        "--attributes",
        "PlatformCredential=placeholder,PlatformPrincipal=placeholder",
        "--query",
        "PlatformApplicationArn",
        "--output",
        "text",
    ]))?;
    let arn = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !arn.starts_with("arn:") {
        return Err(format!("no platform application ARN in {arn:?}"));
    }
    Ok(arn)
}

/// The architecture of the functions in `<target>/lambda`, made runnable on this machine (qemu for arm64 on
/// x86_64).
pub fn runnable_build(paths: &Paths) -> Res<arch::Arch> {
    let arch = arch::built(paths)?;
    arch::ensure_runnable(arch)?;
    println!("     {arch}");
    Ok(arch)
}

/// `s3 mb`, accepting a bucket that is already there.
pub fn ensure_bucket(target: &AwsTarget, bucket: &str) -> Res<()> {
    let mut command = target.aws(["s3", "mb", &format!("s3://{bucket}")]);
    let output = cmd::output_unchecked(&mut command)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || stderr.contains("BucketAlreadyOwnedByYou") || stderr.contains("BucketAlreadyExists") {
        Ok(())
    } else {
        Err(cmd::failure_message(&command, &output))
    }
}

/// The deployed `stack`'s endpoints from its outputs (the same for the SAM and the CDK deploy), also written to
/// `out_dir/endpoints.json`.
pub fn read_endpoints(target: &AwsTarget, stack: &str, out_dir: &Path) -> Res<Endpoints> {
    let outputs = substep("read stack outputs", || stack_outputs(target, stack))?;
    let output = |key: &str| -> Res<String> {
        outputs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("stack {stack} has no output `{key}` (check infra/template.yaml Outputs)"))
    };
    let base = format!("127.0.0.1:{}/_aws/execute-api", target.port);
    let endpoints = Endpoints {
        websocket: format!("ws://{base}/{}/{}", output("WebSocketApiId")?, output("StageName")?),
        // The HTTP API's `$default` stage is served from the API's root.
        http: format!("http://{base}/{}", output("HttpApiId")?),
        aws_endpoint: target.endpoint(),
        region: REGION.to_string(),
        table_name: output("TableName")?,
        stack_name: stack.to_string(),
        fanout_queue_url: output("FanoutQueueUrl")?,
        fanout_dead_letter_queue_url: output("FanoutDeadLetterQueueUrl")?,
        attachments_bucket: output("AttachmentsBucketName")?,
        event_tap_queue_url: output("EventTapQueueUrl").ok(),
    };
    write_json(&out_dir.join("endpoints.json"), &endpoints.to_json())?;
    Ok(endpoints)
}

/// One deploy sub-step, with its duration.
pub fn substep<T>(name: &str, step: impl FnOnce() -> Res<T>) -> Res<T> {
    println!("  -> {name}");
    let started = Instant::now();
    let result = step();
    match &result {
        Ok(_) => println!("     ok ({:.1}s)", started.elapsed().as_secs_f64()),
        Err(_) => println!("     FAILED ({:.1}s)", started.elapsed().as_secs_f64()),
    }
    result
}

/// The stack's status, or `None` if it does not exist (or cannot be read).
fn stack_status(target: &AwsTarget, stack: &str) -> Option<String> {
    let output = cmd::output_unchecked(&mut target.aws([
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        stack,
        "--output",
        "json",
    ]))
    .ok()
    .filter(|output| output.status.success())?;
    let described: Value = serde_json::from_slice(&output.stdout).ok()?;
    described["Stacks"][0]["StackStatus"].as_str().map(str::to_string)
}

/// Delete a stack and wait (bounded) until it is gone.
fn delete_stack(target: &AwsTarget, stack: &str) -> Res<()> {
    const DELETE_TIMEOUT: Duration = Duration::from_secs(120);
    cmd::output(&mut target.aws(["cloudformation", "delete-stack", "--stack-name", stack]))?;
    let deadline = Instant::now() + DELETE_TIMEOUT;
    loop {
        match stack_status(target, stack).as_deref() {
            None | Some("DELETE_COMPLETE") => return Ok(()),
            Some("DELETE_FAILED") => return Err(format!("deleting stack {stack} failed")),
            Some(_) if Instant::now() > deadline => {
                return Err(format!("stack {stack} was not deleted within {}s", DELETE_TIMEOUT.as_secs()));
            }
            Some(_) => {
                check_interrupted()?;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// `(OutputKey, OutputValue)` pairs of the stack.
fn stack_outputs(target: &AwsTarget, stack: &str) -> Res<Vec<(String, String)>> {
    let output =
        cmd::output(&mut target.aws(["cloudformation", "describe-stacks", "--stack-name", stack, "--output", "json"]))?;
    let described: Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("cannot parse `aws cloudformation describe-stacks` output: {err}"))?;
    let outputs =
        described["Stacks"][0]["Outputs"].as_array().ok_or_else(|| format!("stack {stack} has no Outputs"))?;
    Ok(outputs
        .iter()
        .filter_map(|entry| {
            Some((entry["OutputKey"].as_str()?.to_string(), entry["OutputValue"].as_str()?.to_string()))
        })
        .collect())
}

/// Show why a deploy failed: the stack's most recent events, oldest first.
fn print_stack_events(target: &AwsTarget, stack: &str) {
    const SHOWN: usize = 40;
    let mut command =
        target.aws(["cloudformation", "describe-stack-events", "--stack-name", stack, "--output", "json"]);
    let output = match cmd::output(&mut command) {
        Ok(output) => output,
        Err(err) => {
            eprintln!("(could not read the stack events: {err})");
            return;
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&output.stdout).ok();
    let Some(events) = parsed.as_ref().and_then(|value| value["StackEvents"].as_array()) else {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        return;
    };
    eprintln!("\n---- `{}` (last {SHOWN}) ----", cmd::describe(&command));
    for event in events.iter().take(SHOWN).rev() {
        let field = |name: &str| event[name].as_str().unwrap_or("").to_string();
        let reason = field("ResourceStatusReason");
        eprintln!(
            "{}  {:<32} {:<40} {}{}",
            field("Timestamp"),
            field("LogicalResourceId"),
            field("ResourceType"),
            field("ResourceStatus"),
            if reason.is_empty() { String::new() } else { format!("\n    reason: {reason}") }
        );
    }
    eprintln!("---- end of stack events ----");
}
