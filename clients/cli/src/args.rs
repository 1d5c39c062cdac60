//! The command line: which command, its arguments, and the flags, in any order (`chat-cli --ws URL listen` and
//! `chat-cli listen --ws URL` mean the same). Pure parsing, no environment and no I/O, so every rule is unit
//! tested; where values come from when a flag is absent is decided in `endpoints` and `session`.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{CliError, CliResult};

pub const USAGE: &str = "\
chat-cli: terminal client of the serverless chat backend (JSON on stdout, messages on stderr)

usage: chat-cli [options] <command> [arguments]

commands:
  register <username> [--password P] [--print-token]   create an account and log in
  login <username> [--password P] [--print-token]      log in (stores the token, see --token-file)
  logout                                               forget the stored token
  whoami                                               your profile
  export [--out FILE] [--timeout SECS]                 a copy of your data: asks for it, waits until it
                                                       is made (5 minutes at most unless --timeout), and
                                                       saves it to FILE (default chat-export.json)
  users <search> [--limit N]                           users whose name starts with <search>, one per line
  conversations [--limit N]                            your conversations, one per line
  create-private <user>                                private chat with <user> (username or user id)
  create-group <name> <user>...                        group chat with these users
  history <conversationId> [--limit N] [--after-seq N] messages, oldest first, one per line
  send <conversationId> <text> [--client-message-id ID] [--timeout SECS] [--mention USER]...
                                                       send over WebSocket, print the ack; each
                                                       --mention names a member the message mentions
  send <conversationId> [caption] --file PATH          upload a file (image or document), send it
  listen [--count N] [--timeout SECS] [--event NAME]... [--join CONVERSATION]...
                                                       print every event as one JSON line until Ctrl-C,
                                                       N events (exit 3 if the timeout comes first) or
                                                       the timeout; --event keeps only these events,
                                                       --join also receives typing in a conversation
  notify <conversationId> all|mentions|none [--until TIME]
                                                       which messages of a conversation notify you
                                                       (until an RFC 3339 TIME, else for good)
  notifications [--dnd-until TIME|off] [--previews on|off]
                                                       your notification preferences; with flags,
                                                       change them (the others stay)
  report <target> --reason R [--details TEXT]          report `message:<messageId>` or `user:<user>` to the
                                                       operators (reasons: spam, harassment, hate, sexual,
                                                       violence, self_harm, other)
  mod reports [--limit N]                              operators: open reports, oldest first, one per line
  mod resolve <target> --outcome dismissed|actioned [--note TEXT]
                                                       operators: close every open report of <target>
  mod delete-message <messageId>                       operators: delete any message
  mod suspend <user> [--reason TEXT]                   operators: close their sockets, refuse their tokens
  mod unsuspend <user>                                 operators: lift a suspension
  mod audit [--month YYYY-MM] [--limit N]              operators: the audit record, newest first
  help                                                 this text

options (anywhere on the line):
  --endpoints FILE    endpoints JSON (`http`, `websocket`), e.g. .local/endpoints.json   [env CHAT_ENDPOINTS_FILE]
  --http URL          HTTP API base URL (overrides the file)                             [env CHAT_HTTP]
  --ws URL            WebSocket API URL (overrides the file)                             [env CHAT_WS]
  --token TOKEN       use this token instead of the stored one                           [env CHAT_TOKEN]
  --token-file FILE   where login stores the token (default: <config dir>/chat-cli/token)
  --password P        for register/login; else env CHAT_PASSWORD, else one line of stdin

exit status: 0 ok, 1 failed (the message says why), 2 bad command line, 3 timed out";

