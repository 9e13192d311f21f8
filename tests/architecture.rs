//! The architecture, checked: the layers of `docs/architecture.md`, no import cycles between
//! modules, what layer 0 may not touch, and the size bounds of files and functions. It reads the
//! source as text (test code excepted: `tests.rs`, `tests/` folders and `#[cfg(test)]` items).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library and its layer: 0 pure, 1 one resource each, 2 wiring.
/// A new module must be placed here (and in `docs/architecture.md`).
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("catalogue", 0),
    ("admission", 0),
    ("duis", 0),
    ("identity", 0),
    ("checks", 0),
    ("auth", 0),
    ("error", 0),
    ("xmldsig", 0),
    ("alerts", 0),
    ("antireplay", 0),
    ("routing", 0),
    ("rules", 0),
    ("registry", 0),
    ("register", 0),
    ("certstore", 0),
    ("dscerts", 0),
    ("smki", 0),
    ("gbcs", 0),
    ("anomaly", 0),
    ("report", 1),
    ("tls", 1),
    ("metrics", 1),
    ("pki", 1),
    ("progress", 1),
    ("signer", 1),
    ("state", 1),
    ("store", 1),
    ("cluster", 1),
    ("audit", 1),
    ("dispatch", 1),
    ("commshub", 1),
    ("outbox", 1),
    ("firmware", 1),
    ("receiver", 1),
    ("testing", 1),
    ("tally", 1),
    ("offload", 1),
    ("allocator", 1),
    ("pipeline", 2),
    ("replies", 2),
    ("dsp", 2),
    ("server", 2),
    ("admin", 2),
    ("reload", 2),
    ("config", 2),
    ("demo", 2),
    ("tools", 2),
];

/// What layer-0 code may not use: runtimes, network and TLS stacks, concurrent maps, metrics,
/// files, clocks and randomness. Matched as text in non-test code.
const LAYER0_FORBIDDEN: &[&str] = &[
    "tokio::",
    "tokio_",
    "hyper::",
    "hyper_",
    "rustls::",
    "dashmap",
    "arc_swap",
    "prometheus",
    "tracing::",
    "std::fs",
    "File::",
    "std::net",
    "SystemTime",
    "Instant",
    "now_utc",
    "rand_core",
    "OsRng",
    "getrandom",
    "SystemRandom",
];

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

struct Source {
    path: PathBuf,
    module: String,
    /// The file's lines outside test code.
    lines: Vec<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Test code lives in `tests.rs` files and `tests/` folders beside the code it tests (and test
/// support in `testing`).
fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "tests.rs" | "testing" | "testing.rs")
        )
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` outside `#[cfg(test)]` items (an item ends at the line that closes it at
/// its own indentation; a `mod x;` declaration is one line).
fn without_tests(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let indent = line.len() - line.trim_start().len();
            for item in lines.by_ref() {
                let t = item.trim();
                if t.starts_with("#[") {
                    continue;
                }
                if t.ends_with(';') && !t.ends_with('{') {
                    break;
                }
                // Skip to the closing brace at the same indentation.
                let closing = " ".repeat(indent) + "}";
                for inner in lines.by_ref() {
                    if inner == closing {
                        break;
                    }
                }
                break;
            }
            continue;
        }
        out.push(line.to_owned());
    }
    out
}

fn sources() -> Vec<Source> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| !is_test_file(p.strip_prefix(&src).expect("under src")))
        .map(|path| {
            let rel = path.strip_prefix(&src).expect("under src");
            let first = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .expect("a component")
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("read source");
            Source {
                lines: without_tests(&text),
                module: first,
                path: rel.to_owned(),
            }
        })
        .filter(|s| s.module != "lib" && s.module != "main")
        .collect()
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The modules a file names as `crate::<module>` outside comments.
fn crate_refs(lines: &[String]) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for line in lines {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.insert(name);
            }
            rest = after;
        }
        // `use crate::{a, b::C}` groups.
        if let Some(group) = code.trim_start().strip_prefix("use crate::{") {
            for part in group.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        }
    }
    refs
}

fn graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        let refs = crate_refs(&s.lines);
        let entry = graph.entry(s.module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != s.module));
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let mut unplaced: Vec<_> = sources()
        .into_iter()
        .filter(|s| layer(&s.module).is_none())
        .map(|s| s.module)
        .collect();
    unplaced.dedup();
    assert!(unplaced.is_empty(), "modules without a layer: {unplaced:?}");
}

