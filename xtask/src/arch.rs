//! The Lambda architecture: building the functions for it, and running them on this machine.
//!
//! The template's default is arm64 (Graviton), and `cargo xtask test` builds and runs exactly that. On an x86_64
//! machine the emulator starts each arm64 `bootstrap` as an ordinary process; the kernel hands it to
//! `qemu-aarch64` (user-mode emulation, registered with `binfmt_misc`) and qemu finds the arm64 C library under
//! `QEMU_LD_PREFIX`. [`ensure_runnable`] sets that up where the machine allows it and says why where it does not.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::paths::Paths;
use crate::{Res, apt, cmd, toolchain};

/// Lambda architecture, as the template's `Architecture` parameter spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

impl Arch {
    /// The machine's own: functions built for it run natively in the emulator (fastest for `dev` and `bench`).
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") { Arch::Arm64 } else { Arch::X86_64 };

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The Rust target cargo-lambda compiles for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// ELF `e_machine`.
    fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 0x3e,
            Arch::Arm64 => 0xb7,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Rust standard library for `arch`, added with rustup when this toolchain lacks it.
pub fn ensure_rust_target(arch: Arch) -> Res<()> {
    let target = arch.rust_target();
    let output = cmd::output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if Path::new(&sysroot).join("lib").join("rustlib").join(target).join("lib").is_dir() {
        return Ok(());
    }
    println!("adding the Rust target {target} (rustup target add)");
    cmd::run(Command::new("rustup").args(["target", "add", target])).map_err(|err| {
        format!(
            "cannot add the Rust standard library for {target} to {sysroot}: {err}. Add it by hand \
             (`rustup target add {target}`), or build for the other architecture (`--arch`)"
        )
    })
}

/// The architecture of the `bootstrap` files in `<target>/lambda` (what a deploy would upload); all must agree.
pub fn built(paths: &Paths) -> Res<Arch> {
    let dir = toolchain::lambda_dir(paths)?;
    let entries = fs::read_dir(&dir).map_err(|err| format!("no functions built in {} ({err})", dir.display()))?;
    let mut found: Vec<(String, Arch)> = Vec::new();
    for entry in entries.flatten() {
        let bootstrap = entry.path().join("bootstrap");
        let mut header = [0u8; 20];
        let Ok(mut file) = fs::File::open(&bootstrap) else { continue };
        let machine = (file.read_exact(&mut header).is_ok() && header.starts_with(b"\x7fELF"))
            .then(|| u16::from_le_bytes([header[18], header[19]]));
        let arch = [Arch::X86_64, Arch::Arm64]
            .into_iter()
            .find(|arch| Some(arch.elf_machine()) == machine)
            .ok_or_else(|| format!("{} is not an x86_64 or arm64 Linux executable", bootstrap.display()))?;
        found.push((entry.file_name().to_string_lossy().into_owned(), arch));
    }
    let Some((_, first)) = found.first() else {
        return Err(format!("no functions built in {}: run `cargo xtask build`", dir.display()));
    };
    if let Some((name, other)) = found.iter().find(|(_, arch)| arch != first) {
        return Err(format!(
            "{} holds functions of two architectures ({name} is {other}, {} is {first}): rebuild with `cargo xtask build`",
            dir.display(),
            found[0].0
        ));
    }
    Ok(*first)
}

/// Where Debian's `libc6-arm64-cross` puts the arm64 C library and dynamic loader.
pub const QEMU_LD_PREFIX: &str = "/usr/aarch64-linux-gnu";
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Our `binfmt_misc` entry: arm64 ELF executables go to `qemu-aarch64`. Flag F opens the interpreter once, at
/// registration, so it also runs inside the emulator's processes whatever their mount namespace.
const BINFMT_NAME: &str = "qemu-aarch64";
const BINFMT_RULE: &str = concat!(
    r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:",
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:F"
);

/// Make `arch`'s binaries start on this machine: nothing for the host's own; for arm64 on x86_64, qemu-user and
/// the arm64 C library (apt-get) and a `binfmt_misc` registration (needs root and a kernel that allows it).
pub fn ensure_runnable(arch: Arch) -> Res<()> {
    if arch == Arch::HOST {
        return Ok(());
    }
    if arch != Arch::Arm64 {
        return Err(format!("{arch} functions cannot run on this {} machine", Arch::HOST));
    }
    apt::ensure(&[
        ("qemu-user", "/usr/bin/qemu-aarch64"),
        ("libc6-arm64-cross", "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1"),
    ])?;
    let entry = Path::new(BINFMT_DIR).join(BINFMT_NAME);
    let registered =
        || fs::read_to_string(&entry).is_ok_and(|text| text.starts_with("enabled") && text.contains("flags: F"));
    if registered() {
        return Ok(());
    }
    let why = |step: &str, err: String| {
        format!(
            "arm64 functions cannot run here: {step} failed ({err}). Running them on x86_64 needs qemu-aarch64 \
             registered with the kernel's binfmt_misc (root, and a kernel or container that allows it). Use an \
             arm64 machine, or build and run x86_64 (`--arch x86_64`)"
        )
    };
    if !Path::new(BINFMT_DIR).join("register").exists() {
        cmd::run(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]))
            .map_err(|err| why(&format!("mounting {BINFMT_DIR}"), err))?;
    }
    if entry.exists() {
        // Someone else's entry for qemu-aarch64 without flag F (Debian's qemu-user-binfmt): replace it.
        fs::write(&entry, "-1")
            .map_err(|err| why(&format!("removing the old {}", entry.display()), err.to_string()))?;
    }
    fs::write(Path::new(BINFMT_DIR).join("register"), BINFMT_RULE)
        .map_err(|err| why("registering qemu-aarch64 with binfmt_misc", err.to_string()))?;
    if registered() {
        Ok(())
    } else {
        Err(why("checking the registration", format!("{} is not enabled", entry.display())))
    }
}
