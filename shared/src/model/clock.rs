//! Wall-clock time in the two forms the system uses: ISO-8601 on the wire, epoch seconds for TTLs and windows.

/// Current time as ISO-8601 UTC with milliseconds, the format of every timestamp on the wire.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn now_epoch_seconds() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}