/// Flags that apply to every command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Globals {
    pub endpoints_file: Option<PathBuf>,
    pub http: Option<String>,
    pub ws: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Register {
        username: String,
        password: Option<String>,
        print_token: bool,
    },
    Login {
        username: String,
        password: Option<String>,
        print_token: bool,
    },
    Logout,
    Whoami,
    Export {
        out: String,
        timeout: Option<Duration>,
    },
    Users {
        search: String,
        limit: Option<u32>,
    },
    Conversations {
        limit: Option<u32>,
    },
    CreatePrivate {
        user: String,
    },
    CreateGroup {
        name: String,
        members: Vec<String>,
    },
    History {
        conversation_id: String,
        limit: Option<u32>,
        after_seq: Option<u64>,
    },
    Send {
        conversation_id: String,
        text: String,
        /// A file to upload and send (`text` is then its optional caption).
        file: Option<String>,
        client_message_id: Option<String>,
        timeout: Option<Duration>,
        /// Members mentioned (usernames or ids).
        mentions: Vec<String>,
    },
    Notify {
        conversation_id: String,
        level: String,
        until: Option<String>,
    },
    Notifications {
        /// `Some(None)`: turn do-not-disturb off.
        dnd_until: Option<Option<String>>,
        previews: Option<bool>,
    },
    Listen {
        count: Option<u64>,
        timeout: Option<Duration>,
        events: Vec<String>,
        join: Vec<String>,
    },
    Report {
        /// `message:<messageId>` or `user:<username or id>`.
        target: String,
        reason: String,
        details: Option<String>,
    },
    Moderate(Moderation),
}

/// `mod <subcommand>`: what operators do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moderation {
    Reports { limit: Option<u32> },
    Resolve { target: String, outcome: String, note: Option<String> },
    DeleteMessage { message_id: String },
    Suspend { user: String, reason: Option<String> },
    Unsuspend { user: String },
    Audit { month: Option<String>, limit: Option<u32> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub globals: Globals,
    pub command: Command,
}

/// Flags that take a value; every other flag is a switch.
const VALUE_FLAGS: [&str; 26] = [
    "--endpoints",
    "--http",
    "--ws",
    "--token",
    "--token-file",
    "--password",
    "--limit",
    "--after-seq",
    "--client-message-id",
    "--count",
    "--timeout",
    "--event",
    "--join",
    "--file",
    "--reason",
    "--details",
    "--outcome",
    "--note",
    "--month",
    "--mention",
    "--until",
    "--dnd-until",
    "--previews",
    "--out",
    // Accepted spellings of the above.
    "--endpoints-file",
    "--events",
];
const SWITCHES: [&str; 2] = ["--print-token", "--help"];
const GLOBAL_FLAGS: [&str; 6] = ["--endpoints", "--endpoints-file", "--http", "--ws", "--token", "--token-file"];

