//! `cargo xtask bench`: a fresh emulator, the stack deployed on it, and the benchmark client
//! (`tests/src/bin/chat-bench`) driving it; the results go to docs/performance.md.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::arch::{self, Arch};
use crate::deploy::{self, AwsTarget};
use crate::emulator::{self, Emulator, EmulatorConfig};
use crate::paths::Paths;
use crate::steps::Steps;
use crate::{DEFAULT_STACK, LOG_TAIL_LINES, Res, cmd, toolchain, write_json};

/// The template's function resources and the binary each runs.
const FUNCTIONS: [(&str, &str); 10] = [
    ("ConnectFunction", "ws-connect"),
    ("DisconnectFunction", "ws-disconnect"),
    ("MessageFunction", "ws-message"),
    ("RestApiFunction", "rest-api"),
    ("FanoutWorkerFunction", "fanout-worker"),
    ("AccountWorkerFunction", "account-worker"),
    ("AttachmentProcessorFunction", "attachment-processor"),
    ("EventsWorkerFunction", "events-worker"),
    ("PushWorkerFunction", "push-worker"),
    ("PushSenderFunction", "push-sender"),
];

pub fn bench(paths: &Paths, arch: Arch, client_args: &[String]) -> Res<()> {
    let mut steps = Steps::new();
    let outcome = run(paths, &mut steps, arch, client_args);
    steps.summary();
    outcome
}

fn run(paths: &Paths, steps: &mut Steps, arch: Arch, client_args: &[String]) -> Res<()> {
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    steps
        .run(&format!("Build functions for {arch} (cargo lambda build)"), || toolchain::build_functions(paths, arch))?;
    steps.run("Build the benchmark client (profile bench-client)", || {
        cmd::run(Command::new(toolchain::cargo()).current_dir(&paths.root).args([
            "build",
            "--profile",
            "bench-client",
            "-p",
            "chat-e2e",
            "--bin",
            "chat-bench",
        ]))
    })?;

    let port = emulator::free_port()?;
    let out_dir = paths.local.join(format!("bench-{port}"));
    let config = EmulatorConfig {
        port,
        log: paths.local.join(format!("ministack-bench-{port}.log")),
        state_dir: out_dir.join("state"),
        persist: false,
    };
    let mut emulator =
        steps.run(&format!("Start fresh MiniStack on 127.0.0.1:{port}"), || Emulator::start(paths, config))?;
    let target = AwsTarget::new(paths, port);
    let measured = steps
        .run(&format!("Deploy stack {DEFAULT_STACK}"), || deploy::deploy(paths, &target, DEFAULT_STACK, &out_dir, &[]))
        .and_then(|_| steps.run("Describe the deployed functions", || describe_functions(paths, &target, &out_dir)))
        .and_then(|functions_file| {
            steps.run("Benchmark (chat-bench)", || {
                let client = paths.root.join("target").join("bench-client").join("chat-bench");
                let mut command = Command::new(client);
                command
                    .current_dir(&paths.root)
                    .arg("--report")
                    .arg(paths.root.join("docs").join("performance.md"))
                    .arg("--functions")
                    .arg(&functions_file)
                    .arg("--aws-cli")
                    .arg(paths.venv_bin("aws"))
                    .args(client_args)
                    .env("CHAT_ENDPOINTS_FILE", out_dir.join("endpoints.json"))
                    // The cold-start measurement starts each `bootstrap` itself: arm64 ones run under qemu too.
                    .env("QEMU_LD_PREFIX", arch::QEMU_LD_PREFIX)
                    .env("PATH", toolchain::venv_path(paths)?);
                target.apply_env(&mut command);
                cmd::run(&mut command)
            })
        });
    if measured.is_err() {
        emulator.print_log_tail(LOG_TAIL_LINES);
    }
    steps.run("Stop MiniStack", || {
        emulator.stop();
        Ok(())
    })?;
    let _ = fs::remove_dir_all(&out_dir);
    measured
}

/// Writes `functions.json` for the client: each function's emulator name, binary and deployed environment.
fn describe_functions(paths: &Paths, target: &AwsTarget, out_dir: &Path) -> Res<std::path::PathBuf> {
    let resources = aws_json(target, &["cloudformation", "describe-stack-resources", "--stack-name", DEFAULT_STACK])?;
    let lambda_dir = toolchain::lambda_dir(paths)?;
    let mut functions = Vec::new();
    for (logical, binary) in FUNCTIONS {
        let name = resources["StackResources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["LogicalResourceId"] == logical)
            .and_then(|r| r["PhysicalResourceId"].as_str())
            .ok_or_else(|| format!("stack {DEFAULT_STACK} has no {logical}"))?
            .to_owned();
        let configuration =
            aws_json(target, &["lambda", "get-function-configuration", "--function-name", name.as_str()])?;
        functions.push(json!({
            "binary": binary,
            "name": name,
            "path": lambda_dir.join(binary).join("bootstrap"),
            "environment": configuration["Environment"]["Variables"],
        }));
    }
    let file = out_dir.join("functions.json");
    write_json(&file, &Value::Array(functions))?;
    Ok(file)
}

fn aws_json(target: &AwsTarget, args: &[&str]) -> Res<Value> {
    let mut command = target.aws_command();
    command.args(args).args(["--output", "json"]);
    let output = cmd::output(&mut command)?;
    serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("`{}` printed no JSON: {err}", cmd::describe(&command)))
}
