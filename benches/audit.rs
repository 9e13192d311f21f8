//! The audit trail's throughput with durability on: records per second when C callers each
//! record and wait for the fsync (as the pipeline does), for C = 1, 16 and 256. With one caller
//! every record pays a whole fsync; with many, group commit shares each fsync among all the
//! records waiting, so the trail does not cap request throughput.
//!
//! `cargo bench --bench audit` (`DCCGW_BENCH_DIR` picks the disk, default the system temporary
//! directory). Each iteration writes `C × 64` records of a typical request's size (~600 bytes).
//!
//! Measured on the 2-core development VM (load average ~15 from other builds, virtual disk;
//! `cargo bench --profile dev --bench audit`, dependencies optimised): 1 caller ~400 records/s
//! (each record one fsync, ~2.5 ms), 16 callers ~1.7 k/s, 256 callers ~8.7 k/s — throughput grows
//! with concurrency because each fsync carries every record waiting. The figures follow the
//! disk's fsync time.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dccgw::audit::{Audit, AuditEvent, RequestRecord, Rotation, Timings, ACCEPTED};
use dccgw::domain::{RequestId, UserRole};

const PER_CALLER: u64 = 64;

fn record(counter: u64) -> AuditEvent {
    let id: RequestId = format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
        .parse()
        .expect("a valid RequestID");
    AuditEvent::Request(RequestRecord {
        at_ms: 1_714_557_600_000,
        service: "send".into(),
        tls_user: id.originator,
        tls_role: "02".into(),
        request_id: Some(id),
        srv: Some("4.1.1".parse().expect("a valid SRV")),
        role: Some(UserRole::ImportSupplier),
        class: Some("A".into()),
        device: Some(id.target),
        on_demand: true,
        rules: None,
        decision: ACCEPTED.into(),
        code: "I99".into(),
        response_follows: true,
        timings: Timings {
            parse_us: Some(41),
            verify_us: Some(180),
            authorize_us: Some(3),
            replay_us: Some(900),
            sign_us: Some(120),
            dispatch_us: None,
            total_us: 1300,
        },
        bytes_in: 1834,
        bytes_out: 1520,
    })
}

fn bench(c: &mut Criterion) {
    let base = std::env::var_os("DCCGW_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("a temporary directory");
    let audit = Audit::open(dir.path(), Rotation::default()).expect("the trail opens");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for callers in [1u64, 16, 256] {
        group.throughput(Throughput::Elements(callers * PER_CALLER));
        group.bench_with_input(
            BenchmarkId::new("record_durable", callers),
            &callers,
            |b, &callers| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        runtime.block_on(async {
                            let tasks: Vec<_> = (0..callers)
                                .map(|c| {
                                    let audit = audit.clone();
                                    tokio::spawn(async move {
                                        for i in 0..PER_CALLER {
                                            audit
                                                .record(&record(c * PER_CALLER + i))
                                                .durable()
                                                .await
                                                .expect("written");
                                        }
                                    })
                                })
                                .collect();
                            for t in tasks {
                                t.await.expect("the task ran");
                            }
                        });
                        total += started.elapsed();
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
