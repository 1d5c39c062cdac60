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
//! The commands are the [`Task`] enum below (its doc comments are `cargo xtask --help`); `test` is a declared
//! plan in [`test_plan`], after the fast gate that `check` runs alone.

mod apt;
mod arch;
mod bench;
mod cdk;
mod checks;
mod clients;
mod cmd;
mod deploy;
mod drill;
mod emulator;
mod operator;
mod paths;
mod steps;
mod test_plan;
mod toolchain;
mod web;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};

use arch::Arch;
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

/// `cargo xtask <command>`: see each command's help.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run, test and benchmark the chat backend on a local emulator."
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The fast gate to run before every commit (no emulator, no Python venv).
    ///
    /// cargo fmt --check, cargo clippy ([workspace.lints] in Cargo.toml), unit and handler tests, the TypeScript
    /// SDK's type check and unit tests, the web app's and the CDK app's type checks.
    Check,
    /// The whole stack locally: build, emulator, deploy, endpoints, web app; until Ctrl-C.
    ///
    /// Builds the functions, starts MiniStack (persistent state in .local/state/dev, port 4566 unless taken),
    /// deploys, prints the endpoints (also written to .local/endpoints.json), builds and serves the web app on
    /// loopback and prints its URL, and follows the emulator log until Ctrl-C.
    Dev {
        #[arg(long, value_parser = port_number)]
        port: Option<u16>,
        #[arg(long, default_value = DEFAULT_STACK, value_parser = stack_name)]
        stack: String,
        /// Lambda architecture; the machine's own runs natively (arm64 on x86_64 runs under qemu).
        #[arg(long, value_enum, default_value_t = Arch::HOST)]
        arch: Arch,
    },
    /// Build the functions for one architecture into target/lambda (cargo lambda build --release).
    ///
    /// Adds the Rust target with rustup when it is missing. The CDK app and `deploy --no-build` deploy what this
    /// leaves in target/lambda, with the architecture read from the binaries.
    Build {
        #[arg(long, value_enum, default_value_t = Arch::HOST)]
        arch: Arch,
    },
    /// Build and deploy to an emulator that is already running.
    ///
    /// E.g. one started with `docker compose -f localstack/docker-compose.yml up`.
    Deploy {
        /// http://127.0.0.1:PORT
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = DEFAULT_STACK, value_parser = stack_name)]
        stack: String,
        /// Deploy what is already in target/lambda (its architecture is read from the binaries).
        #[arg(long)]
        no_build: bool,
        /// Lambda architecture to build for.
        #[arg(long, value_enum, default_value_t = Arch::HOST, conflicts_with = "no_build")]
        arch: Arch,
        /// Deploy the CDK app (infra/cdk) instead of the SAM template: the same stack, through `cdk deploy`.
        #[arg(long)]
        cdk: bool,
    },
    /// Every test: the gate, then end-to-end, client and browser tests on a fresh stack (what CI runs).
    ///
    /// The gate (as `check`), template lint (cfn-lint, sam validate --lint), build (+ sam build), a fresh
    /// emulator on a free port, deploy, end-to-end, client and browser tests, the REST API fuzzed against its
    /// spec, a restart drill; the emulator is always stopped afterwards.
    Test,
    /// Only a fresh MiniStack in the foreground, until Ctrl-C.
    ///
    /// No persistence; port 4566 unless taken. Deploy to it with `cargo xtask deploy --endpoint
    /// http://127.0.0.1:PORT`.
    Emulator {
        #[arg(long, value_parser = port_number)]
        port: Option<u16>,
    },
    /// The benchmark on a fresh stack; figures into docs/performance.md (not part of `test`).
    ///
    /// Real WebSocket clients: fan-out against the emulator's own ceiling, connect storm, latency, requests per
    /// message, cold start, memory. Prints a table and updates docs/performance.md.
    Bench {
        /// Rooms of 10 and 100 connections, 5 rounds, a 100-client storm.
        #[arg(long)]
        quick: bool,
        /// Also time the largest room at each POSTS_IN_FLIGHT value.
        #[arg(long, value_name = "N,N,...")]
        sweep_posts: Option<String>,
        /// Messages per room.
        #[arg(long, value_name = "N")]
        rounds: Option<u32>,
        /// Lambda architecture of the functions measured (arm64 on x86_64 runs under qemu: not Graviton timings).
        #[arg(long, value_enum, default_value_t = Arch::HOST)]
        arch: Arch,
        /// Further `chat-bench` options after `--`, e.g. `-- --large 200 --storm 50` (`chat-bench --help`).
        #[arg(last = true, value_name = "CHAT_BENCH_ARGS")]
        more: Vec<String>,
    },
    /// Make a user an operator (moderation routes), or no longer one, on a stack on a local emulator.
    ///
    /// Writes the flag on the user's profile in the table: no API can set it. On AWS, see docs/deploy.md.
    Operator {
        #[arg(value_enum)]
        change: operator::Change,
        username: String,
        /// http://127.0.0.1:PORT
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = DEFAULT_STACK, value_parser = stack_name)]
        stack: String,
    },
    /// `sam build` of infra/template.yaml into .aws-sam/build for a real AWS deploy (docs/deploy.md).
    SamBuild {
        /// The template's default is arm64.
        #[arg(long, value_enum, default_value_t = Arch::Arm64)]
        arch: Arch,
    },
}

/// A TCP port other than 0.
fn port_number(value: &str) -> Res<u16> {
    value.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(|| format!("`{value}` is not a port number"))
}

