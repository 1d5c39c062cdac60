//! The token: `--token`, else `CHAT_TOKEN`, else the token file that `login`/`register` wrote (`--token-file`,
//! else `$XDG_CONFIG_HOME/chat-cli/token`, else `~/.config/chat-cli/token`). The file holds only the token and
//! is readable by its owner only.

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

/// The token to authenticate with, or an error saying how to get one.
pub fn token(globals: &Globals, env: Env) -> CliResult<String> {
    if let Some(token) = globals.token.clone().or_else(|| env("CHAT_TOKEN")).filter(|t| !t.trim().is_empty()) {
        return Ok(token.trim().to_owned());
    }
    let path = token_file(globals, env)?;
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(not_logged_in(&path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_logged_in(&path)),
        Err(e) => Err(CliError::Setup(format!("cannot read the token file {}: {e}", path.display()))),
    }
}

fn not_logged_in(path: &Path) -> CliError {
    CliError::Setup(format!(
        "not logged in: no token in {} (run `chat-cli login <username>`, or pass --token / set CHAT_TOKEN)",
        path.display()
    ))
}

/// Writes the token file (creating its directory), readable by the owner only.
pub fn store_token(path: &Path, token: &str) -> CliResult<()> {
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
    writeln!(file, "{token}").map_err(failed)
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
        store_token(&path, "from-file").unwrap();
        let from_file = Globals { token_file: Some(path.clone()), ..Globals::default() };
        assert_eq!(token(&from_file, &env_of(&[])).unwrap(), "from-file");
        assert_eq!(token(&from_file, &env_of(&[("CHAT_TOKEN", "from-env")])).unwrap(), "from-env");
        let flagged = Globals { token: Some("from-flag".into()), ..from_file.clone() };
        assert_eq!(token(&flagged, &env_of(&[("CHAT_TOKEN", "from-env")])).unwrap(), "from-flag");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read the token");
        }
        assert!(forget_token(&path).unwrap());
        assert!(!forget_token(&path).unwrap());
        let error = token(&from_file, &env_of(&[])).unwrap_err().to_string();
        assert!(error.starts_with("not logged in: no token in"), "{error}");
        std::fs::remove_dir(path.parent().unwrap()).ok();
    }
}
