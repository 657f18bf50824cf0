//! The source layout's floors (DESIGN section 8, `lib.rs`'s Layout),
//! enforced: every `crate::<module>` a file under `src/` names must be on a
//! floor below its own module's. The floors are data here; a new import
//! that climbs fails this test with the file and the line.

use std::path::Path;

/// Each top-level module and its floor. Within a floor of the design the
/// order its modules already use each other in is kept (a step that uses
/// another step sits just above it), so a cycle cannot be written.
const FLOORS: &[(&str, u32)] = &[
    // Command runners, and the command-line types they read.
    ("app", 90),
    ("cli", 85),
    // Pipeline: rehearse runs the deploy's own steps.
    ("rehearse", 81),
    ("deploy", 80),
    // The outcome, sent where `notify:` says, as the report renders it.
    ("notify", 76),
    // The report renders what the steps produce.
    ("report", 75),
    // Steps, one capability each.
    ("init", 64),
    ("prune", 64),
    ("snapshot", 63),
    ("lint", 62),
    ("migrate", 61),
    ("maintenance", 60),
    ("checks", 60),
    ("release", 60),
    // CI and logging outputs.
    ("ci", 50),
    // The top-level error (it carries the configuration's) and the
    // configuration, which imports no step.
    ("error", 45),
    ("config", 40),
    // Infrastructure: plain values in, never config sections.
    ("ephemeral", 30),
    ("db", 25),
    ("store", 25),
    ("http", 26),
    ("pgtools", 25),
    ("shell", 24),
    ("codec", 22),
    ("process", 22),
    ("progress", 21),
    ("scratch", 21),
    ("logging", 23),
    ("cancel", 10),
    ("random", 10),
    ("stdout", 10),
    ("sqlsplit", 10),
    ("exit_codes", 0),
];

/// Imports that climb and are known debt, each with why it is still here.
/// Remove a line once the import is gone (the test says so).
const KNOWN: &[(&str, &str, &str)] = &[];

fn floor(module: &str) -> Option<u32> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// The module a file under `src/` belongs to (`src/deploy/recover.rs` →
/// `deploy`); `None` for `lib.rs` and `main.rs`, which name every module.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// Every `crate::<module>` named in `text` outside its unit tests, with its
/// line (also in `crate::{a, b::c}` lists).
fn imports(text: &str) -> Vec<(usize, String)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let end = list.find('}').unwrap_or(list.len());
                for item in list[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_floor_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    all.sort();
    let mut climbing = Vec::new();
    let mut known_seen = Vec::new();
    for path in &all {
        let rel = path.strip_prefix(&src).unwrap();
        let Some(module) = module_of(rel) else {
            continue;
        };
        let own = floor(&module)
            .unwrap_or_else(|| panic!("module `{module}` has no floor: add it to FLOORS"));
        let shown = format!("src/{}", rel.display());
        for (line, target) in imports(&std::fs::read_to_string(path).unwrap()) {
            if target == module {
                continue;
            }
            let Some(theirs) = floor(&target) else {
                continue; // a re-export at the crate root (`crate::Error`)
            };
            if theirs < own {
                continue;
            }
            if KNOWN.iter().any(|(f, t, _)| *f == shown && *t == target) {
                known_seen.push((shown.clone(), target.clone()));
                continue;
            }
            climbing.push(format!(
                "{shown}:{line}: `{module}` (floor {own}) imports `{target}` (floor {theirs})"
            ));
        }
    }
    assert!(
        climbing.is_empty(),
        "imports that climb a floor:\n{}",
        climbing.join("\n")
    );
    for (file, target, why) in KNOWN {
        assert!(
            known_seen.iter().any(|(f, t)| f == file && t == target),
            "{file} no longer imports `{target}` ({why}): remove it from KNOWN"
        );
    }
}

#[test]
fn lib_names_every_module_in_its_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let layout = lib.split("//! # Layout").nth(1).unwrap();
    for (module, _) in FLOORS {
        assert!(
            layout.contains(&format!("[`{module}`]")),
            "lib.rs's Layout does not name `{module}`"
        );
    }
}
