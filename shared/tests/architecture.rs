//! The picture in `lib.rs` holds: every module only uses modules of lower layers, so dependencies point one way
//! (functions → adapters → use cases → ports → model) and no import cycle can creep back in; and the AWS SDK is
//! used only where the ports are implemented for AWS (`aws/`), where clients are built (`app.rs`) and where its
//! errors become ours (`error.rs`). Read from the sources: a `crate::<module>` path in code, including each name
//! of a `use crate::{…}` group, is a dependency; comments and `#[cfg(test)]` items are not code.

use std::collections::BTreeMap;
use std::path::Path;

/// Layer of each top-level module: a module may only use modules of a strictly lower layer.
const LAYERS: [(&str, u8); 19] = [
    ("error", 0),
    ("retry", 0),
    ("telemetry", 0),
    // Decoding and thumbnailing images: pure functions of bytes.
    ("images", 0),
    ("model", 1),
    ("auth", 1),
    ("cursor", 2),
    ("config", 3),
    ("ports", 2),
    ("events", 2),
    ("delivery", 3),
    ("aws", 3),
    // Web Push: payload encryption, VAPID, the HTTP push service.
    ("webpush", 3),
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

/// The code of a source file without comments and without its `#[cfg(test)]` items (the item after the
/// attribute, up to its closing brace or semicolon; code after it counts again).
fn code(text: &str) -> String {
    let mut out = String::new();
    // Inside a test item: the brace depth it opened, once it opened one.
    let mut skipping: Option<Option<usize>> = None;
    let mut depth = 0usize;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let line = line.split(" //").next().unwrap_or(line);
        if trimmed.starts_with("#[cfg(test)]") {
            skipping = Some(None);
            continue;
        }
        let before = depth;
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        match skipping {
            Some(None) if depth > before => skipping = Some(Some(before)),
            Some(None) if trimmed.ends_with(';') => skipping = None,
            Some(Some(opened)) if depth <= opened => skipping = None,
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The top-level modules a piece of code names after `crate::`: `crate::model::X` names `model`, and
/// `crate::{model::X, ports::{Y, Z}}` names `model` and `ports`.
fn crate_modules(code: &str) -> Vec<String> {
    let ident =
        |text: &str| -> String { text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut modules = Vec::new();
    for (index, _) in code.match_indices("crate::") {
        let rest = &code[index + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            modules.push(ident(rest));
            continue;
        };
        // The names at the group's own level: after its `{` and after each of its top-level commas.
        let mut depth = 0usize;
        let mut starts = vec![0];
        for (at, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => starts.push(at + 1),
                _ => {}
            }
        }
        modules.extend(starts.into_iter().map(|at| ident(group[at..].trim_start())));
    }
    modules.retain(|m| !m.is_empty() && m != "self");
    modules
}

/// Crates of the AWS SDK; only these places may name them.
const AWS_SDK_CRATES: [&str; 3] = ["aws_sdk_", "aws_config", "aws_smithy_"];
const AWS_SDK_ALLOWED: [&str; 3] = ["aws/", "app.rs", "error.rs"];

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
        for used in crate_modules(&text) {
            if used != module {
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

#[test]
fn the_aws_sdk_stays_behind_the_ports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut seen_in_aws = false;
    let mut outside = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let text = code(&std::fs::read_to_string(file).unwrap());
        let uses_sdk = AWS_SDK_CRATES.iter().any(|krate| text.contains(krate));
        if AWS_SDK_ALLOWED.iter().any(|allowed| relative.starts_with(allowed)) {
            seen_in_aws |= uses_sdk && relative.starts_with("aws/");
        } else if uses_sdk {
            outside.push(relative);
        }
    }
    assert!(seen_in_aws, "the scan found no SDK use in aws/: it is not looking at the sources");
    assert!(outside.is_empty(), "the AWS SDK named outside aws/, app.rs and error.rs: {outside:?}");
}

#[test]
fn the_scan_reads_use_groups_and_skips_only_test_items() {
    let text = code(
        "use crate::{model::{A, B}, ports::C};\n#[cfg(test)]\nmod tests {\n    use crate::adapters::X;\n}\n\
         #[cfg(test)]\nuse crate::testing::Y;\nfn after() { crate::delivery::go(); } // crate::app::not_code\n",
    );
    assert_eq!(crate_modules(&text), ["model", "ports", "delivery"]);
}
