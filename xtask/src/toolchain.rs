//! The Python venv (MiniStack, awscli, cargo-lambda, zig) and the function build.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::arch::{self, Arch};
use crate::paths::Paths;
use crate::{Res, cmd};

/// The cargo that runs us (`CARGO` is set by `cargo run`), so nested builds
/// use the same toolchain.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Create `.local/venv` if needed and (re)install `localstack/requirements.txt`
/// whenever that file differs from the copy stamped at the last install.
pub fn ensure_venv(paths: &Paths) -> Res<()> {
    install_venv(paths, &paths.venv, "requirements.txt")
}

/// `.local/tools-venv` with `localstack/requirements-tools.txt` (checkov,
/// schemathesis), kept apart because their dependencies clash with the
/// emulator's.
pub fn ensure_tools_venv(paths: &Paths) -> Res<()> {
    install_venv(paths, &paths.tools_venv, "requirements-tools.txt")
}

fn install_venv(paths: &Paths, venv: &std::path::Path, requirements_name: &str) -> Res<()> {
    let python = venv.join("bin").join("python");
    if !python.exists() {
        println!("creating {}", paths.display(venv));
        fs::create_dir_all(&paths.local).map_err(|err| format!("cannot create {}: {err}", paths.local.display()))?;
        cmd::run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    }

    let requirements = paths.localstack.join(requirements_name);
    let wanted =
        fs::read_to_string(&requirements).map_err(|err| format!("cannot read {}: {err}", requirements.display()))?;
    let stamp = venv.join("requirements.installed.txt");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        println!("up to date with {} (stamp {})", paths.display(&requirements), paths.display(&stamp));
        return Ok(());
    }
    println!("installing {}", paths.display(&requirements));
    cmd::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    fs::write(&stamp, wanted).map_err(|err| format!("cannot write {}: {err}", stamp.display()))
}

/// `PATH` with the venv first, so `cargo lambda` finds the pinned
/// cargo-lambda and `python3 -m ziglang`.
pub fn venv_path(paths: &Paths) -> Res<OsString> {
    let mut entries = vec![paths.venv.join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        entries.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(entries).map_err(|err| format!("cannot build PATH: {err}"))
}

/// Build every function for `arch` into `<target>/lambda/<binary>/bootstrap` (replacing what another
/// architecture's build left there; each architecture keeps its own incremental `target/<triple>/`).
pub fn build_functions(paths: &Paths, arch: Arch) -> Res<()> {
    arch::ensure_rust_target(arch)?;
    cmd::run(
        Command::new(cargo())
            .current_dir(&paths.root)
            .env("PATH", venv_path(paths)?)
            .args(["lambda", "build", "--release", "--workspace"])
            .args(["--exclude", "chat-e2e", "--exclude", "xtask", "--exclude", "chat-cli"])
            .args(["--target", arch.rust_target()]),
    )
}

/// `<target>/lambda`, where cargo-lambda leaves the `bootstrap` binaries.
/// Asks cargo, so `CARGO_TARGET_DIR` and `build.target-dir` are honoured.
pub fn lambda_dir(paths: &Paths) -> Res<PathBuf> {
    let output = cmd::output(Command::new(cargo()).current_dir(&paths.root).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|err| format!("cannot parse `cargo metadata` output: {err}"))?;
    let target = metadata["target_directory"].as_str().ok_or("`cargo metadata` reported no target_directory")?;
    Ok(PathBuf::from(target).join("lambda"))
}
