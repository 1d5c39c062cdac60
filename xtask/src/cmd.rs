//! Running external commands with error messages that name the command.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Res;

/// `program arg arg ...` for error messages (file name only for the program).
pub fn describe(command: &Command) -> String {
    let program = command.get_program().to_string_lossy();
    let program = program.rsplit('/').next().unwrap_or(&program).to_string();
    let args = command
        .get_args()
        .map(|arg| {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains(char::is_whitespace) { format!("'{arg}'") } else { arg.into_owned() }
        })
        .collect::<Vec<_>>();
    if args.is_empty() { program } else { format!("{program} {}", args.join(" ")) }
}

/// Run with inherited stdout/stderr; fail unless it exits successfully.
pub fn run(command: &mut Command) -> Res<()> {
    let status = command.status().map_err(|err| format!("cannot start `{}`: {err}", describe(command)))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", describe(command))) }
}

/// Run capturing stdout/stderr; fail (including its stderr) unless it exits
/// successfully.
pub fn output(command: &mut Command) -> Res<Output> {
    let output =
        command.stdin(Stdio::null()).output().map_err(|err| format!("cannot start `{}`: {err}", describe(command)))?;
    if output.status.success() { Ok(output) } else { Err(failure_message(command, &output)) }
}

/// Like [`output`] but returns the captured output even on failure.
pub fn output_unchecked(command: &mut Command) -> Res<Output> {
    command.stdin(Stdio::null()).output().map_err(|err| format!("cannot start `{}`: {err}", describe(command)))
}

pub fn failure_message(command: &Command, output: &Output) -> String {
    let mut message = format!("`{}` failed ({})", describe(command), output.status);
    for stream in [&output.stderr, &output.stdout] {
        let text = String::from_utf8_lossy(stream);
        let text = text.trim();
        if !text.is_empty() {
            message.push_str(":\n");
            message.push_str(text);
        }
    }
    message
}

/// Runs `command` in its own process group with inherited output; kills the whole group (npm, vitest workers,
/// Chromium, cargo and its test binaries) when it outlives `timeout` or on Ctrl-C.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Res<()> {
    let described = describe(command);
    let mut child = command
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot start `{described}`: {err}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("`{described}` failed ({status})")),
            Ok(None) => {}
            Err(err) => return Err(format!("cannot wait for `{described}`: {err}")),
        }
        let why = if crate::interrupted() {
            "interrupted".to_string()
        } else if started.elapsed() > timeout {
            format!("timed out after {} s", timeout.as_secs())
        } else {
            thread::sleep(Duration::from_millis(100));
            continue;
        };
        let group = child.id();
        signal_group(group, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(100));
        }
        signal_group(group, "KILL");
        let _ = child.wait();
        return Err(format!("`{described}` {why}"));
    }
}

/// Sends `signal` (`TERM`, `KILL`) to every process of the group `pgid`; a group already gone is no error.
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_overruns_is_killed_with_its_children() {
        let started = Instant::now();
        let result = run_bounded(Command::new("sh").args(["-c", "sleep 30 & sleep 30"]), Duration::from_millis(300));
        let error = result.expect_err("must time out");
        assert!(error.contains("timed out"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(run_bounded(&mut Command::new("true"), Duration::from_secs(5)).is_ok());
        assert!(run_bounded(&mut Command::new("false"), Duration::from_secs(5)).unwrap_err().contains("failed"));
    }
}
