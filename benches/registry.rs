//! The registration cache at national size: generate N devices and N registrations
//! (`DCCGW_BENCH_DEVICES`, default 30 000 000; `DCCGW_BENCH_REGISTRATIONS`, default the same) into a
//! temporary directory (`DCCGW_BENCH_DIR`, default the system one), load them, and report the
//! generation time, load time, resident memory, bytes per entry and look-up latency.
//!
//! `cargo bench --bench registry`. Under `cargo test --benches` (no `--bench` argument) it runs at
//! 10 000 at most, so a test run never generates the national data set.
//!
//! Measured on the 2-core development VM (shared with other builds), 30 M + 30 M,
//! `DCCGW_BENCH_DIR=/tmp cargo bench --bench registry`:
//! generate 39.8 s (2.1 GB + 1.9 GB of CSV); load 26.1 s; VmRSS +1892 MB (33.1 B per entry;
//! devices 24 B + registrations 32 B + indices); `device` 253 ns, `registered_at` 400 ns,
//! `devices_at` 586 ns (criterion means); single-shot p50/p99: `device` 551/1032 ns,
//! `registered_at` 571/1042 ns (cold caches and TLB: a 1.9 GB working set on 4 KiB pages).
//!
//! `authorize` (4.1.1 by the registered supplier, every check through E11, E4 and E5) at
//! 30 M + 30 M, `DCCGW_BENCH_DIR=/work DCCGW_BENCH_DEVICES=30000000 cargo bench --bench registry
//! -- auth/` (one other build running, load average about 3): **1.29 µs** mean (criterion,
//! 1.24–1.32); load 32.3 s, +1899 MB VmRSS (33.2 B per entry); single-shot p50/p99 `device`
//! 531/1052 ns, `registered_at` 541/1112 ns. (At 3 M + 3 M, load average about 8: 2.08 µs.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dccgw::auth::{self, AccessRequest};
use dccgw::catalogue::Catalogue;
use dccgw::domain::{DeviceId, Mpxn, UserRole};
use dccgw::register::PartyRegister;
use dccgw::registry::Snapshot;
use dccgw::state::generate::{generate, Synthetic, EPOCH};
use dccgw::state::load::registry as load;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A cheap deterministic sequence of sample indices.
fn samples(n: u64, count: usize) -> impl Iterator<Item = u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..count).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    })
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64, u64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), at(0.999))
}

struct Fixture {
    snap: Snapshot,
    devices: Vec<DeviceId>,
    mpxns: Vec<Mpxn>,
}

fn setup() -> Fixture {
    let full = std::env::args().any(|a| a == "--bench");
    let cap = if full { u64::MAX } else { 10_000 };
    let n = env_u64("DCCGW_BENCH_DEVICES", 30_000_000).min(cap);
    let m = env_u64("DCCGW_BENCH_REGISTRATIONS", n).min(cap);
    let spec = Synthetic {
        devices: n,
        registrations: m,
        seed: 42,
    };
    let dir = match std::env::var_os("DCCGW_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory");

    let t = Instant::now();
    let files = generate(dir.path(), &spec).expect("generate");
    let generated = t.elapsed();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    println!(
        "registry: generated {n} devices ({} MB) and {m} registrations ({} MB) in {:.1} s",
        size(&files.devices) >> 20,
        size(&files.registrations) >> 20,
        generated.as_secs_f64()
    );

    let before = rss();
    let t = Instant::now();
    let snap = load(&files.devices, &files.registrations).expect("load");
    let loaded = t.elapsed();
    let after = rss();
    drop(dir);
    let entries = (n + m).max(1);
    println!(
        "registry: loaded in {:.1} s; VmRSS {} MB -> {} MB (+{} MB, {:.1} B per entry); \
         base columns {} MB ({:.1} B per entry)",
        loaded.as_secs_f64(),
        before >> 20,
        after >> 20,
        after.saturating_sub(before) >> 20,
        after.saturating_sub(before) as f64 / entries as f64,
        snap.base_heap_bytes() >> 20,
        snap.base_heap_bytes() as f64 / entries as f64,
    );

    let devices = samples(n, 1 << 20).map(|i| spec.device(i).id).collect();
    let mpxns = samples(spec.premises(), 1 << 20)
        .map(Synthetic::mpan)
        .collect();
    Fixture {
        snap,
        devices,
        mpxns,
    }
}

