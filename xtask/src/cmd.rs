//! Running external commands with error messages that name the command.

use std::process::{Command, Output, Stdio};

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
