//! Debian packages the run needs (Chromium for the browser tests, qemu for arm64 functions), installed
//! non-interactively with apt-get when missing: a fresh CI machine has none of them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Res;
use crate::cmd::run_bounded;

/// Bound on each apt-get run (Chromium, the largest, downloads about 100 MB).
const APT_TIMEOUT: Duration = Duration::from_secs(900);

/// Install every `(package, a file it installs)` whose file is missing.
pub fn ensure(packages: &[(&str, &str)]) -> Res<()> {
    let missing: Vec<&str> =
        packages.iter().filter(|(_, marker)| !Path::new(marker).exists()).map(|(package, _)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!("{} missing and there is no apt-get: install them by hand", missing.join(" ")));
    }
    println!("installing {} with apt-get", missing.join(" "));
    let install = || {
        run_bounded(
            apt_get()
                .args(["install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"])
                .args(&missing),
            APT_TIMEOUT,
        )
    };
    // The package lists may be missing or stale on a fresh machine: refresh them only when installing fails.
    let installed = install().or_else(|first| {
        println!("apt-get install failed ({first}); running apt-get update and trying again");
        run_bounded(apt_get().args(["update", "-o", "DPkg::Lock::Timeout=120"]), APT_TIMEOUT)?;
        install()
    });
    installed.map_err(|err| format!("cannot install {} (needs root): {err}", missing.join(" ")))?;
    match packages.iter().find(|(_, marker)| !Path::new(marker).exists()) {
        Some((package, marker)) => Err(format!("apt-get installed {package}, but {marker} is still missing")),
        None => Ok(()),
    }
}

fn apt_get() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive").env("NEEDRESTART_MODE", "a").args([
        "-q",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ]);
    command
}
