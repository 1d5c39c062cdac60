//! Typed configuration, read once when a function starts so a bad deployment fails at init, not mid-request.

use std::time::Duration;

use crate::error::{AppError, AppResult};
use crate::model::UploadRules;

#[derive(Clone, Debug)]
pub struct Config {
    /// The single DynamoDB table holding every entity (see docs/data-model.md).
    pub table_name: String,
    /// Secrets Manager secret holding the HS256 signing key; only the functions that load it have it.
    pub jwt_secret_arn: Option<String>,
    /// Base URL of the API Gateway Management API, e.g. `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub management_endpoint: String,
    /// How long a connection record lives if `$disconnect` never arrives.
    pub connection_ttl: Duration,
    /// Lifetime of issued access tokens (refresh tokens get the next one; an ended session refuses them at once).
    pub token_ttl: Duration,
    /// PostToConnection calls one delivery keeps in flight (measured: docs/performance.md).
    pub posts_in_flight: usize,
    /// The SQS queue that `fanout-worker` consumes.
    pub fanout_queue_url: String,
    /// Where account erasure jobs go (the `account-worker` function consumes them).
    pub account_queue_url: String,
    /// The most connections one invocation posts to itself; bigger deliveries go through the queue.
    pub fanout_inline_max: usize,
    /// Members a group may have.
    pub max_group_members: usize,
    /// The private bucket attachments are uploaded to.
    pub attachments_bucket: String,
    /// What may be uploaded, and how long forms and read URLs work.
    pub uploads: UploadRules,
}

/// One required setting of a function that needs only a few (the [`Config`] of the others reads them all).
pub fn required_env(name: &str) -> AppResult<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AppError::internal(format!("missing configuration {name}")))
}

/// Connections one invocation posts to before handing a delivery to the workers, unless configured
/// (`FANOUT_INLINE_MAX`; chosen by measurement, docs/performance.md).
pub const DEFAULT_FANOUT_INLINE_MAX: usize = 1000;

impl Config {
    pub fn from_env() -> AppResult<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> AppResult<Self> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| AppError::internal(format!("missing configuration {name}")))
        };
        let seconds = |name: &'static str, default: u64| -> AppResult<Duration> {
            match lookup(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v.trim().parse::<u64>().ok().filter(|s| *s > 0).map(Duration::from_secs).ok_or_else(|| {
                    AppError::internal(format!("{name} must be a positive number of seconds, got {v:?}"))
                }),
            }
        };
        let count = |name: &'static str, default: usize, range: std::ops::RangeInclusive<usize>| -> AppResult<usize> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v.trim().parse::<usize>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    AppError::internal(format!(
                        "{name} must be a number from {} to {}, got {v:?}",
                        range.start(),
                        range.end()
                    ))
                }),
            }
        };
        let management_endpoint = required("MANAGEMENT_ENDPOINT")?.trim_end_matches('/').to_owned();
        if !management_endpoint.starts_with("http://") && !management_endpoint.starts_with("https://") {
            return Err(AppError::internal("MANAGEMENT_ENDPOINT must be an http(s) URL"));
        }
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            jwt_secret_arn: lookup("JWT_SECRET_ARN").filter(|v| !v.trim().is_empty()),
            management_endpoint,
            connection_ttl: seconds("CONNECTION_TTL_SECONDS", 7800)?,
            token_ttl: seconds("TOKEN_TTL_SECONDS", 15 * 60)?,
            posts_in_flight: count("POSTS_IN_FLIGHT", crate::ports::DEFAULT_POSTS_IN_FLIGHT, 1..=1000)?,
            fanout_queue_url: required("FANOUT_QUEUE_URL")?,
            account_queue_url: required("ACCOUNT_QUEUE_URL")?,
            fanout_inline_max: count("FANOUT_INLINE_MAX", DEFAULT_FANOUT_INLINE_MAX, 0..=100_000)?,
            max_group_members: count("MAX_GROUP_MEMBERS", crate::model::DEFAULT_MAX_GROUP_MEMBERS, 2..=100_000)?,
            attachments_bucket: required("ATTACHMENTS_BUCKET")?,
            uploads: upload_rules(&lookup, seconds)?,
        })
    }
}

