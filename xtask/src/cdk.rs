//! The CDK path (`infra/cdk`): its assertion tests on the synthesized stack, and `cdk deploy` of its example app
//! to the emulator. The app includes `infra/template.yaml` as is and takes each function's code from
//! `target/lambda`, so it deploys the same stack as the SAM path from the same binaries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clients::{ensure_node_modules, npm};
use crate::cmd::run_bounded;
use crate::deploy::{self, AwsTarget, Endpoints, substep};
use crate::paths::Paths;
use crate::{Res, check_interrupted, toolchain};

/// The bucket the app's function code is uploaded to (`CliCredentialsStackSynthesizer`: no `cdk bootstrap`).
const ASSETS_BUCKET: &str = "chat-cdk-assets";
/// Bound on `npm test` (tsc, one synth per test).
const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on `cdk deploy` (asset upload, change set, the SAM transform, every resource).
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);

fn cdk_dir(paths: &Paths) -> PathBuf {
    paths.root.join("infra").join("cdk")
}

/// The app's and its tests' type check: part of the fast gate (no build needed).
pub fn typecheck(paths: &Paths) -> Res<()> {
    let dir = cdk_dir(paths);
    ensure_node_modules(paths, &dir)?;
    run_bounded(npm(&dir).args(["run", "typecheck"]), TEST_TIMEOUT)
}

/// `npm ci` when needed, then `npm test`: compiles the app and runs the assertion tests against the functions in
/// `target/lambda`.
pub fn assertion_tests(paths: &Paths) -> Res<()> {
    let dir = cdk_dir(paths);
    ensure_node_modules(paths, &dir)?;
    run_bounded(npm(&dir).args(["test"]).env("CHAT_FUNCTIONS_DIR", toolchain::lambda_dir(paths)?), TEST_TIMEOUT)
}

/// Deploy the example app (`infra/cdk/bin/chat.ts`) as `stack` to the emulator, with the template parameters
/// `overrides` (`Name=value`); its endpoints go to `out_dir/endpoints.json`.
pub fn deploy(paths: &Paths, target: &AwsTarget, stack: &str, out_dir: &Path, overrides: &[&str]) -> Res<Endpoints> {
    let dir = cdk_dir(paths);
    substep("npm ci + compile (infra/cdk)", || {
        ensure_node_modules(paths, &dir)?;
        run_bounded(npm(&dir).args(["run", "build"]), TEST_TIMEOUT)
    })?;
    let lambda_dir = toolchain::lambda_dir(paths)?;
    substep("read the functions' architecture", || deploy::runnable_build(paths))?;
    substep(&format!("create bucket s3://{ASSETS_BUCKET}"), || deploy::ensure_bucket(target, ASSETS_BUCKET))?;
    check_interrupted()?;
    substep("cdk deploy", || {
        let mut command = npm(&dir);
        command.args(["exec", "--", "cdk", "deploy", "--require-approval", "never", "--ci", "--no-notices"]);
        command.arg("--output").arg(out_dir.join("cdk.out"));
        for (name, value) in
            [("stackName", stack), ("assetsBucket", ASSETS_BUCKET), ("functionsDir", &lambda_dir.to_string_lossy())]
        {
            command.args(["--context", &format!("{name}={value}")]);
        }
        let management = format!("ManagementEndpointBase={}", target.management_endpoint_base());
        for parameter in std::iter::once(management.as_str()).chain(overrides.iter().copied()) {
            command.args(["--parameters", parameter]);
        }
        target.apply_env(&mut command);
        // The CLI asks the npm registry for a newer version and reports usage unless told not to.
        command.env("CDK_DISABLE_VERSION_CHECK", "1").env("CDK_DISABLE_CLI_TELEMETRY", "true");
        run_bounded(&mut command, DEPLOY_TIMEOUT)
    })?;
    deploy::read_endpoints(target, stack, out_dir)
}