fn report_percentiles(f: &Fixture) {
    let now = EPOCH + 400 * 86_400;
    let time = |op: &dyn Fn(usize)| -> Vec<u64> {
        (0..f.devices.len())
            .map(|i| {
                let t = Instant::now();
                op(i);
                t.elapsed().as_nanos() as u64
            })
            .collect()
    };
    let (p50, p99, p999) = time(&|i| {
        black_box(f.snap.device(f.devices[i]));
    })
    .pipe(percentiles);
    println!(
        "registry: device(id) p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns (incl. ~20 ns timer)"
    );
    let (p50, p99, p999) = time(&|i| {
        black_box(
            f.snap
                .registered_at(f.mpxns[i], UserRole::ImportSupplier, now)
                .count(),
        );
    })
    .pipe(percentiles);
    println!(
        "registry: registered_at(mpan, IS, now) p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns (incl. ~20 ns timer)"
    );
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn lookups(c: &mut Criterion) {
    let f = setup();
    report_percentiles(&f);
    let now = EPOCH + 400 * 86_400;
    let mut i = 0usize;
    c.bench_function("registry/device_by_id", |b| {
        b.iter(|| {
            i = (i + 1) & (f.devices.len() - 1);
            black_box(f.snap.device(f.devices[i]))
        })
    });
    let mut i = 0usize;
    c.bench_function("registry/registered_at", |b| {
        b.iter(|| {
            i = (i + 1) & (f.mpxns.len() - 1);
            black_box(
                f.snap
                    .registered_at(f.mpxns[i], UserRole::ImportSupplier, now)
                    .count(),
            )
        })
    });
    let mut i = 0usize;
    c.bench_function("registry/devices_at", |b| {
        b.iter(|| {
            i = (i + 1) & (f.mpxns.len() - 1);
            black_box(f.snap.devices_at(f.mpxns[i]).count())
        })
    });
}

/// `auth::authorize` for a 4.1.1 read by the meter's registered import supplier, at national
/// size: the register holds the generator's User pools.
fn authorize(c: &mut Criterion) {
    let f = setup();
    let now = EPOCH + 400 * 86_400;
    let mut users = String::from("user_id,party_id,party_name,roles,status,response_url\n");
    for (role, pool) in [
        (UserRole::ImportSupplier, 40),
        (UserRole::GasSupplier, 30),
        (UserRole::ElectricityDistributor, 14),
        (UserRole::GasTransporter, 8),
    ] {
        for k in 0..pool {
            let id = Synthetic::user(role, k);
            users.push_str(&format!("{id},P{id},party,{role},active,\n"));
        }
    }
    let register = PartyRegister::parse(&users).expect("register");
    let entry = Catalogue::builtin()
        .get(&"4.1.1".parse().expect("srv"))
        .expect("4.1.1");
    // Requests that pass: each ESME with the IS registered for its meter point now.
    let requests: Vec<(DeviceId, dccgw::domain::UserId)> = f
        .devices
        .iter()
        .filter_map(|d| {
            let rec = f.snap.device(*d)?;
            let mpxn = rec.mpxn.filter(|m| m.is_electricity())?;
            let user = f
                .snap
                .registered_at(mpxn, UserRole::ImportSupplier, now)
                .next()?;
            Some((*d, user))
        })
        .take(1 << 16)
        .collect();
    assert!(!requests.is_empty(), "no registered ESMEs in the sample");
    let mut i = 0usize;
    let mut permits = 0u64;
    c.bench_function("auth/authorize_4.1.1_registered_supplier", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            let (target, originator) = requests[i];
            let req = AccessRequest {
                originator,
                target,
                service: entry,
                at: now,
            };
            permits += u64::from(auth::authorize(&req, &register, &f.snap).is_ok());
        })
    });
    black_box(permits);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = lookups, authorize
}
criterion_main!(benches);
