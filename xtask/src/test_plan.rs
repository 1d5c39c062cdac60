//! `cargo xtask test` after the gate, as a declared list: each step names what it needs, what a failure means
//! for the rest, and how it runs. The runner reads the list top to bottom, skips a step whose needs are not
//! met (its cause already failed), and reports every failure at the end, so one CI run says everything that is
//! wrong instead of stopping at the first.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arch::Arch;
use crate::deploy::{self, AwsTarget};
use crate::emulator::{self, Emulator, EmulatorConfig};
use crate::paths::Paths;
use crate::steps::Steps;
use crate::{
    DEFAULT_STACK, E2E_TEST_THREADS, LOG_TAIL_LINES, Res, TEST_STACK_PARAMETERS, cdk, checks, clients, cmd, drill,
    print_endpoints, toolchain, web,
};

/// What must have happened before a step can run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// A running emulator.
    Emulator,
    /// The stack deployed on it.
    Stack,
    /// This earlier step passed (the named step's results are what this one builds on).
    Passed(&'static str),
}

/// What a failed step means for the rest of the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnFailure {
    /// Nothing after it can run (no tools, no binaries, no emulator).
    Stop,
    /// Recorded; the steps that do not need it still run.
    Continue,
}

struct Step {
    name: &'static str,
    needs: Needs,
    on_failure: OnFailure,
    run: fn(&mut TestRun) -> Res<()>,
}

/// What ships by default (the template's `Architecture`), so every test runs the binaries a deploy uploads: on
/// an x86_64 machine under qemu (see arch.rs).
const TESTED_ARCH: Arch = Arch::Arm64;

const END_TO_END: &str = "End-to-end tests (cargo test -p chat-e2e)";
const CDK_TESTS: &str = "CDK app: assertion tests on the synthesized stack (infra/cdk, npm test)";
const CDK_DEPLOY: &str = "Deploy the CDK app as a second stack (cdk deploy)";
/// The CDK stack is the SAM stack's resources, so a subset shows it deployed and wired: every kind of
/// integration (WebSocket routes, HTTP routes, the bucket's notification to the attachment processor).
const CDK_E2E_TESTS: [&str; 7] = [
    "walking_skeleton",
    "protocol",
    "rest_conversations",
    "rest_messages",
    "rest_actions",
    "rest_errors",
    "attachments",
];
/// The CDK app's stack on the emulator, beside `DEFAULT_STACK`.
const CDK_STACK: &str = "chat-cdk";
const FUZZ: &str = "REST API against docs/openapi.yaml (schemathesis)";

/// The plan, in order. The clients run against the stack whatever the backend suite said; the fuzzer only on a
/// stack the suite passed on; the restart drill last, because it restarts the emulator under everything.
const PLAN: [Step; 15] = [
    step("Prepare Python venv (.local/venv)", Needs::Nothing, OnFailure::Stop, |run| toolchain::ensure_venv(run.paths)),
    step("Lint template", Needs::Nothing, OnFailure::Continue, |run| checks::lint_template(run.paths)),
    step("Build functions for arm64 (cargo lambda build)", Needs::Nothing, OnFailure::Stop, |run| {
        toolchain::build_functions(run.paths, TESTED_ARCH)
    }),
    step("sam build (arm64, the template's default; reuses target/)", Needs::Nothing, OnFailure::Continue, |run| {
        checks::sam_build(run.paths, TESTED_ARCH).map(drop)
    }),
    step(CDK_TESTS, Needs::Nothing, OnFailure::Continue, |run| cdk::assertion_tests(run.paths)),
    step("Start a fresh MiniStack", Needs::Nothing, OnFailure::Stop, |run| run.start_emulator()),
    step("Deploy the stack", Needs::Emulator, OnFailure::Continue, |run| run.deploy()),
    step(END_TO_END, Needs::Stack, OnFailure::Continue, |run| run.end_to_end()),
    step("TypeScript SDK against the stack (npm run test:integration)", Needs::Stack, OnFailure::Continue, |run| {
        clients::sdk_integration_tests(run.paths, &run.target, &run.endpoints_file())
    }),
    step("chat-cli against the stack (cargo test -p chat-cli)", Needs::Stack, OnFailure::Continue, |run| {
        clients::cli_tests(run.paths, &run.target, &run.endpoints_file())
    }),
    step("Web app in Chromium (clients/web, npm run test:browser)", Needs::Stack, OnFailure::Continue, |run| {
        web::browser_tests(run.paths, &run.endpoints_file())
    }),
    step(CDK_DEPLOY, Needs::Passed(CDK_TESTS), OnFailure::Continue, |run| run.deploy_cdk()),
    step(
        "End-to-end tests against the CDK stack (skeleton, protocol, REST, attachments)",
        Needs::Passed(CDK_DEPLOY),
        OnFailure::Continue,
        |run| run.end_to_end_on(&run.cdk_out_dir().join("endpoints.json"), &CDK_E2E_TESTS),
    ),
    step(FUZZ, Needs::Passed(END_TO_END), OnFailure::Continue, |run| run.fuzz()),
    step(
        "Fault drill: emulator restart mid-conversation (restart-drill)",
        Needs::Passed(FUZZ),
        OnFailure::Continue,
        |run| run.restart_drill(),
    ),
];

const fn step(name: &'static str, needs: Needs, on_failure: OnFailure, run: fn(&mut TestRun) -> Res<()>) -> Step {
    Step { name, needs, on_failure, run }
}

