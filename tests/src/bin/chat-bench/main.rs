//! `chat-bench`: drives a deployed stack with real WebSocket clients and prints what it measured. Run it with
//! `cargo xtask bench`, which deploys a fresh stack on the emulator first and passes the function list.
//!
//! Absolute times on a shared 2-core machine are noisy, so every latency is reported as p50/p99 over rounds,
//! and fan-out is compared as a ratio to the emulator's own ceiling measured in the same run, interleaved
//! round by round with ours.

mod attachments;
mod fanout;
mod functions;
mod latency;
mod push;
mod report;
mod sockets;
mod stats;
mod storm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use chat_e2e::counting::Counting;
use chat_e2e::{Api, Stack, TestUser};
use chat_shared::aws::dynamo::DynamoDbStore;
use chat_shared::model::UserId;
use chat_shared::ports::ConnectionStore;
use clap::Parser;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;

use crate::fanout::{FanoutResult, LargeResult, Room};
use crate::functions::{Function, FunctionResult};
use crate::latency::{LatencyResult, ThroughputResult};
use crate::push::PushLoadResult;
use crate::stats::Summary;
use crate::storm::StormResult;

/// `chat-bench [options]`: what to measure. `--quick` makes every figure it does not set smaller.
#[derive(Parser)]
#[command(
    name = "chat-bench",
    about = "Drives a deployed stack with real WebSocket clients and prints what it measured."
)]
struct Cli {
    /// Markdown file whose generated section gets the report.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The deployed functions (written by `cargo xtask bench`): cold starts, memory, reconfiguration.
    #[arg(long)]
    functions: Option<PathBuf>,
    /// The AWS CLI that reconfigures the message function in place.
    #[arg(long)]
    aws_cli: Option<PathBuf>,
    /// Connections per fan-out room.
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Connections per large-group room.
    #[arg(long, value_delimiter = ',')]
    large: Option<Vec<usize>>,
    /// Members of each large group (their connections spread over them).
    #[arg(long)]
    large_members: Option<usize>,
    /// Members of the push-load group (half offline and pushed).
    #[arg(long, default_value_t = 200)]
    push_members: usize,
    /// Messages per room.
    #[arg(long)]
    rounds: Option<usize>,
    /// Clients in the connect storm.
    #[arg(long)]
    storm: Option<usize>,
    /// Clients connecting at the same instant, one group each.
    #[arg(long, default_value_t = 50)]
    wave: usize,
    /// Images uploaded one after another, timed from the upload form to a thumbnail the other member loads.
    #[arg(long)]
    images: Option<usize>,
    /// Also time the largest room at each of these POSTS_IN_FLIGHT values.
    #[arg(long, value_delimiter = ',')]
    sweep_posts: Vec<usize>,
    /// Rooms of 10 and 100 connections, one large room of 1,000 in a 200-member group, 5 rounds, a 100-client
    /// storm.
    #[arg(long)]
    quick: bool,
}

/// What to measure, with the defaults (or `--quick`'s) filled in.
struct Options {
    report: Option<PathBuf>,
    functions: Option<PathBuf>,
    aws_cli: Option<PathBuf>,
    sizes: Vec<usize>,
    large: Vec<usize>,
    large_members: usize,
    push_members: usize,
    rounds: usize,
    storm: usize,
    wave: usize,
    images: usize,
    sweep_posts: Vec<usize>,
    ceiling_candidates: Vec<usize>,
}

impl From<Cli> for Options {
    fn from(cli: Cli) -> Options {
        let quick = cli.quick;
        let pick = |full: usize, smaller: usize| if quick { smaller } else { full };
        Options {
            report: cli.report,
            functions: cli.functions,
            aws_cli: cli.aws_cli,
            sizes: cli.sizes.unwrap_or_else(|| if quick { vec![10, 100] } else { vec![10, 100, 1000] }),
            large: cli.large.unwrap_or_else(|| if quick { vec![1000] } else { vec![1000, 5000] }),
            large_members: cli.large_members.unwrap_or(pick(1000, 200)),
            push_members: cli.push_members,
            rounds: cli.rounds.unwrap_or(pick(20, 5)),
            storm: cli.storm.unwrap_or(pick(300, 100)),
            wave: cli.wave,
            images: cli.images.unwrap_or(pick(20, 10)),
            sweep_posts: cli.sweep_posts,
            ceiling_candidates: vec![16, 64, 256],
        }
    }
}

/// What every scenario needs: the stack's endpoints and clients for its APIs and table.
pub struct Bench {
    pub stack: Stack,
    pub api: Api,
    pub store: DynamoDbStore,
    pub management: aws_sdk_apigatewaymanagement::Client,
    pub counting: Counting,
    aws_cli: Option<PathBuf>,
    functions: Vec<Function>,
}