/// The flags each command accepts besides the global ones.
fn command_flags(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "help" | "logout" | "whoami" | "create-private" | "create-group" => &[],
        "register" | "login" => &["--password", "--print-token"],
        "users" | "conversations" => &["--limit"],
        "export" => &["--out", "--timeout"],
        "history" => &["--limit", "--after-seq"],
        "send" => &["--client-message-id", "--timeout", "--file", "--mention"],
        "notify" => &["--until"],
        "notifications" => &["--dnd-until", "--previews"],
        "listen" => &["--count", "--timeout", "--event", "--events", "--join"],
        "report" => &["--reason", "--details"],
        // Each subcommand takes some of these (checked in `moderation`).
        "mod" => &["--limit", "--outcome", "--note", "--reason", "--month"],
        _ => return None,
    })
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> CliResult<Invocation>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut positional = Vec::new();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        if only_positional || !arg.starts_with("--") {
            positional.push(arg);
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if VALUE_FLAGS.contains(&name.as_str()) {
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or_else(|| CliError::Usage(format!("`{name}` needs a value")))?,
            };
            flags.push((name, Some(value)));
        } else if SWITCHES.contains(&name.as_str()) {
            if inline.is_some() {
                return Err(CliError::Usage(format!("`{name}` takes no value")));
            }
            flags.push((name, None));
        } else {
            return Err(CliError::Usage(format!("unknown option `{name}`")));
        }
    }
    if flags.iter().any(|(name, _)| name == "--help") || positional.first().is_some_and(|c| c == "-h") {
        return Ok(Invocation { globals: Globals::default(), command: Command::Help });
    }

    let Some((command, rest)) = positional.split_first() else {
        return Err(CliError::Usage("no command given".into()));
    };
    let allowed = command_flags(command).ok_or_else(|| CliError::Usage(format!("unknown command `{command}`")))?;
    for (name, _) in &flags {
        if !GLOBAL_FLAGS.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
            return Err(CliError::Usage(format!("`{command}` does not take `{name}`")));
        }
    }
    let flags = Flags(flags);
    let globals = Globals {
        endpoints_file: flags.last("--endpoints").or_else(|| flags.last("--endpoints-file")).map(PathBuf::from),
        http: flags.last("--http"),
        ws: flags.last("--ws"),
        token: flags.last("--token"),
        token_file: flags.last("--token-file").map(PathBuf::from),
    };
    let command = match command.as_str() {
        "help" => Command::Help,
        "register" | "login" => {
            let [username] = exactly(command, rest, ["username"])?;
            let password = flags.last("--password");
            let print_token = flags.has("--print-token");
            if command == "register" {
                Command::Register { username, password, print_token }
            } else {
                Command::Login { username, password, print_token }
            }
        }
        "logout" => {
            exactly(command, rest, [])?;
            Command::Logout
        }
        "whoami" => {
            exactly(command, rest, [])?;
            Command::Whoami
        }
        "export" => {
            exactly(command, rest, [])?;
            let out = flags.last("--out").unwrap_or_else(|| "chat-export.json".to_owned());
            Command::Export { out, timeout: flags.seconds("--timeout")? }
        }
        "users" => {
            let [search] = exactly(command, rest, ["search"])?;
            Command::Users { search, limit: flags.number("--limit")? }
        }
        "conversations" => {
            exactly(command, rest, [])?;
            Command::Conversations { limit: flags.number("--limit")? }
        }
        "create-private" => {
            let [user] = exactly(command, rest, ["user"])?;
            Command::CreatePrivate { user }
        }
        "create-group" => {
            let Some((name, members)) = rest.split_first() else {
                return Err(CliError::Usage("`create-group` needs <name> <user>...".into()));
            };
            if members.is_empty() {
                return Err(CliError::Usage("`create-group` needs at least one member besides you".into()));
            }
            Command::CreateGroup { name: name.clone(), members: members.to_vec() }
        }
        "history" => {
            let [conversation_id] = exactly(command, rest, ["conversationId"])?;
            Command::History {
                conversation_id,
                limit: flags.number("--limit")?,
                after_seq: flags.number("--after-seq")?,
            }
        }
        "send" => {
            let file = flags.last("--file");
            let (conversation_id, text) = match (&file, rest) {
                // With a file, the text is an optional caption.
                (Some(_), [conversation_id]) => (conversation_id.clone(), String::new()),
                _ => {
                    let [conversation_id, text] = exactly(command, rest, ["conversationId", "text"])?;
                    (conversation_id, text)
                }
            };
            Command::Send {
                conversation_id,
                text,
                file,
                client_message_id: flags.last("--client-message-id"),
                timeout: flags.seconds("--timeout")?,
                mentions: flags.all("--mention").collect(),
            }
        }
        "notify" => {
            let [conversation_id, level] = exactly(command, rest, ["conversationId", "level"])?;
            if !matches!(level.as_str(), "all" | "mentions" | "none") {
                return Err(CliError::Usage("`notify` takes a level of all, mentions or none".into()));
            }
            Command::Notify { conversation_id, level, until: flags.last("--until") }
        }
        "notifications" => {
            exactly(command, rest, [])?;
            let dnd_until = flags.last("--dnd-until").map(|until| Some(until).filter(|u| u != "off"));
            let previews = match flags.last("--previews").as_deref() {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(other) => return Err(CliError::Usage(format!("`--previews` is on or off, not `{other}`"))),
            };
            Command::Notifications { dnd_until, previews }
        }
        "listen" => {
            exactly(command, rest, [])?;
            let count: Option<u64> = flags.number("--count")?;
            if count == Some(0) {
                return Err(CliError::Usage("`--count` must be at least 1".into()));
            }
            let events = flags
                .all("--event")
                .chain(flags.all("--events"))
                .flat_map(|list| list.split(',').map(str::trim).map(str::to_owned).collect::<Vec<_>>())
                .filter(|event| !event.is_empty())
                .collect();
            Command::Listen { count, timeout: flags.seconds("--timeout")?, events, join: flags.all("--join").collect() }
        }
        "report" => {
            let [target] = exactly(command, rest, ["target"])?;
            let reason = flags.last("--reason").ok_or_else(|| CliError::Usage("`report` needs --reason".into()))?;
            Command::Report { target, reason, details: flags.last("--details") }
        }
        "mod" => Command::Moderate(moderation(rest, &flags)?),
        _ => unreachable!("command_flags() knows every command"),
    };
    Ok(Invocation { globals, command })
}