/// What the steps share: where the run keeps its files, the emulator and the stack on it.
struct TestRun<'a> {
    paths: &'a Paths,
    port: u16,
    out_dir: PathBuf,
    target: AwsTarget,
    emulator: Option<Emulator>,
    deployed: bool,
}

impl TestRun<'_> {
    fn endpoints_file(&self) -> PathBuf {
        self.out_dir.join("endpoints.json")
    }

    fn emulator_config(&self) -> EmulatorConfig {
        EmulatorConfig {
            port: self.port,
            log: self.paths.local.join(format!("ministack-test-{}.log", self.port)),
            state_dir: self.out_dir.join("state"),
            // Fresh (the state directory is new), but saved on stop: the restart drill reloads it.
            persist: true,
        }
    }

    fn start_emulator(&mut self) -> Res<()> {
        println!("MiniStack on 127.0.0.1:{}", self.port);
        self.emulator = Some(Emulator::start(self.paths, self.emulator_config())?);
        Ok(())
    }

    fn deploy(&mut self) -> Res<()> {
        let endpoints = deploy::deploy(self.paths, &self.target, DEFAULT_STACK, &self.out_dir, &TEST_STACK_PARAMETERS)?;
        print_endpoints(self.paths, &endpoints, &self.endpoints_file());
        self.deployed = true;
        Ok(())
    }

    fn end_to_end(&mut self) -> Res<()> {
        self.end_to_end_on(&self.endpoints_file(), &[])
    }

    fn cdk_out_dir(&self) -> PathBuf {
        self.out_dir.join(CDK_STACK)
    }

    fn deploy_cdk(&mut self) -> Res<()> {
        let endpoints = cdk::deploy(self.paths, &self.target, CDK_STACK, &self.cdk_out_dir(), &TEST_STACK_PARAMETERS)?;
        print_endpoints(self.paths, &endpoints, &self.cdk_out_dir().join("endpoints.json"));
        Ok(())
    }

    /// The end-to-end suite (`tests`: only these test files; all when empty) against the stack in `endpoints`.
    fn end_to_end_on(&self, endpoints: &Path, tests: &[&str]) -> Res<()> {
        let mut command = Command::new(toolchain::cargo());
        command.current_dir(&self.paths.root).args(["test", "-p", "chat-e2e", "--no-fail-fast"]);
        for test in tests {
            command.args(["--test", test]);
        }
        command.arg("--").arg(format!("--test-threads={E2E_TEST_THREADS}")).env("CHAT_ENDPOINTS_FILE", endpoints);
        // The suite may talk to DynamoDB directly: the sandboxed AWS environment, never a real profile.
        self.target.apply_env(&mut command);
        cmd::run(&mut command)
    }

    /// The REST API fuzzed against its spec on the same stack (schemathesis, bounded and seeded).
    fn fuzz(&mut self) -> Res<()> {
        let text = fs::read_to_string(self.endpoints_file()).map_err(|e| format!("endpoints: {e}"))?;
        let endpoints: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("endpoints: {e}"))?;
        let http = endpoints["http"].as_str().ok_or("endpoints.json has no http")?;
        let mut command = Command::new(self.paths.tool_bin("python"));
        command.current_dir(&self.paths.root).arg(self.paths.localstack.join("fuzz_api.py")).arg(http);
        self.target.apply_env(&mut command);
        cmd::run(&mut command)
    }

    fn restart_drill(&mut self) -> Res<()> {
        let restarted = EmulatorConfig { log: self.out_dir.join("ministack-restarted.log"), ..self.emulator_config() };
        let endpoints_file = self.endpoints_file();
        let emulator = self.emulator.as_mut().ok_or("no emulator")?;
        drill::restart_drill(self.paths, emulator, &restarted, &self.target, &endpoints_file)
    }

    fn ready(&self, needs: Needs, passed: &[&str]) -> bool {
        match needs {
            Needs::Nothing => true,
            Needs::Emulator => self.emulator.is_some(),
            Needs::Stack => self.deployed,
            Needs::Passed(name) => passed.contains(&name),
        }
    }
}

/// Runs [`PLAN`], stops the emulator, and answers every failure at once.
pub fn run(paths: &Paths, steps: &mut Steps) -> Res<()> {
    let port = emulator::free_port()?;
    let out_dir = paths.local.join(format!("test-{port}"));
    let mut run =
        TestRun { paths, port, target: AwsTarget::new(paths, port), out_dir, emulator: None, deployed: false };
    let mut passed: Vec<&str> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut show_log = false;
    for step in &PLAN {
        if crate::interrupted() {
            failures.push("interrupted".to_owned());
            break;
        }
        if !run.ready(step.needs, &passed) {
            println!("\n--- skipped: {} (what it needs did not succeed)", step.name);
            continue;
        }
        match steps.run(step.name, || (step.run)(&mut run)) {
            Ok(()) => passed.push(step.name),
            Err(err) => {
                failures.push(format!("{}: {err}", step.name));
                // A step against the emulator: its log tells what the stack saw.
                show_log |= step.needs != Needs::Nothing;
                if step.on_failure == OnFailure::Stop {
                    break;
                }
            }
        }
    }
    if let Some(mut emulator) = run.emulator.take() {
        if show_log {
            emulator.print_log_tail(LOG_TAIL_LINES);
        }
        steps.run("Stop MiniStack", || {
            emulator.stop();
            Ok(())
        })?;
    }
    // Fresh state each run: nothing in it is worth keeping.
    let _ = fs::remove_dir_all(run.out_dir.join("state"));
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
}