/// `MAX_UPLOAD_BYTES`, `ALLOWED_UPLOAD_TYPES` (comma-separated MIME types) and `READ_URL_SECONDS`, each
/// defaulting to [`UploadRules::default`].
fn upload_rules(
    lookup: &impl Fn(&str) -> Option<String>,
    seconds: impl Fn(&'static str, u64) -> AppResult<Duration>,
) -> AppResult<UploadRules> {
    let defaults = UploadRules::default();
    let max_bytes = match lookup("MAX_UPLOAD_BYTES") {
        None => defaults.max_bytes,
        // S3 takes at most 5 GB in one POST.
        Some(v) => v.trim().parse::<u64>().ok().filter(|n| (1..=5_000_000_000).contains(n)).ok_or_else(|| {
            AppError::internal(format!("MAX_UPLOAD_BYTES must be a number from 1 to 5000000000, got {v:?}"))
        })?,
    };
    let allowed_types = match lookup("ALLOWED_UPLOAD_TYPES") {
        None => defaults.allowed_types,
        Some(v) => {
            let types: Vec<String> =
                v.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect();
            if types.is_empty() || types.iter().any(|t| !t.contains('/') || t.contains(';')) {
                return Err(AppError::internal(format!("ALLOWED_UPLOAD_TYPES must list MIME types, got {v:?}")));
            }
            types
        }
    };
    let read_url_valid_for = seconds("READ_URL_SECONDS", defaults.read_url_valid_for.as_secs())?;
    Ok(UploadRules { max_bytes, allowed_types, read_url_valid_for, ..defaults })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 6] = [
        ("ATTACHMENTS_BUCKET", "chat-attachments"),
        ("TABLE_NAME", "chat"),
        ("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:jwt"),
        ("MANAGEMENT_ENDPOINT", "https://abc.execute-api.us-east-1.amazonaws.com/prod/"),
        ("FANOUT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/chat-fanout"),
        ("ACCOUNT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/chat-accounts"),
    ];

    #[test]
    fn reads_required_values_and_defaults() {
        let cfg = Config::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(cfg.table_name, "chat");
        assert_eq!(cfg.management_endpoint, "https://abc.execute-api.us-east-1.amazonaws.com/prod");
        assert_eq!(cfg.connection_ttl, Duration::from_secs(7800));
        assert_eq!(cfg.token_ttl, Duration::from_secs(900));
        assert_eq!(cfg.fanout_inline_max, DEFAULT_FANOUT_INLINE_MAX);
        assert_eq!(cfg.max_group_members, 10_000);
        assert_eq!(cfg.uploads.max_bytes, 25 * 1024 * 1024);
        assert!(cfg.uploads.allowed_types.iter().any(|t| t == "application/pdf"));
    }

    #[test]
    fn upload_rules_come_from_the_template_parameters() {
        let mut pairs = BASE.to_vec();
        pairs.extend([("MAX_UPLOAD_BYTES", "1000"), ("ALLOWED_UPLOAD_TYPES", "image/png, Text/Plain")]);
        let cfg = Config::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(cfg.uploads.max_bytes, 1000);
        assert_eq!(cfg.uploads.allowed_types, ["image/png", "text/plain"]);
        for (name, bad) in [("MAX_UPLOAD_BYTES", "0"), ("ALLOWED_UPLOAD_TYPES", " , "), ("ALLOWED_UPLOAD_TYPES", "pdf")]
        {
            let mut pairs = BASE.to_vec();
            pairs.push((name, bad));
            assert!(Config::from_lookup(lookup(&pairs)).is_err(), "{name}={bad}");
        }
    }

    #[test]
    fn missing_or_blank_values_fail_fast() {
        for skip in ["TABLE_NAME", "MANAGEMENT_ENDPOINT", "FANOUT_QUEUE_URL", "ACCOUNT_QUEUE_URL", "ATTACHMENTS_BUCKET"]
        {
            let pairs: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != skip).collect();
            let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(format!("{:?}", err).contains(skip), "{err:?}");
        }
        let mut blank = BASE.to_vec();
        blank[1] = ("TABLE_NAME", "  ");
        assert!(Config::from_lookup(lookup(&blank)).is_err());
    }

    #[test]
    fn rejects_bad_numbers_and_endpoints() {
        let mut pairs = BASE.to_vec();
        pairs.push(("CONNECTION_TTL_SECONDS", "soon"));
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
        let mut pairs = BASE.to_vec();
        pairs.push(("TOKEN_TTL_SECONDS", "0"));
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
        let mut pairs = BASE.to_vec();
        pairs[3] = ("MANAGEMENT_ENDPOINT", "abc.execute-api");
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
        for (name, bad) in [("FANOUT_INLINE_MAX", "-1"), ("MAX_GROUP_MEMBERS", "1"), ("POSTS_IN_FLIGHT", "0")] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, bad));
            assert!(Config::from_lookup(lookup(&pairs)).is_err(), "{name}={bad}");
        }
    }
}
