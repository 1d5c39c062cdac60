//! Template checks and the AWS build, run offline with the project's pinned tools.
//!
//! - [`lint_template`]: `cfn-lint` and `sam validate --lint` on `infra/template.yaml`,
//!   the "Lint template" step of `cargo xtask test`.
//! - [`sam_build`]: `sam build`, exactly as a real AWS deployment runs it
//!   (`cargo xtask sam-build [--arch arm64|x86_64]`, see docs/deploy.md).
//!   `cargo xtask test` runs it for arm64, the template's default, right after
//!   its own arm64 build: it reuses `target/`, so it costs seconds and keeps
//!   the AWS build path tested.
//!
//! Neither needs AWS, and neither may reach it: every `sam`/`cfn-lint`
//! process gets dummy credentials, config files that do not exist, an AWS
//! endpoint on a closed loopback port (so a stray SDK call fails at once
//! instead of leaving the machine), no telemetry, and SAM CLI's weekly
//! "newer version?" lookup marked as just done.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::arch::{self, Arch};
use crate::deploy::sandbox_aws_env;
use crate::paths::Paths;
use crate::{Res, cmd, toolchain};

/// The template every check and build reads, relative to the repository root.
const TEMPLATE: &str = "infra/template.yaml";
/// Where `sam build` writes (relative to the root). `sam deploy` run from the
/// root picks `.aws-sam/build/template.yaml` up by default.
const SAM_BUILD_DIR: &str = ".aws-sam/build";
/// Nothing listens on the discard port: AWS SDK calls fail fast on loopback.
const CLOSED_PORT: u16 = 9;

/// "Lint template": `cfn-lint` then `sam validate --lint`. Both always run,
/// so one run reports every finding; any finding (error, warning or
/// informational at cfn-lint's default level) fails the step.
pub fn lint_template(paths: &Paths) -> Res<()> {
    let mut cfn_lint = Command::new(paths.venv_bin("cfn-lint"));
    cfn_lint.current_dir(&paths.root).arg(TEMPLATE);
    offline_env(&mut cfn_lint, paths)?;
    let cfn_lint = cmd::run(&mut cfn_lint);

    // `--lint` only: plain `sam validate` may look managed policies up in IAM.
    let mut validate = Command::new(paths.venv_bin("sam"));
    validate.current_dir(&paths.root).args(["validate", "--lint", "--template", TEMPLATE]);
    offline_env(&mut validate, paths)?;
    let validate = cmd::run(&mut validate);

    // The security scan: any finding not skipped (with its reason) in infra/checkov.yaml fails.
    let scan = toolchain::ensure_tools_venv(paths).and_then(|()| {
        let mut checkov = Command::new(paths.tool_bin("checkov"));
        checkov.current_dir(&paths.root).args(["--config-file", "infra/checkov.yaml", "-f", TEMPLATE]);
        offline_env(&mut checkov, paths)?;
        cmd::run(&mut checkov)
    });

    let failures: Vec<String> = [cfn_lint, validate, scan].into_iter().filter_map(Result::err).collect();
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
}

/// Formatting as `rustfmt.toml` says.
pub fn format(paths: &Paths) -> Res<()> {
    cmd::run(Command::new(crate::toolchain::cargo()).current_dir(&paths.root).args(["fmt", "--all", "--check"]))
}

/// Clippy over every target; what fails is declared once, in `[workspace.lints]`.
pub fn clippy(paths: &Paths) -> Res<()> {
    cmd::run(Command::new(crate::toolchain::cargo()).current_dir(&paths.root).args([
        "clippy",
        "--workspace",
        "--all-targets",
    ]))
}

/// Unit and handler tests: everything `cargo test` runs without a stack. The end-to-end suite (`chat-e2e`) and
/// `chat-cli`'s live tests drive a deployed stack and run after the deploy.
pub fn unit_tests(paths: &Paths) -> Res<()> {
    cmd::run(Command::new(crate::toolchain::cargo()).current_dir(&paths.root).args([
        "test",
        "--workspace",
        "--exclude",
        "chat-e2e",
        "--exclude",
        "chat-cli",
    ]))
}

/// `cargo xtask sam-build`: `sam build` for `arch` into `.aws-sam/build`.
///
/// The `rust-cargolambda` workflow builds in the source tree: one
/// `cargo lambda build --release --bin <Binary>` per function in the
/// workspace root, into the shared `target/`, so it reuses what
/// `cargo xtask build|test` compiled for the same architecture and then copies each
/// `target/lambda/<Binary>/bootstrap` into the build directory.
pub fn sam_build(paths: &Paths, arch: Arch) -> Res<PathBuf> {
    arch::ensure_rust_target(arch)?;
    let mut command = Command::new(paths.venv_bin("sam"));
    command
        .current_dir(&paths.root)
        .args(["build", "--template", TEMPLATE, "--build-dir", SAM_BUILD_DIR])
        .args(["--parameter-overrides", &format!("Architecture={}", arch.as_str())]);
    offline_env(&mut command, paths)?;
    cmd::run(&mut command)?;
    let built = paths.root.join(SAM_BUILD_DIR).join("template.yaml");
    if built.is_file() { Ok(built) } else { Err(format!("`sam build` succeeded but wrote no {}", built.display())) }
}

/// The environment of every `sam` / `cfn-lint` process: the AWS sandbox of
/// the emulator commands, but pointed at a closed port; the venv first on
/// `PATH` (cargo-lambda, zig); SAM CLI state under `.local/sam-cli`.
fn offline_env(command: &mut Command, paths: &Paths) -> Res<()> {
    sandbox_aws_env(command, &paths.local, CLOSED_PORT);
    let app_dir = sam_app_dir(&paths.local)?;
    command
        .env("PATH", toolchain::venv_path(paths)?)
        .env("SAM_CLI_TELEMETRY", "0")
        // SAM CLI keeps its settings here instead of ~/.aws-sam.
        .env("__SAM_CLI_APP_DIR", app_dir);
    Ok(())
}

/// `.local/sam-cli` with a `metadata.json` that says the version check just
/// ran and telemetry is off, so SAM CLI contacts nobody.
fn sam_app_dir(local: &Path) -> Res<PathBuf> {
    let dir = local.join("sam-cli");
    fs::create_dir_all(&dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    // A float: SAM CLI ignores an integer timestamp and checks again.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs_f64()).unwrap_or_default();
    let metadata = serde_json::json!({ "lastVersionCheck": now, "telemetryEnabled": false });
    let file = dir.join("metadata.json");
    fs::write(&file, metadata.to_string()).map_err(|err| format!("cannot write {}: {err}", file.display()))?;
    Ok(dir)
}
