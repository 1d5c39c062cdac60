//! Results go to stdout as JSON, one document per line, so scripts can read them with `jq` or line by line;
//! everything meant for a person (progress, errors) goes to stderr.

use std::io::Write;

use serde_json::Value;

use crate::error::{CliError, CliResult};

/// Prints `value` as one line of compact JSON and flushes (a `listen` piped into another program shows each
/// event at once).
pub fn json_line(value: &Value) -> CliResult<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{value}")
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::Setup(format!("cannot write to stdout: {e}")))
}

/// Prints each item of a page (`{"items": [...]}`) as its own line.
pub fn items(page: &Value) -> CliResult<()> {
    for item in page["items"].as_array().into_iter().flatten() {
        json_line(item)?;
    }
    Ok(())
}
