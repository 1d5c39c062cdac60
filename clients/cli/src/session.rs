//! The token: `--token`, else `CHAT_TOKEN`, else the token file that `login`/`register` wrote (`--token-file`,
//! else `$XDG_CONFIG_HOME/chat-cli/token`, else `~/.config/chat-cli/token`). The file holds the access token, the
//! refresh token and when the access token expires, one per line (a file of one line, written before sessions
//! existed, is a token that cannot be renewed), and is readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::args::Globals;
use crate::endpoints::Env;
use crate::error::{CliError, CliResult};

/// The token file to read and write.
pub fn token_file(globals: &Globals, env: Env) -> CliResult<PathBuf> {
    if let Some(path) = &globals.token_file {
        return Ok(path.clone());
    }
    let config_dir = env("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").filter(|home| !home.is_empty()).map(|home| Path::new(&home).join(".config")))
        .ok_or_else(|| CliError::Setup("no config directory (HOME is not set): pass --token-file FILE".into()))?;
    Ok(config_dir.join("chat-cli").join("token"))
}

/// What the token file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub token: String,
    pub refresh_token: Option<String>,
    /// Epoch seconds.
    pub expires_at: Option<u64>,
}

impl Stored {
    /// The tokens of a session answer (register, login, refresh), expiring `expiresIn` from `now`.
    pub fn from_session(session: &serde_json::Value, now: u64) -> CliResult<Stored> {
        let token = session["token"]
            .as_str()
            .ok_or_else(|| CliError::Connection(format!("the server's session has no token: {session}")))?;
        Ok(Stored {
            token: token.to_owned(),
            refresh_token: session["refreshToken"].as_str().map(str::to_owned),
            expires_at: session["expiresIn"].as_u64().map(|seconds| now + seconds),
        })
    }

    /// Whether the access token should be renewed before use: it expires within a minute and can be renewed.
    pub fn needs_refresh(&self, now: u64) -> bool {
        self.refresh_token.is_some() && self.expires_at.is_some_and(|at| at <= now + 60)
    }
}

/// The token given with `--token` or `CHAT_TOKEN`, if any: used as is.
pub fn given_token(globals: &Globals, env: Env) -> Option<String> {
    globals.token.clone().or_else(|| env("CHAT_TOKEN")).filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_owned())
}

/// The token file's contents.
pub fn read_stored(path: &Path) -> CliResult<Stored> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_logged_in(path)),
        Err(e) => return Err(CliError::Setup(format!("cannot read the token file {}: {e}", path.display()))),
    };
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let token = lines.next().ok_or_else(|| not_logged_in(path))?.to_owned();
    let refresh_token = lines.next().map(str::to_owned);
    let expires_at = lines.next().and_then(|line| line.parse().ok());
    Ok(Stored { token, refresh_token, expires_at })
}

fn not_logged_in(path: &Path) -> CliError {
    CliError::Setup(format!(
        "not logged in: no token in {} (run `chat-cli login <username>`, or pass --token / set CHAT_TOKEN)",
        path.display()
    ))
}

/// Writes the token file (creating its directory), readable by the owner only.
pub fn store_session(path: &Path, stored: &Stored) -> CliResult<()> {
    let failed = |e: std::io::Error| CliError::Setup(format!("cannot write the token file {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    #[cfg(unix)]
    {
        // `mode` only applies to new files: tighten one that existed.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    }
    let mut text = format!("{}\n", stored.token);
    if let Some(refresh_token) = &stored.refresh_token {
        text.push_str(&format!("{refresh_token}\n{}\n", stored.expires_at.unwrap_or(0)));
    }
    file.write_all(text.as_bytes()).map_err(failed)
}

/// Deletes the token file; true if there was one.
pub fn forget_token(path: &Path) -> CliResult<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Setup(format!("cannot delete the token file {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn temp_path() -> PathBuf {
        std::env::temp_dir().join(format!("chat-cli-test-{}", uuid::Uuid::new_v4().simple())).join("token")
    }

    #[test]
    fn the_token_file_lives_in_the_config_dir_unless_given() {
        let path = token_file(&Globals::default(), &env_of(&[("HOME", "/home/a")])).unwrap();
        assert_eq!(path, PathBuf::from("/home/a/.config/chat-cli/token"));
        let path = token_file(&Globals::default(), &env_of(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/cfg")]));
        assert_eq!(path.unwrap(), PathBuf::from("/cfg/chat-cli/token"));
        let globals = Globals { token_file: Some("/tmp/t".into()), ..Globals::default() };
        assert_eq!(token_file(&globals, &env_of(&[])).unwrap(), PathBuf::from("/tmp/t"));
        assert!(token_file(&Globals::default(), &env_of(&[])).is_err());
    }

    #[test]
    fn flag_beats_environment_beats_file() {
        let path = temp_path();
        store_session(&path, &Stored { token: "from-file".into(), refresh_token: None, expires_at: None }).unwrap();
        let from_file = Globals { token_file: Some(path.clone()), ..Globals::default() };
        assert_eq!(given_token(&from_file, &env_of(&[])), None);
        assert_eq!(read_stored(&path).unwrap().token, "from-file");
        assert_eq!(given_token(&from_file, &env_of(&[("CHAT_TOKEN", "from-env")])).unwrap(), "from-env");
        let flagged = Globals { token: Some("from-flag".into()), ..from_file.clone() };
        assert_eq!(given_token(&flagged, &env_of(&[("CHAT_TOKEN", "from-env")])).unwrap(), "from-flag");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read the token");
        }
        assert!(forget_token(&path).unwrap());
        assert!(!forget_token(&path).unwrap());
        let error = read_stored(&path).unwrap_err().to_string();
        assert!(error.starts_with("not logged in: no token in"), "{error}");
        std::fs::remove_dir(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_session_is_stored_and_renewed_only_near_its_expiry() {
        let path = temp_path();
        let session = serde_json::json!({"token": "a", "refreshToken": "r", "expiresIn": 900, "user": {}});
        let stored = Stored::from_session(&session, 1_000).unwrap();
        assert_eq!(stored.expires_at, Some(1_900));
        store_session(&path, &stored).unwrap();
        assert_eq!(read_stored(&path).unwrap(), stored);
        assert!(!stored.needs_refresh(1_000));
        assert!(stored.needs_refresh(1_850), "within a minute of expiring");
        let old = Stored { refresh_token: None, ..stored };
        assert!(!old.needs_refresh(5_000), "nothing to renew it with");
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
