use super::*;
use crate::stats::{AsyncSummary, Percentiles};

fn summary(p99_us: u64, throughput: f64) -> RunSummary {
    RunSummary {
        offered_rps: 1000.0,
        duration_s: 10.0,
        requests: 10_000,
        accepted: 9_990,
        throughput_rps: throughput,
        error_ratio: 0.001,
        sync: Percentiles {
            count: 10_000,
            p50_us: 800,
            p90_us: 1_500,
            p99_us,
            p999_us: p99_us * 2,
            max_us: p99_us * 4,
            mean_us: 900.0,
        },
        service: Percentiles::default(),
        send_lag: Percentiles::default(),
        codes: [("I99".to_owned(), 9_990), ("E4".to_owned(), 10)].into(),
        by_class: Default::default(),
        critical: Default::default(),
        steps: Vec::new(),
        async_: AsyncSummary::default(),
    }
}

#[test]
fn sla_overrides_parse_and_bad_ones_are_refused() {
    let mut sla = SlaSpec::default();
    apply_sla(&mut sla, "sync_p99_ms=50").unwrap();
    apply_sla(&mut sla, "max_error_ratio=0.01").unwrap();
    apply_sla(&mut sla, "async_p99_ms = 25000ms").unwrap();
    assert_eq!(sla.sync_p99_ms, Some(50.0));
    assert_eq!(sla.max_error_ratio, Some(0.01));
    assert_eq!(sla.async_p99_ms, Some(25_000.0));
    assert!(matches!(
        apply_sla(&mut sla, "p99"),
        Err(SlaError::Shape(_))
    ));
    assert!(matches!(
        apply_sla(&mut sla, "p99_ms=1"),
        Err(SlaError::Name(_))
    ));
    assert!(matches!(
        apply_sla(&mut sla, "sync_p99_ms=-1"),
        Err(SlaError::Value(_))
    ));
    assert!(matches!(
        apply_sla(&mut sla, "sync_p99_ms=NaN"),
        Err(SlaError::Value(_))
    ));
}

#[test]
fn sla_checks_pass_and_fail_on_the_figures() {
    let sla = SlaSpec {
        sync_p99_ms: Some(5.0),
        sync_p999_ms: Some(5.0),
        max_error_ratio: Some(0.01),
        min_throughput_ratio: Some(0.99),
        async_p99_ms: Some(25_000.0),
        ..SlaSpec::default()
    };
    let checks = check_sla(&sla, "gateway 90 %", &summary(4_000, 995.0));
    let verdict: Vec<(&str, bool)> = checks.iter().map(|c| (c.name, c.pass)).collect();
    assert_eq!(
        verdict,
        [
            ("sync_p99_ms", true),
            ("sync_p999_ms", false),
            // No asynchronous response at all is not a pass.
            ("async_p99_ms", false),
            ("max_error_ratio", true),
            ("min_throughput_ratio", true),
        ]
    );
    assert!(checks.iter().all(|c| c.run == "gateway 90 %"));
    assert!(check_sla(&SlaSpec::default(), "x", &summary(1, 1.0)).is_empty());
}

#[test]
fn ratios_are_gateway_over_reference() {
    let run = |target: &str, p99, tput, cpu| TargetRun {
        target: target.into(),
        fraction: 0.9,
        summary: summary(p99, tput),
        cpu: Some(Cpu {
            cpu_s: 1.0,
            per_request_us: cpu,
        }),
    };
    let r = ratios(
        &run("gateway", 4_000, 900.0, 300.0),
        &run("hyper", 1_000, 1_000.0, 60.0),
    );
    assert_eq!(r.reference, "hyper");
    assert!((r.throughput - 0.9).abs() < 1e-12);
    assert!((r.p99 - 4.0).abs() < 1e-12);
    assert_eq!(r.cpu_per_request, Some(5.0));
}

