//! Per function: cold start, peak memory under load, binary and zip size.
//!
//! Cold start is measured by playing the Lambda Runtime API here: the benchmark starts the `bootstrap` binary
//! with the function's deployed environment, and times the first `GET /runtime/invocation/next` ("ready for
//! the first event": configuration read, AWS clients built, the signing key fetched where needed) and the
//! first response ("first answer"). Peak memory is the high-water mark (`VmHWM`) of the function processes
//! the emulator started while the benchmark loaded it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::stats::{ms, percentile};

/// A deployed function, as `cargo xtask bench` describes it.
#[derive(Clone, Debug, Deserialize)]
pub struct Function {
    /// `ws-connect`, `ws-disconnect`, `ws-message`, `rest-api`.
    pub binary: String,
    /// The function's name in the emulator.
    pub name: String,
    /// The `bootstrap` built for it.
    pub path: PathBuf,
    /// Its environment as deployed.
    pub environment: HashMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FunctionResult {
    pub binary: String,
    pub cold_ready_ms: f64,
    pub cold_answer_ms: f64,
    pub peak_rss_mb: f64,
    pub processes_seen: usize,
    pub binary_mb: f64,
    pub zip_mb: f64,
}

enum RuntimeEvent {
    Ready(Instant),
    Answered(Instant, bool),
}

/// Serves the Runtime API on one connection: hands out `event` once, reports the first poll and the answer.
async fn serve(stream: TcpStream, event: Value, report: UnboundedSender<RuntimeEvent>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let at = Instant::now();
        let response = if request_line.starts_with("GET") && request_line.contains("/invocation/next") {
            let _ = report.send(RuntimeEvent::Ready(at));
            let body = event.to_string();
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-1\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            let answered = request_line.contains("/response");
            let _ = report.send(RuntimeEvent::Answered(at, answered));
            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_owned()
        };
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One cold start: (ready, answered) in ms after the process was started.
async fn cold_start(function: &Function, event: &Value) -> Result<(f64, f64), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (report, mut events) = unbounded_channel();
    let event = event.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, event.clone(), report.clone()));
        }
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&function.path)
        .envs(&function.environment)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &function.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", function.path.display()))?;
    let mut ready = None;
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Some(RuntimeEvent::Ready(at))) => {
                ready.get_or_insert(at);
            }
            Ok(Some(RuntimeEvent::Answered(at, true))) => break Ok(at),
            Ok(Some(RuntimeEvent::Answered(_, false))) => break Err(format!("{} reported an error", function.binary)),
            Ok(None) | Err(_) => break Err(format!("{} did not answer", function.binary)),
        }
    };
    let _ = child.kill().await;
    server.abort();
    let answered = outcome?;
    let ready = ready.ok_or("answered without polling")?;
    Ok((ms(ready.duration_since(started)), ms(answered.duration_since(started))))
}

/// Median cold start over `runs` starts.
pub async fn cold_starts(function: &Function, event: &Value, runs: usize) -> (f64, f64) {
    let mut ready = Vec::new();
    let mut answered = Vec::new();
    for _ in 0..runs {
        match cold_start(function, event).await {
            Ok((r, a)) => {
                ready.push(r);
                answered.push(a);
            }
            Err(e) => eprintln!("cold start: {e}"),
        }
    }
    (percentile(&ready, 50.0).unwrap_or(f64::NAN), percentile(&answered, 50.0).unwrap_or(f64::NAN))
}

/// The event each function is cold-started with: the cheapest real request it serves.
pub fn first_event(binary: &str, token: &str) -> Value {
    let ws = |route: &str, event_type: &str, body: Option<&str>, query: Option<Value>| {
        json!({
            "headers": {}, "queryStringParameters": query, "body": body, "isBase64Encoded": false,
            "requestContext": {
                "routeKey": route, "eventType": event_type, "connectionId": "benchcoldstart1",
                "domainName": "local", "stage": "prod", "requestId": "cold", "apiId": "local",
                "connectedAt": 0, "requestTimeEpoch": 0
            }
        })
    };
    match binary {
        "ws-connect" => ws("$connect", "CONNECT", None, Some(json!({ "token": token }))),
        "ws-disconnect" => ws("$disconnect", "DISCONNECT", None, None),
        "ws-message" => ws("ping", "MESSAGE", Some(r#"{"action":"ping"}"#), None),
        // One SQS record holding an empty job: parsed, nothing to post, no failure reported.
        "fanout-worker" => json!({
            "Records": [{
                "messageId": "cold", "receiptHandle": "cold", "body": r#"{"frames":[],"targets":[],"attempt":1}"#,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:cold", "awsRegion": "us-east-1"
            }]
        }),
        // An empty batch of the stream (events, push planning) or of the push queue.
        "events-worker" | "push-worker" | "push-sender" => json!({ "Records": [] }),
        // A bucket notification of an object that is no upload: parsed, logged, nothing to process.
        "attachment-processor" => json!({ "Records": [{ "s3": { "object": { "key": "cold/start" } } }] }),
        _ => json!({
            "version": "2.0", "routeKey": "GET /users/me", "rawPath": "/users/me", "rawQueryString": "",
            "headers": { "authorization": format!("Bearer {token}") }, "isBase64Encoded": false,
            "requestContext": {
                "accountId": "000000000000", "apiId": "local", "domainName": "local", "domainPrefix": "local",
                "http": { "method": "GET", "path": "/users/me", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                          "userAgent": "bench" },
                "requestId": "cold", "routeKey": "GET /users/me", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
            }
        }),
    }
}

/// Peak resident memory (MB) and process count per function, over the processes running now whose
/// executable is one of `functions`' binaries (compared by content: the emulator runs copies).
pub fn peak_rss(functions: &[Function], hashes: &mut HashMap<PathBuf, Option<u64>>) -> HashMap<String, (f64, usize)> {
    let wanted: HashMap<u64, &str> =
        functions.iter().filter_map(|f| Some((content_hash(&f.path, hashes)?, f.binary.as_str()))).collect();
    let mut peaks: HashMap<String, (f64, usize)> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return peaks };
    for entry in entries.flatten() {
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else { continue };
        if exe.file_name().is_none_or(|name| name != "bootstrap") {
            continue;
        }
        let Some(binary) = content_hash(&exe, hashes).and_then(|h| wanted.get(&h)) else { continue };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let hwm_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let peak = peaks.entry((*binary).to_owned()).or_default();
        peak.0 = peak.0.max(hwm_kb / 1024.0);
        peak.1 += 1;
    }
    peaks
}

fn content_hash(path: &Path, cache: &mut HashMap<PathBuf, Option<u64>>) -> Option<u64> {
    *cache.entry(path.to_owned()).or_insert_with(|| {
        use std::hash::{Hash, Hasher};
        let bytes = std::fs::read(path).ok()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        Some(hasher.finish())
    })
}

/// Size of the binary and of its deployment zip (deflate, as `sam`/`aws cloudformation package` make it), MB.
pub fn sizes(function: &Function) -> (f64, f64) {
    let binary = std::fs::metadata(&function.path).map_or(f64::NAN, |m| m.len() as f64 / 1e6);
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\n\
                  z.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let zip = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&function.path)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |bytes| bytes / 1e6);
    (binary, zip)
}
