//! `cargo xtask operator grant|revoke <username>`: flags a user as an operator (moderation routes) on a stack
//! deployed to a local emulator. The flag is set in the table, never through the API, so no user can make
//! themselves one; on AWS the same two `aws dynamodb` calls do it (docs/deploy.md, "Operators").

use serde_json::{Value, json};

use crate::deploy::{self, AwsTarget};
use crate::paths::Paths;
use crate::{Res, cmd, toolchain};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Change {
    Grant,
    Revoke,
}

pub fn operator(paths: &Paths, change: Change, username: &str, endpoint: &str, stack: &str) -> Res<()> {
    toolchain::ensure_venv(paths)?;
    let target = AwsTarget::new(paths, deploy::parse_local_endpoint(endpoint)?);
    let table = deploy::read_endpoints(&target, stack, &paths.local.join(format!("stack-{stack}")))?.table_name;
    // The username claim names the user (usernames are unique regardless of case).
    let claim_key = json!({"pk": {"S": format!("UNAME#{}", username.to_lowercase())}, "sk": {"S": "UNAME"}});
    let claim = cmd::output(&mut target.aws([
        "dynamodb",
        "get-item",
        "--table-name",
        &table,
        "--consistent-read",
        "--key",
        &claim_key.to_string(),
        "--output",
        "json",
    ]))?;
    let claim: Value = serde_json::from_slice(&claim.stdout).unwrap_or(Value::Null);
    let user_id = claim["Item"]["userId"]["S"].as_str().ok_or_else(|| format!("no user named {username}"))?;
    let profile_key = json!({"pk": {"S": format!("USER#{user_id}")}, "sk": {"S": "PROFILE"}});
    let value = json!({":operator": {"BOOL": change == Change::Grant}});
    cmd::output(&mut target.aws([
        "dynamodb",
        "update-item",
        "--table-name",
        &table,
        "--key",
        &profile_key.to_string(),
        "--update-expression",
        // `operator` is a reserved word in DynamoDB expressions.
        "SET #operator = :operator",
        "--condition-expression",
        "attribute_exists(pk)",
        "--expression-attribute-names",
        r##"{"#operator":"operator"}"##,
        "--expression-attribute-values",
        &value.to_string(),
    ]))?;
    let verb = if change == Change::Grant { "is now" } else { "is no longer" };
    println!("{username} ({user_id}) {verb} an operator of {stack}; their next request sees it.");
    Ok(())
}
