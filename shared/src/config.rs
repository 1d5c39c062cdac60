//! Typed configuration, read once when a function starts so a bad deployment fails at init, not mid-request.

use std::time::Duration;

use crate::error::{AppError, AppResult};

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
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// PostToConnection calls one delivery keeps in flight (measured: docs/performance.md).
    pub posts_in_flight: usize,
}

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
        let management_endpoint = required("MANAGEMENT_ENDPOINT")?.trim_end_matches('/').to_owned();
        if !management_endpoint.starts_with("http://") && !management_endpoint.starts_with("https://") {
            return Err(AppError::internal("MANAGEMENT_ENDPOINT must be an http(s) URL"));
        }
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            jwt_secret_arn: lookup("JWT_SECRET_ARN").filter(|v| !v.trim().is_empty()),
            management_endpoint,
            connection_ttl: seconds("CONNECTION_TTL_SECONDS", 7800)?,
            token_ttl: seconds("TOKEN_TTL_SECONDS", 24 * 3600)?,
            posts_in_flight: match lookup("POSTS_IN_FLIGHT") {
                None => crate::ports::DEFAULT_POSTS_IN_FLIGHT,
                Some(v) => v.trim().parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                    AppError::internal(format!("POSTS_IN_FLIGHT must be a number from 1 to 1000, got {v:?}"))
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("TABLE_NAME", "chat"),
        ("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:jwt"),
        ("MANAGEMENT_ENDPOINT", "https://abc.execute-api.us-east-1.amazonaws.com/prod/"),
    ];

    #[test]
    fn reads_required_values_and_defaults() {
        let cfg = Config::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(cfg.table_name, "chat");
        assert_eq!(cfg.management_endpoint, "https://abc.execute-api.us-east-1.amazonaws.com/prod");
        assert_eq!(cfg.connection_ttl, Duration::from_secs(7800));
        assert_eq!(cfg.token_ttl, Duration::from_secs(86400));
    }

    #[test]
    fn missing_or_blank_values_fail_fast() {
        for skip in ["TABLE_NAME", "MANAGEMENT_ENDPOINT"] {
            let pairs: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != skip).collect();
            let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(format!("{:?}", err).contains(skip), "{err:?}");
        }
        let mut blank = BASE.to_vec();
        blank[0] = ("TABLE_NAME", "  ");
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
        pairs[2] = ("MANAGEMENT_ENDPOINT", "abc.execute-api");
        assert!(Config::from_lookup(lookup(&pairs)).is_err());
    }
}
