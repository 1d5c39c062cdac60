//! Where things live, all derived from the repository root.

use std::path::{Path, PathBuf};

pub struct Paths {
    /// The workspace root (parent of `xtask/`).
    pub root: PathBuf,
    /// `.local/`: git-ignored, machine-local state (venv, logs, emulator state).
    pub local: PathBuf,
    /// `.local/venv`: Python tooling pinned by `localstack/requirements.txt`.
    pub venv: PathBuf,
    /// `.local/tools-venv`: checkov and schemathesis, pinned by `localstack/requirements-tools.txt`.
    pub tools_venv: PathBuf,
    /// `localstack/`: emulator launcher, requirements and helper scripts.
    pub localstack: PathBuf,
}

impl Paths {
    pub fn discover() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one level below the workspace root")
            .to_path_buf();
        let local = root.join(".local");
        Paths {
            venv: local.join("venv"),
            tools_venv: local.join("tools-venv"),
            localstack: root.join("localstack"),
            local,
            root,
        }
    }

    /// An executable from the venv (`python`, `aws`, `cargo-lambda`).
    pub fn venv_bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }

    /// An executable from the tools venv (`checkov`, `schemathesis`).
    pub fn tool_bin(&self, name: &str) -> PathBuf {
        self.tools_venv.join("bin").join(name)
    }

    /// A path for humans: relative to the repository root when inside it.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}
