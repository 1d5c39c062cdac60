//! The clients' test suites: the TypeScript SDK (`clients/typescript`: typecheck and unit tests without a
//! stack, integration tests against one) and the terminal client `chat-cli` (`clients/cli`: unit tests, and live
//! tests that run the built binary against a stack).
//!
//! Each package's dependencies (the SDK's here, the web app's for `web`) are installed with `npm ci` from its
//! `package-lock.json` whenever `node_modules` is missing or was installed from another lockfile (a stamp inside `node_modules` records which), so a fresh
//! checkout and a changed lockfile both just work while unchanged runs skip the install. Every command runs in
//! its own process group and is killed with its children (npm, vitest workers, cargo, test binaries) when it
//! outlives its bound or on Ctrl-C.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd::run_bounded;
use crate::deploy::AwsTarget;
use crate::paths::Paths;
use crate::{Res, cmd, toolchain};

/// The SDK's package, relative to the repository root.
const SDK_DIR: &str = "clients/typescript";
/// The oldest Node the SDK supports (`engines` in its package.json).
const MIN_NODE_MAJOR: u32 = 20;
/// Bound on `npm ci` (a fresh install downloads vitest, TypeScript and the AWS SDK clients).
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on `npm run typecheck`.
const TYPECHECK_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on the unit suite (about 2 s of tests).
const SDK_UNIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on the integration suite (each test bounds its own waits; the suite takes under a minute).
const SDK_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on `cargo test -p chat-cli`, compiling included.
const CLI_TIMEOUT: Duration = Duration::from_secs(900);
/// Written into `node_modules` after `npm ci`: the lockfile it installed.
const INSTALL_STAMP: &str = ".xtask-installed-package-lock.json";

/// SDK: `npm ci` if needed, `npm run typecheck`, `npm test` (unit tests with fakes and the AsyncAPI contract
/// test; no stack needed).
pub fn sdk_unit_tests(paths: &Paths) -> Res<()> {
    let sdk = sdk_dir(paths);
    ensure_node_modules(paths, &sdk)?;
    run_bounded(npm(&sdk).args(["run", "typecheck"]), TYPECHECK_TIMEOUT)?;
    run_bounded(npm(&sdk).args(["test"]), SDK_UNIT_TIMEOUT)
}

/// SDK against the deployed stack described by `endpoints_file`: live frames checked against
/// docs/asyncapi.yaml, reconnects after server-side closes, a crowd of clients (`npm run test:integration`).
pub fn sdk_integration_tests(paths: &Paths, target: &AwsTarget, endpoints_file: &Path) -> Res<()> {
    let sdk = sdk_dir(paths);
    let endpoints_file = absolute(paths, endpoints_file)?;
    ensure_node_modules(paths, &sdk)?;
    let mut command = npm(&sdk);
    command.args(["run", "test:integration"]).env("CHAT_ENDPOINTS_FILE", &endpoints_file);
    // The emulator only, with throwaway credentials: nothing from the environment may reach a real account.
    target.apply_env(&mut command);
    run_bounded(&mut command, SDK_INTEGRATION_TIMEOUT)
}

/// `chat-cli`: its unit tests and its live tests (the built binary against the stack in `endpoints_file`).
pub fn cli_tests(paths: &Paths, target: &AwsTarget, endpoints_file: &Path) -> Res<()> {
    let endpoints_file = absolute(paths, endpoints_file)?;
    let mut command = Command::new(toolchain::cargo());
    command.current_dir(&paths.root).args(["test", "-p", "chat-cli"]).env("CHAT_ENDPOINTS_FILE", &endpoints_file);
    target.apply_env(&mut command);
    run_bounded(&mut command, CLI_TIMEOUT)
}

fn sdk_dir(paths: &Paths) -> PathBuf {
    paths.root.join(SDK_DIR)
}

/// npm in `dir`, quiet about updates, funding and colours.
pub fn npm(dir: &Path) -> Command {
    let mut command = Command::new("npm");
    command
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        // The AWS SDK for JavaScript (integration tests only) warns on every client that Node 20 support ends.
        .env("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true");
    command
}

/// `npm ci` in the package `dir` unless its `node_modules` was installed from the current `package-lock.json`.
pub fn ensure_node_modules(paths: &Paths, dir: &Path) -> Res<()> {
    check_node()?;
    let lockfile = dir.join("package-lock.json");
    let wanted = fs::read_to_string(&lockfile).map_err(|err| format!("cannot read {}: {err}", lockfile.display()))?;
    let stamp = dir.join("node_modules").join(INSTALL_STAMP);
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        println!("{} is up to date with {}", paths.display(&dir.join("node_modules")), paths.display(&lockfile));
        return Ok(());
    }
    println!("installing {} (npm ci)", paths.display(&lockfile));
    run_bounded(npm(dir).args(["ci", "--no-audit"]), NPM_CI_TIMEOUT)?;
    fs::write(&stamp, wanted).map_err(|err| format!("cannot write {}: {err}", stamp.display()))
}

/// Node and npm are on PATH and Node is recent enough.
fn check_node() -> Res<()> {
    let output = cmd::output(Command::new("node").arg("--version"))
        .map_err(|err| format!("the SDK tests need Node {MIN_NODE_MAJOR}+ and npm on PATH ({err})"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match node_major(&version) {
        Some(major) if major >= MIN_NODE_MAJOR => Ok(()),
        _ => Err(format!("the SDK tests need Node {MIN_NODE_MAJOR}+, found `{version}`")),
    }
}

/// 20 for `v20.20.2`.
fn node_major(version: &str) -> Option<u32> {
    version.trim().strip_prefix('v')?.split('.').next()?.parse().ok()
}

fn absolute(paths: &Paths, file: &Path) -> Res<PathBuf> {
    let file = if file.is_absolute() { file.to_path_buf() } else { paths.root.join(file) };
    if file.is_file() { Ok(file) } else { Err(format!("no endpoints file at {}", file.display())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_are_read_by_major() {
        assert_eq!(node_major("v20.20.2\n"), Some(20));
        assert_eq!(node_major("v22.1.0"), Some(22));
        assert_eq!(node_major("20.1.0"), None);
        assert_eq!(node_major("vx"), None);
    }
}
