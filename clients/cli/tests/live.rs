//! The built `chat-cli` binary against a deployed stack (the endpoints JSON named by `CHAT_ENDPOINTS_FILE`, as `cargo
//! xtask` writes it): two users register, open a private chat and talk, one process listening while another sends; a
//! user saves an export of their data; bad input ends with a non-zero exit and a message that says what is wrong.
//!
//! They need a deployed stack: `cargo xtask test` runs them after the deploy (`cargo test -p chat-cli` with
//! `CHAT_ENDPOINTS_FILE`). Every process is bounded by a timeout and killed if it overruns.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_chat-cli");
/// Longest a single command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(45);
const PASSWORD: &str = "correct-horse-battery";

/// What one run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
            .collect()
    }

    fn json(&self) -> Value {
        let lines = self.json_lines();
        assert_eq!(lines.len(), 1, "expected one JSON line, got: {}", self.stdout);
        lines.into_iter().next().unwrap_or_default()
    }

    fn assert_ok(self, what: &str) -> Run {
        assert_eq!(self.code, Some(0), "{what} failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// A scratch config directory (so no test touches the real token file) and the endpoints to use.
struct Cli {
    endpoints: PathBuf,
    home: PathBuf,
}

impl Cli {
    /// The CLI pointed at the stack named by `CHAT_ENDPOINTS_FILE`.
    fn new() -> Cli {
        let endpoints = std::env::var_os("CHAT_ENDPOINTS_FILE").filter(|path| !path.is_empty()).expect(
            "CHAT_ENDPOINTS_FILE is not set: these tests need a deployed stack (run them with `cargo xtask test`)",
        );
        let endpoints = PathBuf::from(endpoints);
        assert!(endpoints.is_file(), "CHAT_ENDPOINTS_FILE={} is not a file", endpoints.display());
        let home = std::env::temp_dir().join(format!("chat-cli-live-{}", unique("")));
        std::fs::create_dir_all(&home).expect("scratch dir");
        Cli { endpoints, home }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--endpoints")
            .arg(&self.endpoints)
            .args(args)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("HOME", &self.home)
            .env_remove("CHAT_TOKEN")
            .env_remove("CHAT_HTTP")
            .env_remove("CHAT_WS")
            .env_remove("CHAT_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `chat-cli <args>` to completion (killed after [`COMMAND_TIMEOUT`]).
    fn run(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("start chat-cli");
        finish(child, COMMAND_TIMEOUT, &format!("chat-cli {}", args.join(" ")))
    }

    /// Registers a user; returns (user id, username, token).
    fn register(&self, prefix: &str) -> (String, String, String) {
        let username = unique(prefix);
        let session = self.run(&["register", &username, "--password", PASSWORD, "--print-token"]).assert_ok("register");
        let session = session.json();
        let id = session["user"]["_id"].as_str().expect("user id").to_owned();
        let token = session["token"].as_str().expect("token").to_owned();
        (id, username, token)
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// Waits for `child` (killing it after `timeout`) and collects what it printed.
fn finish(mut child: Child, timeout: Duration, what: &str) -> Run {
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chat-cli") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(status.is_some(), "{what} did not finish within {timeout:?}; stderr: {}", run.stderr);
    run
}

fn read_in_background(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_string(&mut text);
        }
        text
    })
}

/// A `listen` running in the background: started, and waited for until it says it is connected.
struct Listener {
    child: Child,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Listener {
    fn start(cli: &Cli, args: &[&str]) -> Listener {
        let mut child = cli.command(args).spawn().expect("start chat-cli listen");
        let (sender, stderr_lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listener = Listener { child, stderr_lines, stderr_seen: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match listener.stderr_lines.recv_timeout(wait) {
                Ok(line) if line.starts_with("connected") => break,
                Ok(line) => listener.stderr_seen.push(line),
                Err(_) => {
                    let _ = listener.child.kill();
                    panic!("listen did not connect within 20 s; stderr: {:?}", listener.stderr_seen);
                }
            }
        }
        listener
    }

    fn finish(mut self, timeout: Duration) -> Run {
        let stdout = read_in_background(self.child.stdout.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for listen") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stderr_seen.extend(self.stderr_lines.try_iter());
        let run = Run {
            code: status.and_then(|s| s.code()),
            stdout: stdout.join().unwrap_or_default(),
            stderr: self.stderr_seen.join("\n"),
        };
        assert!(status.is_some(), "listen did not finish within {timeout:?}; stderr: {}", run.stderr);
        run
    }
}

fn assert_fails(run: &Run, code: i32, message: &str) {
    assert_eq!(run.code, Some(code), "expected exit {code}; stdout: {} stderr: {}", run.stdout, run.stderr);
    assert!(run.stderr.contains(message), "stderr should mention `{message}`: {}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing on stdout when failing: {}", run.stdout);
}

#[test]
fn one_user_sends_while_the_other_listens() {
    let cli = Cli::new();
    let (alice_id, _alice, alice_token) = cli.register("alice");
    let (bob_id, bob, bob_token) = cli.register("bob");

    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id").to_owned();
    let members: Vec<&str> =
        chat["members"].as_array().expect("members").iter().filter_map(|m| m["_id"].as_str()).collect();
    assert!(members.contains(&alice_id.as_str()) && members.contains(&bob_id.as_str()), "{chat}");
    let listed = cli.run(&["--token", &bob_token, "conversations"]).assert_ok("conversations").json_lines();
    assert!(listed.iter().any(|c| c["_id"] == chat_id.as_str()), "bob lists the chat: {listed:?}");

    // Bob listens for two messages (presence events are filtered out) while alice sends them.
    let listener = Listener::start(
        &cli,
        &["--token", &bob_token, "listen", "--event", "receive_message", "--count", "2", "--timeout", "40"],
    );
    let mut acks = Vec::new();
    for text in ["hello bob", "how are you?"] {
        let ack = cli.run(&["--token", &alice_token, "send", &chat_id, text]).assert_ok("send").json();
        assert_eq!(ack["event"], "ack", "{ack}");
        assert_eq!(ack["data"]["success"], true);
        assert_eq!(ack["data"]["message"]["content"], text);
        acks.push(ack);
    }
    assert_eq!(acks[0]["data"]["message"]["seq"], 1);
    assert_eq!(acks[1]["data"]["message"]["seq"], 2);

    let heard = listener.finish(Duration::from_secs(45)).assert_ok("listen").json_lines();
    assert_eq!(heard.len(), 2, "{heard:?}");
    for (event, ack) in heard.iter().zip(&acks) {
        assert_eq!(event["event"], "receive_message");
        assert_eq!(event["data"]["conversationId"], chat_id.as_str());
        assert_eq!(event["data"]["message"], ack["data"]["message"], "bob hears exactly what alice stored");
    }

    let history = cli.run(&["--token", &bob_token, "history", &chat_id]).assert_ok("history").json_lines();
    let contents: Vec<&str> = history.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["hello bob", "how are you?"], "oldest first");
    let after = cli.run(&["--token", &bob_token, "history", &chat_id, "--after-seq", "1"]).assert_ok("history");
    assert_eq!(after.json()["seq"], 2);
}

#[test]
fn a_retry_with_the_same_client_message_id_is_stored_once() {
    let cli = Cli::new();
    let (_, _, alice_token) = cli.register("alice");
    let (_, bob, _) = cli.register("bob");
    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id");
    let send = ["--token", &alice_token, "send", chat_id, "only once", "--client-message-id", "script-1"];
    let first = cli.run(&send).assert_ok("send").json();
    let retry = cli.run(&send).assert_ok("send again").json();
    assert_eq!(retry["data"]["duplicate"], true, "{retry}");
    assert_eq!(retry["data"]["message"]["_id"], first["data"]["message"]["_id"]);
    assert_eq!(cli.run(&["--token", &alice_token, "history", chat_id]).assert_ok("history").json_lines().len(), 1);
}

#[test]
fn a_mention_by_name_counts_for_the_mentioned_whose_settings_the_cli_sets() {
    let cli = Cli::new();
    let (_, _, alice_token) = cli.register("alice");
    let (bob_id, bob, bob_token) = cli.register("bob");
    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id");
    let ack = cli.run(&["--token", &alice_token, "send", chat_id, "@bob look", "--mention", &bob]).assert_ok("send");
    assert_eq!(ack.json()["data"]["message"]["mentions"], json!([bob_id]));
    let listed = cli.run(&["--token", &bob_token, "conversations"]).assert_ok("conversations").json();
    assert_eq!(listed["unreadMentionCount"], 1, "{listed}");

    let set = cli.run(&["--token", &bob_token, "notify", chat_id, "none", "--until", "2099-01-01T00:00:00Z"]);
    assert_eq!(
        set.assert_ok("notify").json(),
        json!({"conversationId": chat_id, "level": "none", "until": "2099-01-01T00:00:00.000Z"})
    );
    let preferences =
        cli.run(&["--token", &bob_token, "notifications", "--previews", "off"]).assert_ok("notifications");
    assert_eq!(preferences.json(), json!({"doNotDisturbUntil": null, "previews": false}));
    let dnd = cli.run(&["--token", &bob_token, "notifications", "--dnd-until", "2099-02-01T00:00:00Z"]);
    assert_eq!(
        dnd.assert_ok("notifications").json(),
        json!({"doNotDisturbUntil": "2099-02-01T00:00:00.000Z", "previews": false}),
        "the other preference stays"
    );
    let past = cli.run(&["--token", &bob_token, "notify", chat_id, "none", "--until", "2001-01-01T00:00:00Z"]);
    assert_fails(&past, 1, "until must be in the future");
    let stranger = cli.run(&["--token", &alice_token, "send", chat_id, "hi", "--mention", "no-such-user-here"]);
    assert_fails(&stranger, 1, "no user named");
}

#[test]
fn a_file_is_uploaded_and_sent_and_a_refused_one_says_why() {
    let cli = Cli::new();
    let (_, _, alice_token) = cli.register("alice");
    let (_, bob, bob_token) = cli.register("bob");
    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id");
    let notes = cli.home.join("notes.txt");
    std::fs::write(&notes, "minutes of the meeting\n").expect("write a file");
    let notes = notes.to_str().expect("utf-8 path");

    let ack =
        cli.run(&["--token", &alice_token, "send", chat_id, "the notes", "--file", notes]).assert_ok("send").json();
    let message = &ack["data"]["message"];
    assert_eq!((message["type"].as_str(), message["content"].as_str()), (Some("file"), Some("the notes")), "{ack}");
    assert_eq!(message["attachment"]["fileName"], "notes.txt");
    assert_eq!(message["attachment"]["size"], 23);
    let history = cli.run(&["--token", &bob_token, "history", chat_id]).assert_ok("history").json();
    assert!(history["attachment"]["url"].is_string(), "bob is served a read URL: {history}");

    let page = cli.home.join("page.html");
    std::fs::write(&page, "<script>alert(1)</script>").expect("write a file");
    let refused = cli.run(&["--token", &alice_token, "send", chat_id, "--file", page.to_str().expect("utf-8 path")]);
    assert_fails(&refused, 1, "validation_failed");
    assert_fails(
        &cli.run(&["--token", &alice_token, "send", chat_id, "--file", "/nonexistent/x.pdf"]),
        1,
        "cannot read",
    );
}

#[test]
fn login_stores_the_token_for_the_next_commands_and_logout_forgets_it() {
    let cli = Cli::new();
    let (_, alice, _) = cli.register("alice");
    let token_file = cli.home.join("alice.token");
    let token_file = token_file.to_str().expect("utf-8 path");

    let login = cli.run(&["login", &alice, "--password", PASSWORD, "--token-file", token_file]).assert_ok("login");
    assert_eq!(login.json()["user"]["username"], alice.as_str());
    assert!(Path::new(token_file).is_file());
    let me = cli.run(&["whoami", "--token-file", token_file]).assert_ok("whoami").json();
    assert_eq!(me["username"], alice.as_str());

    // The default token file is in the config dir (XDG_CONFIG_HOME here).
    cli.run(&["login", &alice, "--password", PASSWORD]).assert_ok("login");
    assert!(cli.home.join("chat-cli").join("token").is_file());
    assert_eq!(cli.run(&["whoami"]).assert_ok("whoami").json()["username"], alice.as_str());

    // An access token about to expire is renewed with the refresh token first, and the file keeps the new pair.
    let stored = std::fs::read_to_string(token_file).expect("token file");
    let lines: Vec<&str> = stored.lines().collect();
    assert_eq!(lines.len(), 3, "access token, refresh token, expiry: {stored}");
    std::fs::write(token_file, format!("{}\n{}\n0\n", lines[0], lines[1])).expect("rewrite");
    let me = cli.run(&["whoami", "--token-file", token_file]).assert_ok("whoami (renewing)").json();
    assert_eq!(me["username"], alice.as_str());
    let renewed = std::fs::read_to_string(token_file).expect("token file");
    assert_ne!(renewed.lines().nth(1), Some(lines[1]), "the refresh token rotated");
    let access = renewed.lines().next().expect("access token").to_owned();

    // Logout ends the session on the server: its access token is refused from then on.
    let logout = cli.run(&["logout", "--token-file", token_file]).assert_ok("logout").json();
    assert_eq!((&logout["deleted"], &logout["sessionEnded"]), (&json!(true), &json!(true)));
    assert_fails(&cli.run(&["whoami", "--token-file", token_file]), 1, "not logged in");
    assert_fails(&cli.run(&["--token", &access, "whoami"]), 1, "unauthorized");
}

#[test]
fn export_saves_a_copy_of_ones_own_data() {
    let cli = Cli::new();
    let (alice_id, _alice, alice_token) = cli.register("alice");
    let (_, bob, bob_token) = cli.register("bob");
    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id").to_owned();
    cli.run(&["--token", &alice_token, "send", &chat_id, "mine to keep"]).assert_ok("send");
    cli.run(&["--token", &bob_token, "send", &chat_id, "bob's words"]).assert_ok("send");

    let out = cli.home.join("alice-export.json");
    let out = out.to_str().expect("utf-8 path");
    let saved = cli.run(&["--token", &alice_token, "export", "--out", out, "--timeout", "40"]).assert_ok("export");
    let saved = saved.json();
    let bytes = std::fs::read(out).expect("the export is saved");
    assert_eq!((&saved["file"], &saved["size"]), (&json!(out), &json!(bytes.len())), "{saved}");
    let document: Value = serde_json::from_slice(&bytes).expect("a JSON document");
    assert_eq!(document["profile"]["_id"], alice_id.as_str());
    let contents: Vec<&str> =
        document["messages"].as_array().expect("messages").iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["mine to keep"], "her messages, and only hers");

    // Asked again within the hour: the same export, ready at once.
    let again = cli.run(&["--token", &alice_token, "export", "--out", out]).assert_ok("export again").json();
    assert_eq!(again["exportId"], saved["exportId"]);
    assert_fails(&cli.run(&["--token", &alice_token, "export", "--out", "/"]), 1, "cannot write /");
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_message() {
    let cli = Cli::new();
    let (_, alice, alice_token) = cli.register("alice");

    assert_fails(&cli.run(&["login", &alice, "--password", "not-the-password"]), 1, "POST /auth/login: unauthorized");
    assert_fails(&cli.run(&["register", &alice, "--password", PASSWORD]), 1, "POST /auth/register: conflict");
    let unknown = "f".repeat(32);
    assert_fails(&cli.run(&["--token", &alice_token, "send", &unknown, "hi"]), 1, "send_message: not_found");
    assert_fails(&cli.run(&["--token", &alice_token, "history", &unknown]), 1, "not_found");
    assert_fails(&cli.run(&["--token", &alice_token, "create-private", "nobody-has-this-name"]), 1, "no user named");
    assert_fails(&cli.run(&["--token", "forged", "listen", "--timeout", "5"]), 1, "refused the token");
    assert_fails(&cli.run(&["--token", "forged", "conversations"]), 1, "unauthorized");
    assert_fails(&cli.run(&["send", &unknown]), 2, "`send` needs <conversationId> <text>");
    assert_fails(&cli.run(&["fly"]), 2, "unknown command `fly`");
    assert_fails(&cli.run(&["--token", &alice_token, "listen", "--count", "1", "--timeout", "1"]), 3, "0 of 1 events");
}

/// Makes a registered user an operator, in the table (no command or route can).
fn make_operator(id: &str, username: &str) {
    let user = chat_e2e::TestUser {
        id: id.to_owned(),
        username: username.to_owned(),
        token: String::new(),
        refresh_token: String::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(chat_e2e::Stack::load().make_operator(&user));
}

#[test]
fn a_report_reaches_the_operator_who_deletes_the_message_and_suspends_the_sender() {
    let cli = Cli::new();
    let (_, _, alice_token) = cli.register("alice");
    let (_, bob, bob_token) = cli.register("bob");
    let (op_id, op, op_token) = cli.register("op");
    make_operator(&op_id, &op);
    let chat = cli.run(&["--token", &alice_token, "create-private", &bob]).assert_ok("create-private").json();
    let chat_id = chat["_id"].as_str().expect("conversation id").to_owned();
    let ack = cli.run(&["--token", &bob_token, "send", &chat_id, "rude words"]).assert_ok("send").json();
    let message_id = ack["data"]["message"]["_id"].as_str().expect("message id").to_owned();

    let target = format!("message:{message_id}");
    let reported =
        cli.run(&["--token", &alice_token, "report", &target, "--reason", "harassment"]).assert_ok("report").json();
    assert_eq!(reported["result"], "reported");
    let refused = cli.run(&["--token", &alice_token, "mod", "reports"]);
    assert_fails(&refused, 1, "operators only");

    let open = cli.run(&["--token", &op_token, "mod", "reports"]).assert_ok("mod reports").json_lines();
    assert!(open.iter().any(|r| r["target"]["messageId"] == message_id.as_str() && r["excerpt"] == "rude words"));
    let deleted =
        cli.run(&["--token", &op_token, "mod", "delete-message", &message_id]).assert_ok("mod delete-message").json();
    assert_eq!(deleted["deleted"], true);
    let resolved = cli
        .run(&["--token", &op_token, "mod", "resolve", &target, "--outcome", "actioned", "--note", "deleted"])
        .assert_ok("mod resolve")
        .json();
    assert_eq!(resolved["resolved"], 1);
    let suspended = cli.run(&["--token", &op_token, "mod", "suspend", &bob, "--reason", "harassment"]);
    assert_eq!(suspended.assert_ok("mod suspend").json()["suspended"], true);
    assert_fails(&cli.run(&["--token", &bob_token, "whoami"]), 1, "unauthorized");
    assert_fails(&cli.run(&["login", &bob, "--password", PASSWORD]), 1, "suspended");
    let unsuspended = cli.run(&["--token", &op_token, "mod", "unsuspend", &bob]).assert_ok("mod unsuspend").json();
    assert_eq!(unsuspended["suspended"], false);
    let audit = cli.run(&["--token", &op_token, "mod", "audit", "--limit", "100"]).assert_ok("mod audit").json_lines();
    let mine: Vec<&str> =
        audit.iter().filter(|e| e["operatorId"] == op_id.as_str()).filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(mine, ["unsuspend", "suspend", "resolve_reports", "delete_message"], "newest first");
}
