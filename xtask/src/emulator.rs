//! Starting, health-checking and stopping MiniStack.
//!
//! The emulator runs in its own process group, so the Lambda `bootstrap`
//! processes it spawns can be stopped together with it, and a Ctrl-C in the
//! terminal reaches only us: we then stop the group in an orderly way
//! (SIGTERM lets MiniStack save persistent state, SIGKILL after a deadline).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::arch;
use crate::cmd::signal_group;
use crate::deploy::sandbox_aws_env;
use crate::paths::Paths;
use crate::{DEFAULT_PORT, Res, STARTUP_TIMEOUT, interrupted};

const HEALTH_PATH: &str = "/_localstack/health";
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Time MiniStack gets to shut down (and save state) after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Time the process group gets to disappear after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct EmulatorConfig {
    pub port: u16,
    /// Receives the emulator's stdout and stderr (truncated at start).
    pub log: PathBuf,
    /// MiniStack's `STATE_DIR` (it keeps a few keys there even without persistence).
    pub state_dir: PathBuf,
    /// `PERSIST_STATE=1`: save state on shutdown and reload it at start.
    pub persist: bool,
}

/// A running emulator; dropping it stops the whole process group.
pub struct Emulator {
    child: Child,
    port: u16,
    log: PathBuf,
    /// The emulator's `TMPDIR` (extracted function code, pid file), removed
    /// on stop; MiniStack would otherwise leave it behind in /tmp.
    scratch: PathBuf,
    stopped: bool,
}

