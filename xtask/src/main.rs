//! `cargo xtask`: the one entry point for running the chat backend locally.
//!
//! The backend is deployed with a single SAM template to AWS. Locally the same
//! template is deployed to MiniStack, a Python AWS emulator that runs our Rust
//! `bootstrap` binaries as local processes. Getting there takes a handful of
//! tools (a Python venv with MiniStack + awscli, cargo-lambda + zig for the
//! cross build) and a fixed sequence of steps (build, start the emulator, wait
//! for it, package, deploy, read the stack outputs), and the emulator must be
//! stopped again whatever happens. Doing that in Rust instead of shell keeps
//! it portable, bounded (every wait has a deadline) and guarded (a `Drop`
//! guard stops the emulator's whole process group on error, panic or Ctrl-C).
//!
//! Subcommands:
//! - `check`: the fast gate before every commit (format, lints, unit and handler tests, the clients' type checks
//!   and unit tests); no emulator, no Python venv. `test` runs it first.
//! - `dev [--port N] [--stack NAME]`: build, start a persistent emulator,
//!   deploy, print the endpoints and follow the emulator log until Ctrl-C.
//! - `deploy --endpoint http://127.0.0.1:PORT [--stack NAME]`: build and
//!   deploy to an emulator that is already running (e.g. the Docker one).
//! - `test`: the gate, template lint, build (+ `sam build`), fresh emulator on a free port, deploy, end-to-end
//!   tests, the REST API fuzzed against its spec, a restart drill, stop; non-zero exit if any step failed.
//! - `emulator [--port N]`: only a fresh emulator, in the foreground, for
//!   `deploy --endpoint` or for poking at MiniStack by hand.
//! - `sam-build [--arch x86_64|arm64]`: `sam build` for an AWS deployment
//!   (docs/deploy.md).
//! - `bench [--quick] [--sweep-posts N,N,...]`: a fresh emulator, deploy,
//!   the benchmark client; figures into docs/performance.md.

mod bench;
mod checks;
mod clients;
mod cmd;
mod deploy;
mod drill;
mod emulator;
mod paths;
mod steps;
mod toolchain;
mod web;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deploy::{AwsTarget, Endpoints};
use emulator::{Emulator, EmulatorConfig};
use paths::Paths;
use steps::Steps;

/// Stack name used when `--stack` is not given.
const DEFAULT_STACK: &str = "chat-local";
/// The port LocalStack-compatible tooling expects; `dev` prefers it.
const DEFAULT_PORT: u16 = 4566;
/// Worker threads for the end-to-end suite. Its tests are independent (each
/// creates its own users and rooms), so they may run concurrently.
const E2E_TEST_THREADS: u32 = 4;
/// The test stack runs the queued fan-out path for rooms of more than 100 connections (the large-room tests use
/// 200 members) and gives up on a failing job after two 15-second offers, so the dead-letter test is quick.
const TEST_STACK_PARAMETERS: [&str; 3] =
    ["FanoutInlineMax=100", "FanoutVisibilityTimeout=15", "FanoutMaxReceiveCount=2"];
/// How long the emulator may take to answer its health check.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Emulator log lines shown when something fails.
const LOG_TAIL_LINES: usize = 80;

type Res<T> = Result<T, String>;

/// Set by the Ctrl-C / SIGTERM handler; long loops poll it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn check_interrupted() -> Res<()> {
    if interrupted() { Err("interrupted".to_string()) } else { Ok(()) }
}

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  check   The fast gate to run before every commit: cargo fmt --check,
          cargo clippy ([workspace.lints] in Cargo.toml), unit and handler
          tests, the TypeScript SDK's type check and unit tests, the web
          app's type check. No emulator, no Python venv.
  dev     [--port N] [--stack NAME]
          Build the functions, start MiniStack (persistent state in
          .local/state/dev, port 4566 unless taken), deploy, print the
          endpoints (also written to .local/endpoints.json), build and serve
          the web app (clients/web) on loopback and print its URL, and follow
          the emulator log until Ctrl-C.
  deploy  --endpoint http://127.0.0.1:PORT [--stack NAME] [--no-build]
          Build and deploy to an emulator that is already running
          (e.g. `docker compose -f localstack/docker-compose.yml up`);
          --no-build deploys what is already in target/lambda.
  test    The gate (as `check`), template lint (cfn-lint, sam validate
          --lint), build (+ sam build), a fresh emulator on a free port,
          deploy, end-to-end, client and browser tests; the emulator is
          always stopped afterwards.
  emulator [--port N]
          Only start a fresh MiniStack (no persistence; port 4566 unless
          taken) and follow its log until Ctrl-C. Deploy to it with
          `cargo xtask deploy --endpoint http://127.0.0.1:PORT`.
  bench   [--quick] [--sweep-posts N,N,...] [--rounds N]
          A fresh emulator, deploy, then the benchmark client (real
          WebSocket clients): fan-out against the emulator's own ceiling,
          connect storm, latency, requests per message, cold start, memory.
          Prints a table and updates docs/performance.md. Not part of test.
  sam-build [--arch x86_64|arm64]
          `sam build` of infra/template.yaml into .aws-sam/build for a
          real AWS deploy (docs/deploy.md); default arch x86_64. arm64
          needs the aarch64-unknown-linux-gnu Rust target installed.