#[test]
fn the_page_shows_every_run_and_says_when_nothing_async_arrived() {
    let mut awaited = summary(4_000, 990.0);
    awaited.async_.expected = 5;
    let mut report = Report {
        scenario: "steady-state".into(),
        description: "d".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        machine: Machine::this(Some("0".into()), Some("1".into())),
        saturation: None,
        floor: None,
        runs: vec![TargetRun {
            target: "gateway".into(),
            fraction: 1.0,
            summary: awaited,
            cpu: None,
        }],
        ratios: Vec::new(),
        oha: None,
        sla: Vec::new(),
        pass: true,
        notes: vec!["a note".into()],
        overload: None,
        soak: None,
        cluster: None,
    };
    let page = markdown(&report);
    assert!(page.contains("| gateway | scenario | 1000 | 990 | 0.80 | 1.50 | 4.00 | 8.00 | 16.00 | none received | - | 0.10 % |"), "{page}");
    assert!(page.contains("0 of 5 expected Service Responses"), "{page}");
    // Nothing expected (no routing): said so, and no asynchronous line.
    report.runs[0].summary = summary(4_000, 990.0);
    let unrouted = markdown(&report);
    assert!(
        unrouted.contains("| 16.00 | not routed | - |"),
        "{unrouted}"
    );
    assert!(
        !unrouted.contains("expected Service Responses"),
        "{unrouted}"
    );
    assert!(page.contains("E4 10"));
    assert!(page.contains("> a note"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["runs"][0]["summary"]["sync"]["p99_us"], 4_000);
    assert!(json["runs"][0]["summary"]["async"].is_object());
}

#[test]
fn the_page_breaks_critical_pairs_down() {
    let mut run = summary(4_000, 990.0);
    let p = |p50_us, p99_us| Percentiles {
        count: 10,
        p50_us,
        p99_us,
        ..Percentiles::default()
    };
    run.critical.insert(
        "critical".into(),
        crate::stats::CriticalSummary {
            pairs: 12,
            signed: 11,
            accepted: 10,
            transform: p(1_000, 2_000),
            user_signing: p(300, 400),
            signed_precommand: p(1_500, 3_000),
            pair: p(2_900, 5_500),
            device_response: p(400_000, 3_000_000),
        },
    );
    let report = Report {
        scenario: "steady-state".into(),
        description: "d".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        machine: Machine::this(None, None),
        saturation: None,
        floor: None,
        runs: vec![TargetRun {
            target: "gateway".into(),
            fraction: 1.0,
            summary: run,
            cpu: None,
        }],
        ratios: Vec::new(),
        oha: None,
        sla: Vec::new(),
        pass: true,
        notes: Vec::new(),
        overload: None,
        soak: None,
        cluster: None,
    };
    let page = markdown(&report);
    assert!(
        page.contains(
            "| scenario | critical | 12 | 11 | 10 | 1.00 / 2.00 | 0.30 / 0.40 | 1.50 / 3.00 | 2.90 / 5.50 | 400.00 / 3000.00 |"
        ),
        "{page}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["runs"][0]["summary"]["critical"]["critical"]["pair"]["p99_us"],
        5_500
    );
}

#[test]
fn the_page_and_the_json_carry_the_soak_row_and_its_windows() {
    let run = summary(4_000, 990.0);
    let sla = SlaSpec {
        sync_p99_ms: Some(100.0),
        ..SlaSpec::default()
    };
    let window = |start_s: f64, sync_p99_us| SoakWindow {
        start_s,
        duration_s: 60.0,
        requests: 54_000,
        accepted: 54_000,
        sync_p99_us,
        sync_max_us: 2 * sync_p99_us,
    };
    let soak = SoakRow {
        fraction: 0.9,
        rate_rps: 900.0,
        held_s: 120.0,
        requests: 108_000,
        accepted: 107_990,
        throughput_rps: 899.9,
        sync: run.sync.clone(),
        routed: true,
        async_expected: 70_000,
        async_received: 70_000,
        async_p99_us: Some(3_100_000),
        cpu: Cpu {
            cpu_s: 50.0,
            per_request_us: 463.0,
        },
        rss_start_kib: Some(102_400),
        rss_end_kib: Some(110_592),
        errors: [("E4".to_owned(), 10)].into(),
        error_ratio: 10.0 / 108_000.0,
        window_s: 60.0,
        windows: vec![window(0.0, 3_000), window(60.0, 120_000)],
        sla: check_sla(&sla, "gateway soak", &run),
        pass: true,
    };
    let report = Report {
        scenario: "steady-state".into(),
        description: "d".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        machine: Machine::this(None, None),
        saturation: None,
        floor: None,
        runs: Vec::new(),
        ratios: Vec::new(),
        oha: None,
        sla: soak.sla.clone(),
        pass: true,
        notes: Vec::new(),
        overload: None,
        soak: Some(soak),
        cluster: None,
    };
    let page = markdown(&report);
    assert!(page.contains("Soak: 90 % of saturation"), "{page}");
    assert!(
        page.contains(
            "| 900 | 120 | 900 | 0.80 | 4.00 | 8.00 | 16.00 | 3100.00 | 463 | 100.0 → 108.0 | 0.01 % | **PASS** |"
        ),
        "{page}"
    );
    assert!(page.contains("Not accepted, by code: E4 10."), "{page}");
    assert!(
        page.contains("| 0 | 54000 | 54000 | 3.00 | 6.00 |"),
        "{page}"
    );
    assert!(
        page.contains("| 60 | 54000 | 54000 | 120.00 | 240.00 |"),
        "{page}"
    );
    assert!(page.contains("PASS gateway soak sync_p99_ms"), "{page}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["soak"]["windows"][1]["sync_p99_us"], 120_000);
    assert_eq!(json["soak"]["rss_end_kib"], 110_592);
    assert_eq!(json["soak"]["errors"]["E4"], 10);
}

/// `bench --cluster`'s ratio is cluster ÷ embedded CPU per request within each round, and its
/// markdown gives every run and the ratios.
#[test]
fn the_cluster_comparison_divides_within_each_round() {
    use crate::bench::cluster::{markdown, ratios, ClusterComparison, ModeRun};
    let run = |mode: &str, round, per_request_us| ModeRun {
        mode: mode.into(),
        round,
        summary: summary(5_000, 50.0),
        gateway: Cpu {
            cpu_s: 1.0,
            per_request_us,
        },
        postgres_cpu_s: (mode == "cluster").then_some(0.5),
        nats_cpu_s: (mode == "cluster").then_some(0.25),
    };
    let runs = vec![
        run("embedded", 1, 1000.0),
        run("cluster", 1, 1200.0),
        run("embedded", 2, 800.0),
        run("cluster", 2, 1200.0),
    ];
    let r = ratios(&runs);
    assert_eq!(r.len(), 2);
    assert!(
        (r[0] - 1.2).abs() < 1e-9 && (r[1] - 1.5).abs() < 1e-9,
        "{r:?}"
    );
    let page = markdown(&ClusterComparison {
        rate_rps: 50.0,
        duration_s: 20.0,
        nats_sync_always: false,
        runs,
        cpu_ratios: r,
    });
    assert!(
        page.contains("| cluster 2 | 9990 | 1200 µs | 0.50 s | 0.25 s |"),
        "{page}"
    );
    assert!(page.contains("**1.20×, 1.50×**"), "{page}");
}