impl Emulator {
    /// Start MiniStack through `localstack/ministack_launcher.py` and wait
    /// (bounded) until its health check answers.
    pub fn start(paths: &Paths, config: EmulatorConfig) -> Res<Self> {
        let EmulatorConfig { port, log, state_dir, persist } = config;
        let scratch = paths.local.join("tmp").join(format!("ministack-{port}"));
        for dir in [&state_dir, &scratch] {
            fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        let log_file = File::create(&log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|err| format!("cannot reuse {}: {err}", log.display()))?;

        let launcher = paths.localstack.join("ministack_launcher.py");
        let mut command = Command::new(paths.venv_bin("python"));
        command
            .arg(&launcher)
            .current_dir(&paths.root)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .process_group(0)
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("STATE_DIR", &state_dir)
            .env("PERSIST_STATE", if persist { "1" } else { "0" })
            .env("LOG_LEVEL", "INFO")
            // Listeners we do not use would claim fixed ports (8883 for IoT
            // mTLS) and collide between a dev and a test emulator.
            .env("IOT_MTLS_ENABLED", "0")
            .env("SFTP_ENABLED", "0")
            .env("PYTHONUNBUFFERED", "1")
            // Where qemu-aarch64 finds the arm64 C library when the functions are arm64 (see arch.rs).
            .env("QEMU_LD_PREFIX", arch::QEMU_LD_PREFIX)
            .env("TMPDIR", &scratch);
        // MiniStack hands its own environment to the Lambda processes, so
        // they too only ever see the sandboxed endpoint and test credentials.
        sandbox_aws_env(&mut command, &paths.local, port);

        println!(
            "starting MiniStack (log: {}, state: {}{})",
            paths.display(&log),
            paths.display(&state_dir),
            if persist { ", persistent" } else { ", fresh" }
        );
        let child =
            command.spawn().map_err(|err| format!("cannot start `{}`: {err}", crate::cmd::describe(&command)))?;
        let mut emulator = Emulator { child, port, log, scratch, stopped: false };
        emulator.wait_healthy(STARTUP_TIMEOUT)?; // on error, Drop stops it
        Ok(emulator)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Res<()> {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}{HEALTH_PATH}", self.port);
        println!("waiting up to {}s for {url}", timeout.as_secs());
        loop {
            if is_healthy(self.port) {
                println!(
                    "MiniStack (pid {}) is healthy after {:.1}s",
                    self.child.id(),
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                let _ = fs::remove_dir_all(&self.scratch);
                self.print_log_tail(40);
                return Err(format!("MiniStack exited during startup ({status}); see {}", self.log.display()));
            }
            if interrupted() {
                return Err("interrupted while waiting for MiniStack".to_string());
            }
            if started.elapsed() > timeout {
                self.print_log_tail(40);
                return Err(format!(
                    "MiniStack did not answer {url} within {}s; see {}",
                    timeout.as_secs(),
                    self.log.display()
                ));
            }
            sleep(POLL_INTERVAL);
        }
    }

    /// Print new log lines as they arrive until Ctrl-C or the emulator exits.
    pub fn follow_log_until_interrupted(&mut self) -> Res<()> {
        let mut file = File::open(&self.log).map_err(|err| format!("cannot open {}: {err}", self.log.display()))?;
        // Start at the end: startup and deploy chatter is already behind us.
        file.seek(SeekFrom::End(0)).map_err(|err| format!("cannot read {}: {err}", self.log.display()))?;
        let mut buffer = [0u8; 64 * 1024];
        let mut stdout = std::io::stdout();
        loop {
            match file.read(&mut buffer) {
                Ok(0) => {
                    if interrupted() {
                        return Ok(());
                    }
                    if let Ok(Some(status)) = self.child.try_wait() {
                        return Err(format!("MiniStack exited unexpectedly ({status}); see {}", self.log.display()));
                    }
                    sleep(POLL_INTERVAL);
                }
                Ok(read) => {
                    let _ = stdout.write_all(&buffer[..read]);
                    let _ = stdout.flush();
                }
                Err(err) => return Err(format!("cannot read {}: {err}", self.log.display())),
            }
        }
    }

    pub fn print_log_tail(&self, lines: usize) {
        let text = fs::read(&self.log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        eprintln!("\n---- last {} lines of {} ----", tail.len(), self.log.display());
        for line in tail {
            eprintln!("{line}");
        }
        eprintln!("---- end of emulator log ----");
    }

    /// Stop the emulator's process group: SIGTERM, wait, then SIGKILL.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.child.id();
        let started = Instant::now();
        println!("stopping MiniStack (process group {pgid})");
        signal_group(pgid, "TERM");
        if !self.wait_group_gone(pgid, STOP_GRACE) {
            eprintln!("MiniStack did not stop within {}s; sending SIGKILL", STOP_GRACE.as_secs());
            signal_group(pgid, "KILL");
            if !self.wait_group_gone(pgid, KILL_GRACE) {
                eprintln!("warning: processes of group {pgid} are still running");
                return;
            }
        }
        println!("MiniStack stopped after {:.1}s", started.elapsed().as_secs_f64());
        let _ = fs::remove_dir_all(&self.scratch);
    }

    /// Reap our child and wait until no live process is left in the group.
    fn wait_group_gone(&mut self, pgid: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let _ = self.child.try_wait();
            if !group_alive(pgid) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Does the process group still have a live (non-zombie) member?
fn group_alive(pgid: u32) -> bool {
    match fs::read_dir("/proc") {
        Ok(entries) => entries.flatten().any(|entry| {
            let is_pid = entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit());
            is_pid
                && fs::read_to_string(entry.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        // "pid (comm) state ppid pgrp ..."; comm may contain spaces.
                        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                        let (state, pgrp) = (*fields.first()?, fields.get(2)?.parse::<u32>().ok()?);
                        Some(pgrp == pgid && state != "Z" && state != "X")
                    })
                    .unwrap_or(false)
        }),
        // No procfs (macOS): ask the kernel whether the group exists at all.
        Err(_) => Command::new("kill")
            .args(["-s", "0", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false),
    }
}

/// Is `port` free to bind on 127.0.0.1?
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A free port chosen by the OS, never the default 4566 (left for `dev`).
pub fn free_port() -> Res<u16> {
    for _ in 0..10 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|err| format!("cannot bind 127.0.0.1:0 to find a free port: {err}"))?;
        let port = listener.local_addr().map_err(|err| format!("cannot read the bound address: {err}"))?.port();
        if port != DEFAULT_PORT {
            return Ok(port);
        }
    }
    Err("could not find a free port on 127.0.0.1".to_string())
}

/// One bounded raw HTTP GET of the health endpoint; true on a 200.
pub fn is_healthy(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // The status line is all we need: "HTTP/1.1 200 OK".
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < 64 && !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    parts.next().is_some_and(|version| version.starts_with("HTTP/")) && parts.next() == Some("200")
}
