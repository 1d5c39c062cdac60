//! The restart drill: the emulator dies in the middle of a conversation and comes back on its saved state.
//!
//! The checks live in `tests/src/bin/restart-drill.rs`; this side only does what a test process cannot,
//! restarting the emulator, and talks to the drill over its stdin/stdout (`READY` out, `RESTARTED` in).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::deploy::AwsTarget;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::paths::Paths;
use crate::{Res, cmd, toolchain};

/// Building the drill (incremental: the e2e suite built its dependencies) and setting up the conversation.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// The drill's own waits are bounded well below this.
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the drill against `emulator`, which must have been started with `config` (persistent state);
/// on return the emulator is the restarted one.
pub fn restart_drill(
    paths: &Paths,
    emulator: &mut Emulator,
    config: &EmulatorConfig,
    target: &AwsTarget,
    endpoints_file: &Path,
) -> Res<()> {
    let mut command = Command::new(toolchain::cargo());
    command
        .current_dir(&paths.root)
        .args(["run", "--quiet", "-p", "chat-e2e", "--bin", "restart-drill"])
        .env("CHAT_ENDPOINTS_FILE", endpoints_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    target.apply_env(&mut command);
    let mut drill = Drill(command.spawn().map_err(|err| format!("cannot start `{}`: {err}", cmd::describe(&command)))?);

    let stdout = drill.0.stdout.take().expect("piped stdout");
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  drill: {line}");
            if line == "READY" {
                let _ = ready_tx.send(());
            }
        }
    });
    ready.recv_timeout(READY_TIMEOUT).map_err(|_| "the drill never reported READY".to_string())?;

    let restart = Instant::now();
    emulator.stop();
    *emulator = Emulator::start(paths, config.clone())?;
    println!("emulator restarted on its saved state in {:.1}s", restart.elapsed().as_secs_f64());
    let mut stdin = drill.0.stdin.take().expect("piped stdin");
    writeln!(stdin, "RESTARTED").map_err(|err| format!("cannot signal the drill: {err}"))?;

    let status = drill.wait(FINISH_TIMEOUT)?;
    if status.success() { Ok(()) } else { Err(format!("the restart drill failed ({status})")) }
}

/// The drill process, killed if we leave early.
struct Drill(Child);

impl Drill {
    fn wait(&mut self, timeout: Duration) -> Res<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().map_err(|err| format!("waiting for the drill: {err}"))? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("the restart drill did not finish within {}s", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
