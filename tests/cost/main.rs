//! The request path's cost, guarded: `cost-probe` (probe.rs) sends a fixed batch of signed reads
//! through the pipeline in its own process, and callgrind counts the instructions inside the
//! batch. Above the budget in `budget.toml`, the test fails. Counting instructions, not time,
//! keeps the guard steady on a busy machine.
//!
//! By hand: `valgrind --tool=callgrind --toggle-collect=cost_probe::measured_requests
//! target/debug/cost-probe 100`.

use std::path::Path;
use std::process::Command;

const REQUESTS: u64 = 100;

#[test]
fn the_request_path_stays_within_its_instruction_budget() {
    let Some(valgrind) = which("valgrind") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but valgrind is not installed (Debian package valgrind)"
        );
        eprintln!("SKIPPED: the instruction budget (valgrind is not installed)");
        return;
    };
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let run = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg("--toggle-collect=cost_probe::measured_requests")
        .arg(format!(
            "--callgrind-out-file={}",
            out_file.path().display()
        ))
        .arg(env!("CARGO_BIN_EXE_cost-probe"))
        .arg(REQUESTS.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the probe failed:\n{stderr}");
    let collected: u64 = stderr
        .lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count from callgrind:\n{stderr}"));
    let per_request = collected / REQUESTS;
    let budget = budget();
    eprintln!("{per_request} instructions per request (budget {budget})");
    assert!(per_request > 0, "callgrind counted nothing: {stderr}");
    assert!(
        per_request <= budget,
        "{per_request} instructions per request, over the budget of {budget} (tests/cost/budget.toml)"
    );
}

fn budget() -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cost/budget.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let value = table["instructions_per_request"].as_integer().unwrap();
    u64::try_from(value).unwrap()
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
