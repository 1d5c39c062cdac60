//! The picture in `lib.rs` holds: every module only uses modules of lower layers, so dependencies point one way
//! (functions → adapters → use cases → ports → model) and no import cycle can creep back in. Read from the
//! sources: a `crate::<module>` path in code (not comments, not `#[cfg(test)]` blocks) is a dependency.

use std::collections::BTreeMap;
use std::path::Path;

/// Layer of each top-level module: a module may only use modules of a strictly lower layer.
const LAYERS: [(&str, u8); 17] = [
    ("error", 0),
    ("retry", 0),
    ("telemetry", 0),
    ("model", 1),
    ("auth", 1),
    ("cursor", 2),
    ("config", 3),
    ("ports", 2),
    ("events", 2),
    ("delivery", 3),
    ("aws", 3),
    ("usecases", 4),
    ("adapters", 5),
    ("app", 6),
    ("testing", 6),
    // The crate root only declares the modules.
    ("lib", 7),
    ("main", 7),
];

fn layer(module: &str) -> u8 {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, layer)| *layer).unwrap_or_else(|| {
        panic!("module `{module}` has no layer in tests/architecture.rs: give it one where it belongs")
    })
}

/// The code of a source file without comments and without its `#[cfg(test)]` block(s).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut in_tests = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        if in_tests || trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" //").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_only_uses_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        let text = code(&std::fs::read_to_string(file).unwrap());
        for (index, _) in text.match_indices("crate::") {
            let used: String =
                text[index + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !used.is_empty() && used != module {
                edges.entry((module.clone(), used)).or_insert_with(|| relative.display().to_string());
            }
        }
    }
    assert!(edges.len() > 20, "the scan found too few dependencies to be looking at the sources");
    let upward: Vec<String> = edges
        .iter()
        .filter(|((from, to), _)| layer(from) <= layer(to))
        .map(|((from, to), file)| format!("{from} → {to} (in {file})"))
        .collect();
    assert!(upward.is_empty(), "dependencies that point up or sideways:\n{}", upward.join("\n"));
}
