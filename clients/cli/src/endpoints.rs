//! Where the stack is: `--http`/`--ws`, else `CHAT_HTTP`/`CHAT_WS`, else the endpoints file (`--endpoints` or
//! `CHAT_ENDPOINTS_FILE`, the JSON `cargo xtask dev` writes to `.local/endpoints.json`). Each URL is resolved on
//! its own, so a file can be combined with one overridden URL; a command only fails for the URL it needs.
//! `http://` / `ws://` reach a local stack, `https://` / `wss://` a deployed one (over TLS, src/tls.rs).

use std::path::Path;

use crate::args::Globals;
use crate::error::{CliError, CliResult};

/// Reads an environment variable (the real environment in `main`, a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    http: Option<String>,
    ws: Option<String>,
}

/// The fields of an endpoints file the CLI reads (others, like `awsEndpoint`, are ignored).
#[derive(serde::Deserialize)]
struct EndpointsFile {
    http: Option<String>,
    websocket: Option<String>,
}

impl Endpoints {
    pub fn resolve(globals: &Globals, env: Env) -> CliResult<Endpoints> {
        let file_path = globals
            .endpoints_file
            .clone()
            .or_else(|| env("CHAT_ENDPOINTS_FILE").filter(|path| !path.is_empty()).map(Into::into));
        let file = match &file_path {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        let pick = |flag: &Option<String>, variable: &str, from_file: Option<&String>| {
            flag.clone().or_else(|| env(variable).filter(|url| !url.is_empty())).or_else(|| from_file.cloned())
        };
        let http = pick(&globals.http, "CHAT_HTTP", file.as_ref().and_then(|f| f.http.as_ref()));
        let ws = pick(&globals.ws, "CHAT_WS", file.as_ref().and_then(|f| f.websocket.as_ref()));
        if let Some(url) = &http {
            check_scheme(url, "--http", &["http://", "https://"])?;
        }
        if let Some(url) = &ws {
            check_scheme(url, "--ws", &["ws://", "wss://"])?;
        }
        Ok(Endpoints { http: http.map(|url| url.trim_end_matches('/').to_owned()), ws })
    }

    /// The HTTP API base URL, or an error saying how to give it.
    pub fn http(&self) -> CliResult<&str> {
        self.http.as_deref().ok_or_else(|| missing("HTTP API", "--http URL", "CHAT_HTTP"))
    }

    /// The WebSocket API URL, or an error saying how to give it.
    pub fn ws(&self) -> CliResult<&str> {
        self.ws.as_deref().ok_or_else(|| missing("WebSocket API", "--ws URL", "CHAT_WS"))
    }
}

fn read_file(path: &Path) -> CliResult<EndpointsFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Setup(format!("cannot read the endpoints file {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::Setup(format!("{} is not an endpoints file (JSON with `http` and `websocket`): {e}", path.display()))
    })
}

fn check_scheme(url: &str, flag: &str, schemes: &[&str]) -> CliResult<()> {
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(());
    }
    Err(CliError::Setup(format!("{url} is not a {} URL ({flag})", schemes.join(" or "))))
}

