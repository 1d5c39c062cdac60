//! The reference web app (`clients/web`): build it, serve it on loopback next to a generated `config.json`, and
//! run its browser tests (Chromium driven by playwright-core) against a deployed stack.
//!
//! One build serves any stack: the app reads its endpoints at run time from `config.json` next to
//! `index.html`, so serving is a small static file server here (`tiny_http` on a thread, stopped with its
//! guard) rather than a Node process. The app compiles the SDK from `clients/typescript/src` through a Vite alias, so the SDK needs
//! no separate build or `npm ci`.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::clients::{self, npm};
use crate::cmd::run_bounded;
use crate::deploy::Endpoints;
use crate::paths::Paths;
use crate::{Res, apt};

/// Where Debian's `chromium` package puts the browser; `CHAT_CHROMIUM` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian packages the browser tests need, each with a file that shows it is installed. The emoji font makes
/// reactions render in screenshots.
const APT_PACKAGES: [(&str, &str); 2] =
    [("chromium", CHROMIUM), ("fonts-noto-color-emoji", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")];
/// Bound on `npm run build` and `npm run typecheck`.
const NPM_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on the whole browser suite (each test has its own, shorter, timeouts).
const BROWSER_TESTS_TIMEOUT: Duration = Duration::from_secs(600);
/// `serve` prefers this port (Vite's), so the dev URL stays the same across runs; any free port otherwise.
const PREFERRED_PORT: u16 = 5173;
/// How often the server thread looks whether it should stop.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn web_dir(paths: &Paths) -> PathBuf {
    paths.root.join("clients").join("web")
}

/// The app's dependencies (see [`clients::ensure_node_modules`]), then `npm run build` (type check + `vite build`
/// into `clients/web/dist`).
pub fn build(paths: &Paths) -> Res<()> {
    let dir = web_dir(paths);
    clients::ensure_node_modules(paths, &dir)?;
    run_bounded(npm(&dir).args(["run", "build"]), NPM_TIMEOUT)
}

/// The app's and its tests' type check (`npm run typecheck`): part of the fast gate, no stack needed.
pub fn typecheck(paths: &Paths) -> Res<()> {
    let dir = web_dir(paths);
    clients::ensure_node_modules(paths, &dir)?;
    run_bounded(npm(&dir).args(["run", "typecheck"]), NPM_TIMEOUT)
}

/// Serves `clients/web/dist` and a `config.json` naming the stack's endpoints on 127.0.0.1 until dropped.
pub fn serve(paths: &Paths, endpoints: &Endpoints) -> Res<WebServer> {
    WebServer::start(web_dir(paths).join("dist"), config_json(&endpoints.http, &endpoints.websocket))
}

/// What the app reads at start: the two endpoints, nothing else about the stack.
fn config_json(http: &str, websocket: &str) -> String {
    serde_json::to_string_pretty(&json!({ "http": http, "websocket": websocket }))
        .expect("JSON values always serialise")
}

/// A static file server thread (`tiny_http`); dropping it stops the thread.
pub struct WebServer {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    fn start(root: PathBuf, config: String) -> Res<Self> {
        if !root.join("index.html").is_file() {
            return Err(format!("{} has no index.html: build the web app first", root.display()));
        }
        let server = Server::http((Ipv4Addr::LOCALHOST, PREFERRED_PORT))
            .or_else(|_| Server::http((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|err| format!("cannot bind 127.0.0.1 for the web app: {err}"))?;
        let port = server.server_addr().to_ip().map(|address| address.port()).ok_or("the web server has no port")?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("web-server".to_string())
                .spawn(move || {
                    // Polled, so a drop stops the thread within one interval.
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(Some(request)) = server.recv_timeout(POLL_INTERVAL) {
                            let _ = answer(request, &root, &config);
                        }
                    }
                })
                .map_err(|err| format!("cannot start the web server thread: {err}"))?
        };
        Ok(WebServer { url: format!("http://127.0.0.1:{port}/"), stop, thread: Some(thread) })
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `GET`/`HEAD` of `config.json` (generated) or a file of the build; anything else is 404 or 405.
fn answer(request: Request, root: &Path, config: &str) -> std::io::Result<()> {
    if !matches!(request.method(), Method::Get | Method::Head) {
        return request.respond(text(405, "GET only"));
    }
    let path = request.url().split(['?', '#']).next().unwrap_or_default().to_owned();
    if path == "/config.json" {
        return request.respond(file(config.as_bytes().to_vec(), "application/json"));
    }
    match resolve(root, &path).and_then(|found| fs::read(&found).ok().map(|body| (found, body))) {
        Some((found, body)) => request.respond(file(body, content_type(&found))),
        None => request.respond(text(404, "not found")),
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header names and values are valid")
}

/// A file as the app gets it. Hashed assets could be cached for ever; everything is local and small, so
/// nothing is.
fn file(body: Vec<u8>, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn text(status: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    file(body.as_bytes().to_vec(), "text/plain; charset=utf-8").with_status_code(status)
}

/// The file under `root` a URL path names (`/` is `index.html`); `None` for anything that would leave `root`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "index.html" } else { relative };
    let relative = Path::new(relative);
    if relative.components().any(|part| !matches!(part, Component::Normal(_))) || path.contains('\\') {
        return None;
    }
    let file = root.join(relative);
    file.is_file().then_some(file)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|ext| ext.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Chromium for the browser tests: `CHAT_CHROMIUM` if set, else Debian's `/usr/bin/chromium`, installed
/// (non-interactively, with the emoji font) by apt-get when missing. Returns the browser's path.
pub fn ensure_chromium() -> Res<PathBuf> {
    if let Some(path) = std::env::var_os("CHAT_CHROMIUM") {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("CHAT_CHROMIUM={} does not exist", path.display())) };
    }
    apt::ensure(&APT_PACKAGES)?;
    println!("{CHROMIUM} is installed");
    Ok(PathBuf::from(CHROMIUM))
}

/// The browser suite (`clients/web/tests`, vitest + playwright-core, two users in two browser contexts) against
/// the stack named by `endpoints_file`: builds the app, serves it, runs the tests. Screenshots land in
/// `.local/artifacts/browser/`.
pub fn browser_tests(paths: &Paths, endpoints_file: &Path) -> Res<()> {
    let chromium = ensure_chromium()?;
    build(paths)?;
    let text =
        fs::read_to_string(endpoints_file).map_err(|err| format!("cannot read {}: {err}", endpoints_file.display()))?;
    let endpoints: Value = serde_json::from_str(&text).map_err(|err| format!("{}: {err}", endpoints_file.display()))?;
    let field = |name: &str| {
        endpoints[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{} has no `{name}`", endpoints_file.display()))
    };
    let dir = web_dir(paths);
    let server = WebServer::start(dir.join("dist"), config_json(&field("http")?, &field("websocket")?))?;
    let artifacts = paths.local.join("artifacts").join("browser");
    fs::create_dir_all(&artifacts).map_err(|err| format!("cannot create {}: {err}", artifacts.display()))?;
    println!("web app at {}; screenshots in {}", server.url(), paths.display(&artifacts));
    let result = run_bounded(
        npm(&dir)
            .args(["run", "test:browser"])
            .env("CHAT_ENDPOINTS_FILE", endpoints_file)
            .env("CHAT_WEB_URL", server.url())
            .env("CHAT_CHROMIUM", &chromium)
            .env("CHAT_ARTIFACTS_DIR", &artifacts),
        BROWSER_TESTS_TIMEOUT,
    );
    drop(server);
    result
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn resolve_stays_inside_the_root() {
        let root = std::env::temp_dir().join(format!("xtask-web-{}", std::process::id()));
        fs::create_dir_all(root.join("assets")).unwrap();
        fs::write(root.join("index.html"), "<html>").unwrap();
        fs::write(root.join("assets").join("app.js"), "").unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/assets/app.js"), Some(root.join("assets").join("app.js")));
        assert_eq!(resolve(&root, "/../Cargo.toml"), None);
        assert_eq!(resolve(&root, "/assets/../../etc/passwd"), None);
        assert_eq!(resolve(&root, "/missing.js"), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn serves_files_and_config_until_dropped() {
        let root = std::env::temp_dir().join(format!("xtask-web-serve-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("index.html"), "<html>hi</html>").unwrap();
        let server = WebServer::start(root.clone(), config_json("http://h", "ws://w")).unwrap();
        let get = |path: &str| {
            let address = server.url().trim_start_matches("http://").trim_end_matches('/').to_string();
            let mut stream = TcpStream::connect(address).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            text
        };
        assert!(get("/").ends_with("<html>hi</html>"));
        assert!(get("/config.json").contains("\"websocket\": \"ws://w\""));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        let address = server.url().trim_start_matches("http://").trim_end_matches('/').to_string();
        drop(server);
        // tiny_http closes its listener from its own accept thread, just after the drop: give it a moment.
        let closed = (0..40).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            TcpStream::connect(&address).is_err()
        });
        assert!(closed, "still listening 2 s after the drop");
        fs::remove_dir_all(&root).unwrap();
    }
}