The default stack name is chat-local.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(command, rest) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    if let Err(err) = ctrlc::set_handler(|| {
        if !INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nxtask: interrupted, cleaning up (this may take a few seconds)...");
        }
    }) {
        eprintln!("warning: cannot install the Ctrl-C handler: {err}");
    }

    let paths = Paths::discover();
    let result = match command.as_str() {
        "check" => check(&paths),
        "dev" => dev(&paths, &options),
        "deploy" => deploy_cmd(&paths, &options),
        "test" => test(&paths),
        "emulator" => emulator_only(&paths, &options),
        "sam-build" => sam_build(&paths, &options),
        "bench" => bench::bench(&paths, &options.bench_args),
        _ => unreachable!("rejected by Options::parse"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line options; which ones are allowed depends on the command.
#[derive(Default)]
struct Options {
    port: Option<u16>,
    endpoint: Option<String>,
    stack: Option<String>,
    no_build: bool,
    arch: Option<checks::Arch>,
    /// `bench` options, passed on to the benchmark client.
    bench_args: Vec<String>,
}

impl Options {
    fn parse(command: &str, args: &[String]) -> Res<Self> {
        let allowed: &[&str] = match command {
            "dev" => &["--port", "--stack"],
            "deploy" => &["--endpoint", "--stack", "--no-build"],
            "check" | "test" => &[],
            "emulator" => &["--port"],
            "sam-build" => &["--arch"],
            "bench" => &["--quick", "--sweep-posts", "--rounds"],
            other => return Err(format!("unknown command `{other}`")),
        };
        let mut options = Options::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if !allowed.contains(&flag) {
                return Err(format!("`{command}` does not take `{arg}`"));
            }
            if command == "bench" {
                options.bench_args.push(flag.to_string());
                if flag != "--quick" {
                    let value = match inline {
                        Some(value) => value,
                        None => iter.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"))?,
                    };
                    options.bench_args.push(value);
                }
                continue;
            }
            if flag == "--no-build" {
                if inline.is_some() {
                    return Err(format!("`{flag}` takes no value"));
                }
                options.no_build = true;
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => iter.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"))?,
            };
            match flag {
                "--port" => {
                    let port = value
                        .parse::<u16>()
                        .ok()
                        .filter(|port| *port != 0)
                        .ok_or_else(|| format!("`--port {value}` is not a port number"))?;
                    options.port = Some(port);
                }
                "--endpoint" => options.endpoint = Some(value),
                "--arch" => options.arch = Some(checks::Arch::parse(&value)?),
                "--stack" => {
                    // CloudFormation's rule; also keeps `.local/stack-<name>` sane.
                    let valid = value.starts_with(|c: char| c.is_ascii_alphabetic())
                        && value.len() <= 128
                        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                    if !valid {
                        return Err(format!("`--stack {value}`: use letters, digits and '-', starting with a letter"));
                    }
                    options.stack = Some(value);
                }
                _ => unreachable!(),
            }
        }
        if command == "deploy" && options.endpoint.is_none() {
            return Err("`deploy` needs `--endpoint http://127.0.0.1:PORT`".to_string());
        }
        Ok(options)
    }

    fn stack(&self) -> &str {
        self.stack.as_deref().unwrap_or(DEFAULT_STACK)
    }
}

/// `cargo xtask dev`: everything needed for a local stack, then stay in the
/// foreground until Ctrl-C.
fn dev(paths: &Paths, options: &Options) -> Res<()> {
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    steps.run("Build functions (cargo lambda build)", || toolchain::build_functions(paths))?;

    let port = choose_port(options.port)?;
    let config = EmulatorConfig {
        port,
        log: paths.local.join(format!("ministack-{port}.log")),
        state_dir: paths.local.join("state").join("dev"),
        persist: true,
    };
    let mut emulator = steps.run(&format!("Start MiniStack on 127.0.0.1:{port}"), || Emulator::start(paths, config))?;

    let target = AwsTarget::new(paths, port);
    let out_dir = paths.local.join(format!("stack-{}", options.stack()));
    let deployed = steps.run(&format!("Deploy stack {}", options.stack()), || {
        deploy::deploy(paths, &target, options.stack(), &out_dir, &[])
    });
    let endpoints = match deployed {
        Ok(endpoints) => endpoints,
        Err(err) => {
            emulator.print_log_tail(LOG_TAIL_LINES);
            return Err(err);
        }
    };
    let endpoints_file = publish_endpoints(paths, &endpoints)?;
    // The reference web app, served on loopback until Ctrl-C (optional: without Node the backend still runs).
    let web =
        steps.run("Build web app (clients/web)", || web::build(paths)).and_then(|()| web::serve(paths, &endpoints));
    steps.summary();

    println!();
    print_endpoints(paths, &endpoints, &endpoints_file);
    match &web {
        Ok(server) => println!("  web app:       {}", server.url()),
        Err(err) => println!("  web app:       not available ({err})"),
    }
    println!(
        "  emulator log: {}\n  state:        {} (persists across restarts)\n",
        paths.display(emulator.log_path()),
        paths.display(&paths.local.join("state").join("dev")),
    );
    println!("Following the emulator log. Press Ctrl-C to stop.\n");
    let followed = emulator.follow_log_until_interrupted();
    drop(emulator); // stops the process group, with progress output
    followed
}

/// `--port` if given (it must be free), else 4566 if free, else any free port.
fn choose_port(requested: Option<u16>) -> Res<u16> {
    match requested {
        Some(port) if emulator::port_is_free(port) => Ok(port),
        Some(port) => Err(format!("port {port} is already in use on 127.0.0.1")),
        None if emulator::port_is_free(DEFAULT_PORT) => Ok(DEFAULT_PORT),
        None => {
            let port = emulator::free_port()?;
            println!("port {DEFAULT_PORT} is in use; using {port} instead");
            Ok(port)
        }
    }
}

/// `cargo xtask emulator`: a fresh MiniStack in the foreground, nothing else.
fn emulator_only(paths: &Paths, options: &Options) -> Res<()> {
    let port = choose_port(options.port)?;
    let state_dir = paths.local.join(format!("emulator-{port}"));
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    let config = EmulatorConfig {
        port,
        log: paths.local.join(format!("ministack-{port}.log")),
        state_dir: state_dir.clone(),
        persist: false,
    };
    let mut emulator = steps.run(&format!("Start MiniStack on 127.0.0.1:{port}"), || Emulator::start(paths, config))?;
    println!("\nMiniStack is up at http://127.0.0.1:{port}");
    println!("Deploy with `cargo xtask deploy --endpoint http://127.0.0.1:{port}`.");
    println!("Following the emulator log. Press Ctrl-C to stop.\n");
    let followed = emulator.follow_log_until_interrupted();
    drop(emulator);
    let _ = fs::remove_dir_all(&state_dir);
    followed
}

/// `cargo xtask deploy`: build and deploy to an emulator someone else runs.
fn deploy_cmd(paths: &Paths, options: &Options) -> Res<()> {
    let endpoint = options.endpoint.as_deref().expect("checked by Options::parse");
    let port = deploy::parse_local_endpoint(endpoint)?;
    if !emulator::is_healthy(port) {
        return Err(format!(
            "no emulator answers at {endpoint}/_localstack/health; start one first, e.g. \
             `docker compose -f localstack/docker-compose.yml up -d --build` or `cargo xtask dev`"
        ));
    }
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    if !options.no_build {
        steps.run("Build functions (cargo lambda build)", || toolchain::build_functions(paths))?;
    }
    let target = AwsTarget::new(paths, port);
    let out_dir = paths.local.join(format!("stack-{}", options.stack()));
    let endpoints = steps.run(&format!("Deploy stack {}", options.stack()), || {
        deploy::deploy(paths, &target, options.stack(), &out_dir, &[])
    })?;
    let endpoints_file = publish_endpoints(paths, &endpoints)?;
    steps.summary();
    println!();
    print_endpoints(paths, &endpoints, &endpoints_file);
    Ok(())
}

/// One step of the fast gate: its banner and how it runs.
struct GateStep {
    name: &'static str,
    run: fn(&Paths) -> Res<()>,
}

/// The fast gate, in order: what `cargo xtask check` runs and `cargo xtask test` starts with. Every step runs
/// even when an earlier one failed, so one run reports them all; none needs the emulator or the Python venv.
const GATE: [GateStep; 5] = [
    GateStep { name: "Format (cargo fmt --check)", run: checks::format },
    GateStep { name: "Lint (cargo clippy, [workspace.lints])", run: checks::clippy },
    GateStep { name: "Unit + handler tests (cargo test)", run: checks::unit_tests },
    GateStep { name: "TypeScript SDK: typecheck + unit tests (npm)", run: clients::sdk_unit_tests },
    GateStep { name: "Web app: typecheck (npm run typecheck)", run: web::typecheck },
];

/// Runs every step of the [`GATE`]; the first failure, if any.
fn run_gate(paths: &Paths, steps: &mut Steps) -> Res<()> {
    let mut outcome = Ok(());
    for step in &GATE {
        let result = steps.run(step.name, || (step.run)(paths));
        if outcome.is_ok() {
            outcome = result.map_err(|err| format!("{}: {err}", step.name));
        }
        check_interrupted()?;
    }
    outcome
}

/// `cargo xtask check`: the fast gate alone.
fn check(paths: &Paths) -> Res<()> {
    let mut steps = Steps::new();
    let outcome = run_gate(paths, &mut steps);
    steps.summary();
    outcome
}

/// `cargo xtask test`: the CI entry point (`.ci/run`).
fn test(paths: &Paths) -> Res<()> {
    let mut steps = Steps::new();
    let outcome = run_test_steps(paths, &mut steps);
    steps.summary();
    outcome
}

fn run_test_steps(paths: &Paths, steps: &mut Steps) -> Res<()> {
    let cargo = toolchain::cargo();
    prune_old_test_runs(paths);
    // A failing gate is recorded but the end-to-end suite still runs, so one CI run reports both.
    let unit = run_gate(paths, steps);
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    let lint = steps.run("Lint template", || checks::lint_template(paths));
    steps.run("Build functions (cargo lambda build)", || toolchain::build_functions(paths))?;
    let sam_build =
        steps.run("sam build (x86_64, reuses target/)", || checks::sam_build(paths, checks::Arch::X86_64).map(drop));

    let port = emulator::free_port()?;
    let out_dir = paths.local.join(format!("test-{port}"));
    let state_dir = out_dir.join("state");
    let config = EmulatorConfig {
        port,
        log: paths.local.join(format!("ministack-test-{port}.log")),
        state_dir: state_dir.clone(),
        // Fresh (the state directory is new), but saved on stop: the restart drill reloads it.
        persist: true,
    };
    let restarted_config = EmulatorConfig { log: out_dir.join("ministack-restarted.log"), ..config.clone() };
    let mut emulator =
        steps.run(&format!("Start fresh MiniStack on 127.0.0.1:{port}"), || Emulator::start(paths, config))?;

    let target = AwsTarget::new(paths, port);
    let deployed = steps.run(&format!("Deploy stack {DEFAULT_STACK}"), || {
        deploy::deploy(paths, &target, DEFAULT_STACK, &out_dir, &TEST_STACK_PARAMETERS)
    });
    let deployed_ok = deployed.as_ref().map(drop).map_err(Clone::clone);
    let e2e = deployed.and_then(|endpoints| {
        let endpoints_file = out_dir.join("endpoints.json");
        print_endpoints(paths, &endpoints, &endpoints_file);
        steps.run("End-to-end tests (cargo test -p chat-e2e)", || {
            let mut command = std::process::Command::new(&cargo);
            command
                .current_dir(&paths.root)
                .args(["test", "-p", "chat-e2e", "--no-fail-fast", "--"])
                .arg(format!("--test-threads={E2E_TEST_THREADS}"))
                .env("CHAT_ENDPOINTS_FILE", &endpoints_file);
            // The suite may talk to DynamoDB directly: give it the same
            // sandboxed AWS environment as the CLI, never a real profile.
            target.apply_env(&mut command);
            cmd::run(&mut command)
        })
    });
    // The clients against the same stack, whatever the backend suite said: one run reports both.
    let endpoints_file = out_dir.join("endpoints.json");
    let clients = deployed_ok.and_then(|()| {
        let sdk = steps.run("TypeScript SDK against the stack (npm run test:integration)", || {
            clients::sdk_integration_tests(paths, &target, &endpoints_file)
        });
        let cli = steps.run("chat-cli against the stack (cargo test -p chat-cli)", || {
            clients::cli_tests(paths, &target, &endpoints_file)
        });
        let web = steps.run("Web app in Chromium (clients/web, npm run test:browser)", || {
            web::browser_tests(paths, &endpoints_file)
        });
        sdk.and(cli).and(web)
    });
    // The REST API fuzzed against its spec, on the same stack (schemathesis, bounded and seeded).
    let fuzz = e2e.as_ref().map_err(Clone::clone).and_then(|()| {
        steps.run("REST API against docs/openapi.yaml (schemathesis)", || {
            let endpoints: serde_json::Value = serde_json::from_str(
                &fs::read_to_string(out_dir.join("endpoints.json")).map_err(|e| format!("endpoints: {e}"))?,
            )
            .map_err(|e| format!("endpoints: {e}"))?;
            let http = endpoints["http"].as_str().ok_or("endpoints.json has no http")?;
            let mut command = std::process::Command::new(paths.tool_bin("python"));
            command.current_dir(&paths.root).arg(paths.localstack.join("fuzz_api.py")).arg(http);
            target.apply_env(&mut command);
            cmd::run(&mut command)
        })
    });
    // Last, because it restarts the emulator under everything deployed.
    let drill = fuzz.as_ref().map_err(Clone::clone).and_then(|()| {
        steps.run("Fault drill: emulator restart mid-conversation (restart-drill)", || {
            drill::restart_drill(paths, &mut emulator, &restarted_config, &target, &out_dir.join("endpoints.json"))
        })
    });
    if e2e.is_err() || fuzz.is_err() || drill.is_err() {
        emulator.print_log_tail(LOG_TAIL_LINES);
    }
    let e2e = e2e.and(fuzz).and(drill).and(clients);

    steps.run("Stop MiniStack", || {
        emulator.stop();
        Ok(())
    })?;
    // Fresh state each run: nothing in it is worth keeping.
    let _ = fs::remove_dir_all(&state_dir);

    let rest = match (unit, e2e) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(err), Ok(())) => Err(format!("the gate failed: {err}")),
        (Ok(()), Err(err)) => Err(format!("end-to-end stage failed: {err}")),
        (Err(unit), Err(e2e)) => Err(format!("the gate failed ({unit}) and end-to-end stage failed ({e2e})")),
    };
    checks::with_checks([("template lint", lint), ("sam build", sam_build)], rest)
}