fn missing(what: &str, flag: &str, variable: &str) -> CliError {
    CliError::Setup(format!(
        "no {what} URL: pass {flag}, set {variable}, or point --endpoints / CHAT_ENDPOINTS_FILE at an endpoints \
         file (`cargo xtask dev` writes .local/endpoints.json)"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn file_with(contents: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("chat-cli-endpoints-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    const FILE: &str = r#"{"http": "http://127.0.0.1:4566/_aws/execute-api/h1/", "websocket": "ws://127.0.0.1:4566/_aws/execute-api/w1/prod", "awsEndpoint": "x"}"#;

    #[test]
    fn flags_beat_environment_beat_file() {
        let path = file_with(FILE);
        let env = env_of(&[("CHAT_HTTP", "http://env"), ("CHAT_ENDPOINTS_FILE", path.to_str().unwrap())]);
        let globals = Globals { ws: Some("ws://flag/prod".into()), ..Globals::default() };
        let endpoints = Endpoints::resolve(&globals, &env).unwrap();
        assert_eq!(endpoints.http().unwrap(), "http://env");
        assert_eq!(endpoints.ws().unwrap(), "ws://flag/prod");

        let from_file =
            Endpoints::resolve(&Globals::default(), &env_of(&[("CHAT_ENDPOINTS_FILE", path.to_str().unwrap())]));
        let from_file = from_file.unwrap();
        assert_eq!(from_file.http().unwrap(), "http://127.0.0.1:4566/_aws/execute-api/h1", "trailing slash trimmed");
        assert_eq!(from_file.ws().unwrap(), "ws://127.0.0.1:4566/_aws/execute-api/w1/prod");
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn the_endpoints_flag_beats_the_environment_file() {
        let flag_file = file_with(r#"{"http": "http://from-flag"}"#);
        let env_file = file_with(FILE);
        let globals = Globals { endpoints_file: Some(flag_file.clone()), ..Globals::default() };
        let endpoints = Endpoints::resolve(&globals, &env_of(&[("CHAT_ENDPOINTS_FILE", env_file.to_str().unwrap())]));
        let endpoints = endpoints.unwrap();
        assert_eq!(endpoints.http().unwrap(), "http://from-flag");
        let error = endpoints.ws().unwrap_err().to_string();
        assert!(error.starts_with("no WebSocket API URL: pass --ws URL, set CHAT_WS"), "{error}");
        std::fs::remove_file(flag_file).ok();
        std::fs::remove_file(env_file).ok();
    }

    #[test]
    fn nothing_given_fails_only_when_a_url_is_needed() {
        let endpoints = Endpoints::resolve(&Globals::default(), &env_of(&[])).unwrap();
        assert!(endpoints.http().unwrap_err().to_string().contains("--http URL"));
        assert!(endpoints.ws().is_err());
    }

    #[test]
    fn unreadable_files_and_wrong_schemes_are_explained() {
        let globals = Globals { endpoints_file: Some("/nonexistent/endpoints.json".into()), ..Globals::default() };
        let error = Endpoints::resolve(&globals, &env_of(&[])).unwrap_err().to_string();
        assert!(error.starts_with("cannot read the endpoints file /nonexistent/endpoints.json"), "{error}");

        let garbage = file_with("not json");
        let globals = Globals { endpoints_file: Some(garbage.clone()), ..Globals::default() };
        let error = Endpoints::resolve(&globals, &env_of(&[])).unwrap_err().to_string();
        assert!(error.contains("is not an endpoints file"), "{error}");
        std::fs::remove_file(garbage).ok();

        let swapped = Globals { ws: Some("http://127.0.0.1/prod".into()), ..Globals::default() };
        let error = Endpoints::resolve(&swapped, &env_of(&[])).unwrap_err().to_string();
        assert_eq!(error, "http://127.0.0.1/prod is not a ws:// or wss:// URL (--ws)");
        let swapped = Globals { http: Some("wss://api.example.com/prod".into()), ..Globals::default() };
        let error = Endpoints::resolve(&swapped, &env_of(&[])).unwrap_err().to_string();
        assert_eq!(error, "wss://api.example.com/prod is not a http:// or https:// URL (--http)");
    }

    #[test]
    fn a_deployed_stack_over_https_and_wss_is_accepted() {
        let file = file_with(
            r#"{"http": "https://abc123.execute-api.eu-west-1.amazonaws.com/", "websocket": "wss://def456.execute-api.eu-west-1.amazonaws.com/prod"}"#,
        );
        let globals = Globals { endpoints_file: Some(file.clone()), ..Globals::default() };
        let endpoints = Endpoints::resolve(&globals, &env_of(&[])).unwrap();
        assert_eq!(endpoints.http().unwrap(), "https://abc123.execute-api.eu-west-1.amazonaws.com");
        assert_eq!(endpoints.ws().unwrap(), "wss://def456.execute-api.eu-west-1.amazonaws.com/prod");
        std::fs::remove_file(file).ok();

        let flags = Globals {
            http: Some("https://api.example.com".into()),
            ws: Some("wss://ws.example.com/prod".into()),
            ..Globals::default()
        };
        let endpoints = Endpoints::resolve(&flags, &env_of(&[("CHAT_HTTP", "http://127.0.0.1:1")])).unwrap();
        assert_eq!(endpoints.http().unwrap(), "https://api.example.com");
        assert_eq!(endpoints.ws().unwrap(), "wss://ws.example.com/prod");
    }
}
