//! `docs/integrators.md`, "First exchanges with the demo", run as written: its first code block
//! is the command that starts the demo (run here as `dccgw demo` on free ports, in a scratch
//! directory laid out as the repository root: `certs/dev`, `demo-data/`, `examples/` and
//! `target/release/dccgw`); the others run, in order, in one `sh -e` there, with only the demo's
//! address put in for `127.0.0.1:8443`. Then each answer the blocks kept is the one the guide
//! describes, and every acknowledged request's final message is in `demo-data/received/`, `I0`.
//! The commands of the examples' index (`examples/requests/README.md`) run the same way, each
//! answered `I99` or `I0`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, element};

/// The guide's section, and the demo's address in it.
const SECTION: &str = "## First exchanges with the demo";
const DOC_ADDR: &str = "127.0.0.1:8443";

/// The `sh` code blocks of the guide's walkthrough, in order.
fn blocks() -> Vec<String> {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrators.md"))
            .unwrap();
    let start = guide.find(SECTION).expect("the walkthrough section");
    let section = &guide[start + SECTION.len()..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    sh_blocks(section)
}

/// The `sh` code blocks of `text`, in order.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + "```sh\n".len()..];
        let close = body.find("```").unwrap();
        blocks.push(body[..close].to_owned());
        rest = &body[close + 3..];
    }
    blocks
}

/// Starts `dccgw demo` in `dir` on free ports; the process and its DUIS address.
fn start_demo(dir: &Path) -> (Child, String) {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_dccgw"))
        .args([
            "demo",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--receiver-port",
            "0",
        ])
        .args(["--certs", "certs/dev", "--dir", "demo-data"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let rx = support::lines(stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo printed no DUIS base URL");
        if let Some(url) = line.trim().strip_prefix("DUIS base URL") {
            break url.trim().trim_start_matches("https://").to_owned();
        }
    };
    (demo, addr)
}

fn stop(mut demo: Child) {
    let pid = demo.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = demo.kill();
            panic!("the demo did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory laid out as the repository root: `target/release/dccgw` and `examples/`.
fn scratch_root() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    std::fs::create_dir_all(root.join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_dccgw"),
        root.join("target/release/dccgw"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        root.join("examples"),
    )
    .unwrap();
    work
}

#[test]
fn the_example_index_commands_run_as_written() {
    if !support::have_tool("curl") {
        return;
    }
    let index = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/README.md"),
    )
    .unwrap();
    let blocks = sh_blocks(&index);
    assert_eq!(blocks.len(), 4, "the index's command blocks");
    let work = scratch_root();
    let root = work.path();
    let (demo, addr) = start_demo(root);
    let path = format!(
        "{}:{}",
        root.join("target/release").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for block in &blocks {
        let script = block.replace(DOC_ADDR, &addr);
        let out = Command::new("sh")
            .args(["-e", "-c", &script])
            .env("PATH", &path)
            .current_dir(root)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = element(&stdout, "ResponseCode")
            .unwrap_or("none")
            .to_owned();
        if !out.status.success() || !(code == "I99" || code == "I0") {
            failures.push(format!(
                "{script}\n-> {}, {code}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let transform =
        std::fs::read_to_string(root.join("transform-response.xml")).unwrap_or_default();
    stop(demo);
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    assert!(transform.contains("<sr:PreCommand>"), "{transform}");
}

#[test]
fn the_integrators_walkthrough_runs_as_written() {
    if !support::have_tool("curl") {
        return;
    }
    let blocks = blocks();
    assert!(blocks.len() >= 5, "{} blocks", blocks.len());
    assert_eq!(blocks[0].trim(), "cargo run --release -- demo");
    let work = scratch_root();
    let root = work.path();
    let (demo, addr) = start_demo(root);
    let script = blocks[1..].join("\n").replace(DOC_ADDR, &addr);
    let out = Command::new("sh")
        .args(["-e", "-c", &script])
        .current_dir(root)
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_default();
    let check = || -> Result<(), String> {
        if !out.status.success() {
            return Err(format!("the walkthrough failed: {}", out.status));
        }
        let code = |name: &str| element(&read(name), "ResponseCode").map(str::to_owned);
        let wanted = [
            ("cv1-answer.xml", "I99"),
            ("cv4-answer.xml", "I0"),
            ("cv5-answer.xml", "I99"),
            ("cv8-answer.xml", "I0"),
            ("cv8-firmware-answer.xml", "I99"),
        ];
        for (file, want) in wanted {
            if code(file).as_deref() != Some(want) {
                return Err(format!("{file} is not {want}: {}", read(file)));
            }
        }
        if !read("cv4-answer.xml").contains("<sr:PreCommand>")
            || !read("cv8-answer.xml").contains("<sr:DeviceID>")
        {
            return Err("the Transform's pre-command or the inventory is missing".into());
        }
        // The final messages of the acknowledged ones (the CV5 shares its Transform's RequestID).
        for file in [
            "cv1-answer.xml",
            "cv5-answer.xml",
            "cv8-firmware-answer.xml",
        ] {
            let id = element(&read(file), "RequestID").unwrap().replace(':', "_");
            let message = root.join("demo-data/received").join(format!("{id}.I0.xml"));
            let deadline = Instant::now() + Duration::from_secs(30);
            while !message.exists() {
                if Instant::now() > deadline {
                    return Err(format!("no final message {}", message.display()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    };
    let result = check();
    stop(demo);
    if let Err(why) = result {
        panic!(
            "{why}\n--- script\n{script}\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("I99") && stdout.contains("<sr:PreCommand>"),
        "{stdout}"
    );
}