/// `cargo xtask sam-build`: what `sam build` produces for an AWS deploy.
fn sam_build(paths: &Paths, options: &Options) -> Res<()> {
    let arch = options.arch.unwrap_or(checks::Arch::X86_64);
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    let built = steps.run(&format!("sam build ({})", arch.as_str()), || checks::sam_build(paths, arch))?;
    steps.summary();
    println!(
        "\nBuilt {}. Deploy it with `sam deploy --guided` and Architecture={} (docs/deploy.md).",
        paths.display(&built),
        arch.as_str()
    );
    Ok(())
}

/// Remove what earlier `test` runs left in `.local/` (`test-<port>/`,
/// `ministack-test-<port>.log`), so the last run stays inspectable until the
/// next one. A run whose port is still taken may be in progress: kept.
fn prune_old_test_runs(paths: &Paths) {
    let Ok(entries) = fs::read_dir(&paths.local) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let port = name
            .strip_prefix("test-")
            .or_else(|| name.strip_prefix("ministack-test-").and_then(|rest| rest.strip_suffix(".log")))
            .and_then(|port| port.parse::<u16>().ok());
        if port.is_some_and(emulator::port_is_free) {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}

/// Write `.local/endpoints.json`, the file local clients read by default.
fn publish_endpoints(paths: &Paths, endpoints: &Endpoints) -> Res<PathBuf> {
    let file = paths.local.join("endpoints.json");
    write_json(&file, &endpoints.to_json())?;
    Ok(file)
}

fn print_endpoints(paths: &Paths, endpoints: &Endpoints, file: &Path) {
    println!("Stack {} is deployed:", endpoints.stack_name);
    println!("  WebSocket API: {}", endpoints.websocket);
    println!("  HTTP API:      {}", endpoints.http);
    println!(
        "  AWS endpoint:  {} (region {}, table {})",
        endpoints.aws_endpoint, endpoints.region, endpoints.table_name
    );
    println!("  endpoints:     {}", paths.display(file));
}

fn write_json(path: &Path, value: &serde_json::Value) -> Res<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    fs::write(path, text + "\n").map_err(|err| format!("cannot write {}: {err}", path.display()))
}