impl Bench {
    /// `n` new users, registered a few at a time (each registration hashes a password).
    pub async fn users(&self, prefix: &str, n: usize) -> Vec<TestUser> {
        stream::iter(0..n).map(|_| self.api.register(prefix)).buffered(8).collect().await
    }

    /// A group of `users` created by the first; its id.
    pub async fn group(&self, users: &[TestUser], name: &str) -> String {
        let others: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
        let body = json!({"type": "group", "name": name, "participantIds": others});
        let (status, group) = self.api.call("POST", "/conversations", Some(&users[0].token), Some(body)).await;
        assert_eq!(status, 201, "create group: {group}");
        group["_id"].as_str().expect("conversation id").to_owned()
    }

    /// Waits (at most a minute) until none of `users` has a live connection left.
    pub async fn wait_until_offline(&self, users: &[TestUser]) {
        let ids: Vec<UserId> = users.iter().map(|u| UserId::parse(&u.id).expect("user id")).collect();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let presences = self.store.presences(&ids).await.expect("presences");
            if presences.values().all(|p| p.connections.is_empty()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        eprintln!("warning: some benchmark connections were still registered a minute after closing");
    }

    /// Reconfigures one variable of the message function in place (the emulator restarts its processes); the
    /// others keep their deployed values.
    pub fn set_message_env(&self, name: &str, value: &str) {
        let (Some(cli), Some(function)) = (&self.aws_cli, self.functions.iter().find(|f| f.binary == "ws-message"))
        else {
            panic!("reconfiguring the message function needs --aws-cli and --functions");
        };
        let mut environment = function.environment.clone();
        environment.insert(name.into(), value.into());
        let status = Command::new(cli)
            .args(["lambda", "update-function-configuration", "--function-name", &function.name, "--environment"])
            .arg(json!({ "Variables": environment }).to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the AWS CLI");
        assert!(status.success(), "could not reconfigure {}", function.name);
    }

    /// Puts one variable of the message function back to its deployed value.
    pub fn restore_message_env(&self, name: &str) {
        let deployed = self.functions.iter().find(|f| f.binary == "ws-message").and_then(|f| f.environment.get(name));
        if let Some(value) = deployed {
            self.set_message_env(name, &value.clone());
        }
    }
}

#[derive(Serialize, Default)]
struct Results {
    fanout: Vec<FanoutResult>,
    large: Vec<LargeResult>,
    push_load: Option<PushLoadResult>,
    ceiling_in_flight: usize,
    ceiling_sweep: Vec<(usize, f64)>,
    posts_sweep: Vec<(usize, Summary)>,
    storm: Option<StormResult>,
    attachments: Option<attachments::AttachmentResult>,
    steady: Option<LatencyResult>,
    throughput: Option<ThroughputResult>,
    functions: Vec<FunctionResult>,
}

#[tokio::main]
async fn main() {
    let options = Options::from(Cli::parse());
    let stack = Stack::load();
    let config = stack.aws_config().await;
    let management_url = stack.websocket.replacen("ws://", "http://", 1).replacen("wss://", "https://", 1);
    let management = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&config).endpoint_url(management_url).build(),
    );
    let functions: Vec<Function> = match &options.functions {
        Some(path) => {
            serde_json::from_str(&std::fs::read_to_string(path).expect("functions file")).expect("valid functions file")
        }
        None => Vec::new(),
    };
    let bench = Bench {
        api: stack.api(),
        store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), stack.table_name.clone()),
        management,
        counting: Counting::new(&stack, chat_shared::config::DEFAULT_FANOUT_INLINE_MAX).await,
        stack,
        aws_cli: options.aws_cli.clone(),
        functions,
    };
    let mut results = Results::default();
    let mut rss_hashes = HashMap::new();
    let mut peaks: HashMap<String, (f64, usize)> = HashMap::new();
    let mut note_peaks = |bench: &Bench, peaks: &mut HashMap<String, (f64, usize)>| {
        for (binary, (mb, count)) in functions::peak_rss(&bench.functions, &mut rss_hashes) {
            let peak = peaks.entry(binary).or_default();
            peak.0 = peak.0.max(mb);
            peak.1 = peak.1.max(count);
        }
    };

    // Fan-out, largest room first so the ceiling's best in-flight bound is chosen where it matters.
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    for (index, &size) in sizes.iter().enumerate() {
        eprintln!("fan-out: opening a room holding {size} connections");
        let mut room = Room::open(&bench, size).await;
        if index == 0 {
            let (best, sweep) = fanout::best_ceiling_in_flight(&bench, &mut room, &options.ceiling_candidates).await;
            eprintln!("ceiling: best in-flight bound {best} ({sweep:?})");
            results.ceiling_in_flight = best;
            results.ceiling_sweep = sweep;
            if !options.sweep_posts.is_empty() {
                results.posts_sweep = fanout::sweep_posts_in_flight(&bench, &mut room, &options.sweep_posts).await;
                eprintln!("POSTS_IN_FLIGHT sweep: {:?}", results.posts_sweep);
                bench.restore_message_env("POSTS_IN_FLIGHT");
            }
        }
        eprintln!("fan-out: {} rounds at {size} connections", options.rounds);
        let result = fanout::measure(&bench, &mut room, options.rounds, results.ceiling_in_flight).await;
        eprintln!("fan-out {size}: ours {:?}, ceiling {:?}, ratio {:.2}", result.ours, result.ceiling, result.ratio);
        note_peaks(&bench, &mut peaks);
        room.close(&bench).await;
        results.fanout.push(result);
    }
    results.fanout.sort_by_key(|r| r.connections);

    // Large groups: each room through both delivery paths, against the ceiling for as many posts.
    for &connections in &options.large {
        let members = options.large_members.min(connections);
        eprintln!("large room: {members} members holding {connections} connections");
        let mut room = Room::open_large(&bench, members, connections).await;
        let rounds = options.rounds.min(10);
        let result = fanout::measure_both_paths(&bench, &mut room, rounds, results.ceiling_in_flight).await;
        eprintln!(
            "large {connections}: inline {:.2} x, queued {:.2} x the ceiling",
            result.inline.ratio, result.queued.ratio
        );
        note_peaks(&bench, &mut peaks);
        room.close(&bench).await;
        results.large.push(result);
    }

    eprintln!("connect storm: {} clients in waves of {}", options.storm, options.wave);
    results.storm = Some(storm::run(&bench, options.storm, options.wave).await);
    eprintln!("storm: {:?}", results.storm);
    note_peaks(&bench, &mut peaks);
    // 5 per second stays under one user's send limit (60 per 10 s), as a chatting person does.
    eprintln!("one-to-one latency at 5 messages per second");
    results.steady = Some(latency::steady(&bench, 100, 5.0).await);
    eprintln!("steady: {:?}", results.steady);
    eprintln!("throughput: 20 conversations at once");
    results.throughput = Some(latency::many_conversations(&bench, 20, 20).await);
    note_peaks(&bench, &mut peaks);
    eprintln!("attachments: upload to thumbnail, {} images", options.images);
    results.attachments = Some(attachments::upload_to_thumbnail(&bench, options.images).await);
    eprintln!("attachments: {:?}", results.attachments);
    note_peaks(&bench, &mut peaks);

    // After the other scenarios, so the push functions' processes and queues do not share their machine.
    let rounds = options.rounds.min(10);
    eprintln!(
        "push under load: {} members, half offline, {SENDERS} senders, {rounds} rounds",
        options.push_members,
        SENDERS = 5
    );
    let push_load = push::under_push_load(&bench, options.push_members, rounds).await;
    eprintln!(
        "push load: live {:.2} x without push; send -> push p50 {:.0} ms, p99 {:.0} ms; {} of {} pushes",
        push_load.ratio,
        push_load.push_p50_ms,
        push_load.push_p99_ms,
        push_load.pushes_received,
        push_load.pushes_expected
    );
    results.push_load = Some(push_load);
    note_peaks(&bench, &mut peaks);

    if !bench.functions.is_empty() {
        let token = bench.users("cold", 1).await.remove(0).token;
        for function in &bench.functions {
            eprintln!("cold start: {}", function.binary);
            let event = functions::first_event(&function.binary, &token);
            let (ready, answer) = functions::cold_starts(function, &event, 9).await;
            let (binary_mb, zip_mb) = functions::sizes(function);
            let (peak, processes) = peaks.get(&function.binary).copied().unwrap_or((f64::NAN, 0));
            results.functions.push(FunctionResult {
                binary: function.binary.clone(),
                cold_ready_ms: ready,
                cold_answer_ms: answer,
                peak_rss_mb: peak,
                processes_seen: processes,
                binary_mb,
                zip_mb,
            });
        }
    }

    let report = report::render(&results, &bench);
    println!("{report}");
    if let Some(path) = &options.report {
        report::write(path, &report).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_shrinks_only_what_is_not_given() {
        let options =
            Options::from(Cli::parse_from(["chat-bench", "--quick", "--rounds", "7", "--sweep-posts", "8,16"]));
        assert_eq!((options.sizes, options.large, options.large_members), (vec![10, 100], vec![1000], 200));
        assert_eq!((options.rounds, options.storm, options.sweep_posts), (7, 100, vec![8, 16]));
        let full = Options::from(Cli::parse_from(["chat-bench"]));
        assert_eq!((full.sizes, full.rounds, full.storm), (vec![10, 100, 1000], 20, 300));
    }
}