/// CloudFormation's rule for stack names; also keeps `.local/stack-<name>` sane.
fn stack_name(value: &str) -> Res<String> {
    let valid = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid { Ok(value.to_owned()) } else { Err("use letters, digits and '-', starting with a letter".to_owned()) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = ctrlc::set_handler(|| {
        if !INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nxtask: interrupted, cleaning up (this may take a few seconds)...");
        }
    }) {
        eprintln!("warning: cannot install the Ctrl-C handler: {err}");
    }

    let paths = Paths::discover();
    let result = match cli.command {
        Task::Check => check(&paths),
        Task::Dev { port, stack, arch } => dev(&paths, port, &stack, arch),
        Task::Build { arch } => build(&paths, arch),
        Task::Deploy { endpoint, stack, no_build, arch, cdk } => {
            deploy_cmd(&paths, &endpoint, &stack, (!no_build).then_some(arch), cdk)
        }
        Task::Test => test(&paths),
        Task::Emulator { port } => emulator_only(&paths, port),
        Task::SamBuild { arch } => sam_build(&paths, arch),
        Task::Operator { change, username, endpoint, stack } => {
            operator::operator(&paths, change, &username, &endpoint, &stack)
        }
        Task::Bench { quick, sweep_posts, rounds, arch, more } => {
            let mut client_args = Vec::new();
            if quick {
                client_args.push("--quick".to_owned());
            }
            if let Some(values) = sweep_posts {
                client_args.extend(["--sweep-posts".to_owned(), values]);
            }
            if let Some(rounds) = rounds {
                client_args.extend(["--rounds".to_owned(), rounds.to_string()]);
            }
            client_args.extend(more);
            bench::bench(&paths, arch, &client_args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask dev`: everything needed for a local stack, then stay in the
/// foreground until Ctrl-C.
fn dev(paths: &Paths, port: Option<u16>, stack: &str, arch: Arch) -> Res<()> {
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    steps
        .run(&format!("Build functions for {arch} (cargo lambda build)"), || toolchain::build_functions(paths, arch))?;

    let port = choose_port(port)?;
    let config = EmulatorConfig {
        port,
        log: paths.local.join(format!("ministack-{port}.log")),
        state_dir: paths.local.join("state").join("dev"),
        persist: true,
    };
    let mut emulator = steps.run(&format!("Start MiniStack on 127.0.0.1:{port}"), || Emulator::start(paths, config))?;

    let target = AwsTarget::new(paths, port);
    let out_dir = paths.local.join(format!("stack-{}", stack));
    let deployed =
        steps.run(&format!("Deploy stack {}", stack), || deploy::deploy(paths, &target, stack, &out_dir, &[]));
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
fn emulator_only(paths: &Paths, port: Option<u16>) -> Res<()> {
    let port = choose_port(port)?;
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

/// `cargo xtask build`: the functions for `arch`, nothing else.
fn build(paths: &Paths, arch: Arch) -> Res<()> {
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    steps
        .run(&format!("Build functions for {arch} (cargo lambda build)"), || toolchain::build_functions(paths, arch))?;
    steps.summary();
    println!("\nBuilt into {}", paths.display(&toolchain::lambda_dir(paths)?));
    Ok(())
}

/// `cargo xtask deploy`: build (for `build`, unless `None`) and deploy to an emulator someone else runs.
fn deploy_cmd(paths: &Paths, endpoint: &str, stack: &str, build: Option<Arch>, cdk: bool) -> Res<()> {
    let port = deploy::parse_local_endpoint(endpoint)?;
    if !emulator::is_healthy(port) {
        return Err(format!(
            "no emulator answers at {endpoint}/_localstack/health; start one first, e.g. \
             `docker compose -f localstack/docker-compose.yml up -d --build` or `cargo xtask dev`"
        ));
    }
    let mut steps = Steps::new();
    steps.run("Prepare Python venv (.local/venv)", || toolchain::ensure_venv(paths))?;
    if let Some(arch) = build {
        steps.run(&format!("Build functions for {arch} (cargo lambda build)"), || {
            toolchain::build_functions(paths, arch)
        })?;
    }
    let target = AwsTarget::new(paths, port);
    let out_dir = paths.local.join(format!("stack-{}", stack));
    let endpoints = if cdk {
        steps
            .run(&format!("Deploy stack {stack} (cdk deploy)"), || cdk::deploy(paths, &target, stack, &out_dir, &[]))?
    } else {
        steps.run(&format!("Deploy stack {stack}"), || deploy::deploy(paths, &target, stack, &out_dir, &[]))?
    };
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
const GATE: [GateStep; 6] = [
    GateStep { name: "Format (cargo fmt --check)", run: checks::format },
    GateStep { name: "Lint (cargo clippy, [workspace.lints])", run: checks::clippy },
    GateStep { name: "Unit + handler tests (cargo test)", run: checks::unit_tests },
    GateStep { name: "TypeScript SDK: typecheck + unit tests (npm)", run: clients::sdk_unit_tests },
    GateStep { name: "Web app: typecheck (npm run typecheck)", run: web::typecheck },
    GateStep { name: "CDK app: typecheck (infra/cdk, npm run typecheck)", run: cdk::typecheck },
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
    prune_old_test_runs(paths);
    // A failing gate is recorded but the end-to-end plan still runs, so one CI run reports both.
    let gate = run_gate(paths, steps);
    let plan = test_plan::run(paths, steps);
    match (gate, plan) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(gate), Ok(())) => Err(format!("the gate failed: {gate}")),
        (Ok(()), Err(plan)) => Err(plan),
        (Err(gate), Err(plan)) => Err(format!("the gate failed ({gate}); {plan}")),
    }
}

/// `cargo xtask sam-build`: what `sam build` produces for an AWS deploy.
fn sam_build(paths: &Paths, arch: Arch) -> Res<()> {
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