/// `mod <subcommand> ...`, each subcommand with only its own flags.
fn moderation(rest: &[String], flags: &Flags) -> CliResult<Moderation> {
    let Some((sub, rest)) = rest.split_first() else {
        return Err(CliError::Usage(
            "`mod` needs a subcommand: reports, resolve, delete-message, suspend, unsuspend, audit".into(),
        ));
    };
    let allowed: &[&str] = match sub.as_str() {
        "reports" => &["--limit"],
        "resolve" => &["--outcome", "--note"],
        "suspend" => &["--reason"],
        "audit" => &["--month", "--limit"],
        _ => &[],
    };
    for (name, _) in &flags.0 {
        if !GLOBAL_FLAGS.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
            return Err(CliError::Usage(format!("`mod {sub}` does not take `{name}`")));
        }
    }
    let command = format!("mod {sub}");
    Ok(match sub.as_str() {
        "reports" => {
            exactly(&command, rest, [])?;
            Moderation::Reports { limit: flags.number("--limit")? }
        }
        "resolve" => {
            let [target] = exactly(&command, rest, ["target"])?;
            let outcome = match flags.last("--outcome").as_deref() {
                Some(outcome @ ("dismissed" | "actioned")) => outcome.to_owned(),
                _ => return Err(CliError::Usage("`mod resolve` needs --outcome dismissed|actioned".into())),
            };
            Moderation::Resolve { target, outcome, note: flags.last("--note") }
        }
        "delete-message" => {
            let [message_id] = exactly(&command, rest, ["messageId"])?;
            Moderation::DeleteMessage { message_id }
        }
        "suspend" => {
            let [user] = exactly(&command, rest, ["user"])?;
            Moderation::Suspend { user, reason: flags.last("--reason") }
        }
        "unsuspend" => {
            let [user] = exactly(&command, rest, ["user"])?;
            Moderation::Unsuspend { user }
        }
        "audit" => {
            exactly(&command, rest, [])?;
            Moderation::Audit { month: flags.last("--month"), limit: flags.number("--limit")? }
        }
        other => return Err(CliError::Usage(format!("unknown `mod` subcommand `{other}`"))),
    })
}

/// Exactly the named positional arguments, or a usage error naming what is missing or extra.
fn exactly<const N: usize>(command: &str, rest: &[String], names: [&str; N]) -> CliResult<[String; N]> {
    let expected = names.iter().map(|name| format!("<{name}>")).collect::<Vec<_>>().join(" ");
    if rest.len() < N {
        return Err(CliError::Usage(format!("`{command}` needs {expected}")));
    }
    if rest.len() > N {
        let extra = &rest[N];
        let hint = if N == 0 { String::new() } else { format!(" (it takes {expected}; quote text with spaces)") };
        return Err(CliError::Usage(format!("`{command}`: unexpected argument `{extra}`{hint}")));
    }
    Ok(std::array::from_fn(|i| rest[i].clone()))
}

struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn last(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find(|(flag, _)| flag == name).and_then(|(_, value)| value.clone())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.0.iter().filter(move |(flag, _)| flag == name).filter_map(|(_, value)| value.clone())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(flag, _)| flag == name)
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> CliResult<Option<T>> {
        self.last(name)
            .map(|text| {
                text.parse().map_err(|_| CliError::Usage(format!("`{name}` must be a whole number, not `{text}`")))
            })
            .transpose()
    }

    fn seconds(&self, name: &str) -> CliResult<Option<Duration>> {
        self.last(name)
            .map(|text| {
                text.parse::<f64>()
                    .ok()
                    .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        CliError::Usage(format!("`{name}` must be seconds between 0 and 86400, not `{text}`"))
                    })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Invocation {
        parse(line.split_whitespace()).unwrap_or_else(|e| panic!("`{line}` should parse: {e}"))
    }

    fn refused(line: &str) -> String {
        match parse(line.split_whitespace()) {
            Err(CliError::Usage(message)) => message,
            other => panic!("`{line}` should be a usage error, got {other:?}"),
        }
    }

    #[test]
    fn reports_and_operator_commands_take_their_own_flags() {
        assert_eq!(
            parsed("report message:c1-3 --reason spam --details=again").command,
            Command::Report { target: "message:c1-3".into(), reason: "spam".into(), details: Some("again".into()) }
        );
        assert!(refused("report user:bob").contains("--reason"));
        assert_eq!(
            parsed("mod resolve user:bob --outcome actioned").command,
            Command::Moderate(Moderation::Resolve {
                target: "user:bob".into(),
                outcome: "actioned".into(),
                note: None
            })
        );
        assert_eq!(
            parsed("mod audit --month 2026-12").command,
            Command::Moderate(Moderation::Audit { month: Some("2026-12".into()), limit: None })
        );
        assert!(refused("mod resolve user:bob --outcome maybe").contains("dismissed|actioned"));
        assert!(refused("mod suspend bob --month 2026-12").contains("does not take"));
        assert!(refused("mod").contains("subcommand"));
        assert!(refused("mod ban bob").contains("unknown"));
        assert!(refused("mod unsuspend").contains("<user>"));
    }

    #[test]
    fn export_saves_to_a_file_of_ones_choosing() {
        assert_eq!(parsed("export").command, Command::Export { out: "chat-export.json".into(), timeout: None });
        assert_eq!(
            parsed("export --out me.json --timeout 60").command,
            Command::Export { out: "me.json".into(), timeout: Some(Duration::from_secs(60)) }
        );
        assert!(refused("export now").contains("export"));
        assert!(refused("export --limit 3").contains("--limit"));
    }

    #[test]
    fn flags_go_anywhere_and_globals_are_collected() {
        let a = parsed("--ws ws://h/prod send c1 hello --http=http://h --token t");
        let b = parsed("send --token t c1 --http http://h hello --ws=ws://h/prod");
        assert_eq!(a, b);
        assert_eq!(a.globals.ws.as_deref(), Some("ws://h/prod"));
        assert_eq!(a.globals.http.as_deref(), Some("http://h"));
        assert_eq!(a.globals.token.as_deref(), Some("t"));
        assert_eq!(
            a.command,
            Command::Send {
                conversation_id: "c1".into(),
                text: "hello".into(),
                file: None,
                client_message_id: None,
                timeout: None,
                mentions: vec![]
            }
        );
    }

    #[test]
    fn send_a_file_with_or_without_a_caption() {
        let Command::Send { text, file, .. } = parse(["send", "c1", "--file", "a.png"]).unwrap().command else {
            panic!("send")
        };
        assert_eq!((text.as_str(), file.as_deref()), ("", Some("a.png")));
        let Command::Send { text, .. } = parse(["send", "c1", "look", "--file", "a.png"]).unwrap().command else {
            panic!("send")
        };
        assert_eq!(text, "look");
        assert!(parse(["send", "c1"]).is_err(), "text is required without a file");
    }

    #[test]
    fn send_takes_text_with_spaces_as_one_argument_and_dashes_after_double_dash() {
        let invocation = parse(["send", "c1", "hello there", "--timeout", "2.5"]).unwrap();
        let Command::Send { text, timeout, .. } = invocation.command else { panic!("send") };
        assert_eq!(text, "hello there");
        assert_eq!(timeout, Some(Duration::from_millis(2500)));
        let invocation = parse(["send", "c1", "--", "--not-a-flag"]).unwrap();
        let Command::Send { text, .. } = invocation.command else { panic!("send") };
        assert_eq!(text, "--not-a-flag");
    }

    #[test]
    fn mentions_and_notification_settings() {
        let Command::Send { mentions, .. } = parsed("send c1 hi --mention bob --mention carol").command else {
            panic!("send")
        };
        assert_eq!(mentions, ["bob", "carol"]);
        assert_eq!(
            parsed("notify c1 mentions --until 2030-01-01T00:00:00Z").command,
            Command::Notify {
                conversation_id: "c1".into(),
                level: "mentions".into(),
                until: Some("2030-01-01T00:00:00Z".into())
            }
        );
        assert!(refused("notify c1 loud").contains("all, mentions or none"));
        assert_eq!(parsed("notifications").command, Command::Notifications { dnd_until: None, previews: None });
        assert_eq!(
            parsed("notifications --dnd-until off --previews off").command,
            Command::Notifications { dnd_until: Some(None), previews: Some(false) }
        );
        assert!(refused("notifications --previews maybe").contains("on or off"));
        assert!(refused("notify c1 all --previews on").contains("does not take"));
    }

    #[test]
    fn listen_options() {
        let invocation = parsed(
            "listen --count 2 --timeout 30 --event receive_message --events user_online,typing_status --join c1 --join c2",
        );
        assert_eq!(
            invocation.command,
            Command::Listen {
                count: Some(2),
                timeout: Some(Duration::from_secs(30)),
                events: vec!["receive_message".into(), "user_online".into(), "typing_status".into()],
                join: vec!["c1".into(), "c2".into()],
            }
        );
        assert_eq!(
            parsed("listen").command,
            Command::Listen { count: None, timeout: None, events: vec![], join: vec![] }
        );
    }

    #[test]
    fn account_and_conversation_commands() {
        assert_eq!(
            parsed("login alice --password pw --print-token").command,
            Command::Login { username: "alice".into(), password: Some("pw".into()), print_token: true }
        );
        assert_eq!(
            parsed("register bob").command,
            Command::Register { username: "bob".into(), password: None, print_token: false }
        );
        assert_eq!(
            parsed("create-group team bob carol").command,
            Command::CreateGroup { name: "team".into(), members: vec!["bob".into(), "carol".into()] }
        );
        assert_eq!(
            parsed("history c1 --after-seq 7 --limit 50").command,
            Command::History { conversation_id: "c1".into(), limit: Some(50), after_seq: Some(7) }
        );
        assert_eq!(parsed("conversations").command, Command::Conversations { limit: None });
        assert_eq!(parsed("whoami --token-file /tmp/t").globals.token_file, Some(PathBuf::from("/tmp/t")));
        assert_eq!(parsed("--endpoints e.json logout").globals.endpoints_file, Some(PathBuf::from("e.json")));
    }

    #[test]
    fn help_wins_over_everything() {
        assert_eq!(parsed("help").command, Command::Help);
        assert_eq!(parsed("send --help").command, Command::Help);
        assert_eq!(parsed("-h").command, Command::Help);
    }

    #[test]
    fn bad_command_lines_are_usage_errors_that_say_what_is_wrong() {
        assert_eq!(refused(""), "no command given");
        assert_eq!(refused("fly"), "unknown command `fly`");
        assert_eq!(refused("send c1"), "`send` needs <conversationId> <text>");
        assert!(refused("send c1 hello there").contains("unexpected argument `there`"));
        assert_eq!(refused("listen --count"), "`--count` needs a value");
        assert_eq!(refused("listen --count many"), "`--count` must be a whole number, not `many`");
        assert_eq!(refused("listen --count 0"), "`--count` must be at least 1");
        assert!(refused("listen --timeout -1").starts_with("`--timeout` must be seconds"));
        assert_eq!(refused("send c1 hi --password x"), "`send` does not take `--password`");
        assert_eq!(refused("whoami --colour"), "unknown option `--colour`");
        assert_eq!(refused("login --print-token=yes alice"), "`--print-token` takes no value");
        assert_eq!(refused("create-group team"), "`create-group` needs at least one member besides you");
        assert_eq!(refused("whoami extra"), "`whoami`: unexpected argument `extra`");
    }
}