#[test]
fn modules_import_only_their_own_layer_or_lower() {
    let mut wrong = Vec::new();
    for (module, refs) in graph(&sources()) {
        let Some(own) = layer(&module) else { continue };
        for r in refs {
            match layer(&r) {
                Some(l) if l > own || (own == 0 && l != 0) => {
                    wrong.push(format!("{module} (layer {own}) imports {r} (layer {l})"))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycles_between_modules() {
    let graph = graph(&sources());
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            cycles.push(cycle.join(" → "));
            return;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next) {
                visit(next, graph, stack, done, cycles);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// Whether `code` uses `word`: an occurrence not continued by more of an identifier (`Instant`
/// is the clock's type, `ReadInstantaneousImportRegisters` a DUIS element name).
fn uses(code: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    // A word ending in `::` or `_` is a prefix: whatever follows it is a use.
    let whole_name = word.chars().last().is_some_and(|c| c.is_alphanumeric());
    code.match_indices(word)
        .any(|(at, _)| !whole_name || !code[at + word.len()..].chars().next().is_some_and(ident))
}

#[test]
fn forbidden_words_are_matched_as_whole_names() {
    assert!(uses("let t = Instant::now();", "Instant"));
    assert!(uses("use std::time::{Duration, Instant};", "Instant"));
    assert!(uses("tokio::spawn(f)", "tokio::"));
    assert!(!uses("\"ReadInstantaneousImportRegisters\"", "Instant"));
    assert!(!uses("let instant_ish = 1;", "Instant"));
}

#[test]
fn layer_zero_uses_no_runtime_io_clock_or_randomness() {
    let mut found = Vec::new();
    for s in sources().iter().filter(|s| layer(&s.module) == Some(0)) {
        for line in &s.lines {
            let code = line.split("//").next().unwrap_or("");
            for word in LAYER0_FORBIDDEN {
                if uses(code, word) {
                    found.push(format!("{}: `{word}` in {}", s.path.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "layer 0 is not pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_the_bound() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        if is_test_file(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        let n = without_tests(&text).len();
        if n > MAX_FILE_LINES {
            long.push(format!("{}: {n} lines", rel.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_function_is_over_the_bound() {
    let mut long = Vec::new();
    for s in sources() {
        let mut i = 0;
        while i < s.lines.len() {
            let line = &s.lines[i];
            let t = line.trim_start();
            let is_fn = ["fn ", "pub fn ", "async fn ", "pub async fn ", "const fn "]
                .iter()
                .any(|p| t.starts_with(p))
                || (t.starts_with("pub(") && t.contains(" fn "));
            if !is_fn {
                i += 1;
                continue;
            }
            let Some(end) = fn_end(&s.lines, i) else {
                i += 1;
                continue;
            };
            let n = end - i + 1;
            if n > MAX_FN_LINES {
                long.push(format!("{}:{}: {n} lines: {}", s.path.display(), i + 1, t));
            }
            i += 1;
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The line a function starting at `start` ends on: where its braces balance again; `None` for
/// a declaration without a body. Braces in string literals are assumed balanced.
fn fn_end(lines: &[String], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    for (j, line) in lines.iter().enumerate().skip(start) {
        let code = line.split("//").next().unwrap_or("");
        for c in code.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth = depth.saturating_sub(1),
                ';' if !opened => return None,
                _ => {}
            }
        }
        if opened && depth == 0 {
            return Some(j);
        }
    }
    None
}

#[test]
fn test_files_follow_one_convention() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let odd: Vec<_> = files
        .iter()
        .map(|p| p.strip_prefix(&src).expect("under src"))
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            stem.contains("test") && !is_test_file(p)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        odd.is_empty(),
        "test files not named tests.rs or under tests/: {odd:?}"
    );
}

/// `docs/architecture.md` lists every module with the layer this test knows, and no other.
#[test]
fn the_architecture_document_lists_every_module_in_its_layer() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let mut listed = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, module, layer, ..] = cells.as_slice() {
            let name = module.trim_matches('`');
            if let (true, Ok(layer)) = (module.starts_with('`'), layer.parse::<u8>()) {
                listed.insert(name.to_owned(), layer);
            }
        }
    }
    let known: BTreeMap<String, u8> = LAYERS.iter().map(|(m, l)| ((*m).to_owned(), *l)).collect();
    assert_eq!(listed, known, "the module table in docs/architecture.md");
}
