//! Logging setup shared by every function.
//!
//! Logs are JSON lines on stderr. Lambda ships stderr to CloudWatch like stdout, and the local emulator returns
//! an invocation as soon as the function writes to stderr instead of waiting 50 ms for it, so stderr is both
//! correct in the cloud and fast locally.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Every line carries the span of the request it belongs to (API Gateway request id, connection, route).
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time() // CloudWatch timestamps every line already.
        .try_init();
}
