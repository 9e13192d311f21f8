//! The request path's cost, guarded: `cost-probe` (probe.rs) sends a fixed batch of signed reads
//! through the pipeline in its own process, and callgrind counts the instructions inside the
//! batch. Above the budget in `budget.toml`, the test fails. Counting instructions, not time,
//! keeps the guard steady on a busy machine.
//!
//! A critical pair (`cost-probe N critical`) has a budget of its own.
//!
//! By hand: `valgrind --tool=callgrind --toggle-collect=cost_probe::measured_requests
//! target/debug/cost-probe 100`, or `--toggle-collect='cost_probe::measured_critical_*'
//! target/debug/cost-probe 50 critical`.

use std::path::Path;
use std::process::Command;

const REQUESTS: u64 = 100;
/// Critical pairs counted (each a Transform and its signed pre-command).
const PAIRS: u64 = 50;

#[test]
fn the_request_path_stays_within_its_instruction_budget() {
    let Some(per_request) = instructions("measured_requests", REQUESTS, &[]) else {
        return;
    };
    let budget = budget("instructions_per_request");
    eprintln!("{per_request} instructions per request (budget {budget})");
    assert!(
        per_request <= budget,
        "{per_request} instructions per request, over the budget of {budget} (tests/cost/budget.toml)"
    );
}

/// A critical pair: the Transform (the pre-command made and journalled) and the signed
/// pre-command (two XML signatures and the User's GBCS signature checked, the command routed).
#[test]
fn a_critical_pair_stays_within_its_instruction_budget() {
    let Some(per_pair) = instructions("measured_critical_*", PAIRS, &["critical"]) else {
        return;
    };
    let budget = budget("instructions_per_critical_pair");
    eprintln!("{per_pair} instructions per critical pair (budget {budget})");
    assert!(
        per_pair <= budget,
        "{per_pair} instructions per critical pair, over the budget of {budget} (tests/cost/budget.toml)"
    );
}

/// The probe's instructions inside `cost_probe::<function>` under callgrind, per one of the `n`
/// units it runs with `args`; `None` (skipped) without valgrind, outside CI.
fn instructions(function: &str, n: u64, args: &[&str]) -> Option<u64> {
    let Some(valgrind) = which("valgrind") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but valgrind is not installed (Debian package valgrind)"
        );
        eprintln!("SKIPPED: the instruction budget (valgrind is not installed)");
        return None;
    };
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let run = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect=cost_probe::{function}"))
        .arg(format!(
            "--callgrind-out-file={}",
            out_file.path().display()
        ))
        .arg(env!("CARGO_BIN_EXE_cost-probe"))
        .arg(n.to_string())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the probe failed:\n{stderr}");
    let collected: u64 = stderr
        .lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count from callgrind:\n{stderr}"));
    let per_unit = collected / n;
    assert!(per_unit > 0, "callgrind counted nothing: {stderr}");
    Some(per_unit)
}

fn budget(name: &str) -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cost/budget.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let value = table[name].as_integer().unwrap();
    u64::try_from(value).unwrap()
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
