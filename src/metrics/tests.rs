use std::collections::BTreeSet;

use super::*;

/// The family names in an exposition, from its `# TYPE` lines.
fn families(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect()
}

#[test]
fn every_family_is_listed_before_any_event_and_named_by_the_rules() {
    let m = Metrics::new();
    let text = m.render();
    let found = families(&text);
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "dccgw_request_stage_duration_seconds",
        "dccgw_delivery_queue_messages",
        "dccgw_delivery_oldest_undelivered_age_seconds",
        "dccgw_delivery_attempts_total",
        "dccgw_delivery_retries_total",
        "dccgw_delivery_dead_letters_total",
        "dccgw_delivery_dead_letter_messages",
        "dccgw_delivery_latency_seconds",
        "dccgw_alerts_received_total",
        "dccgw_alerts_sent_total",
        "dccgw_alerts_throttled_total",
        "dccgw_alerts_owed_change_batches",
        "dccgw_alerts_unrouted_total",
        "dccgw_cache_entries",
        "dccgw_cache_reloads_total",
        "dccgw_audit_write_failures_total",
        "dccgw_connections_open",
        "dccgw_dsp_executions_total",
        "dccgw_build_info",
    ] {
        assert!(names.contains(want), "{want} missing from:\n{text}");
    }
    for (name, kind) in &found {
        assert!(name.starts_with("dccgw_"), "{name}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        if kind == "histogram" {
            assert!(name.ends_with("_seconds"), "{name}");
        }
    }
    for stage in Stage::ALL {
        let line = format!(
            "dccgw_request_stage_duration_seconds_count{{stage=\"{}\"}} 0",
            stage.label()
        );
        assert!(text.contains(&line), "{line}");
    }
    // No label may carry an identifier.
    for forbidden in ["user", "device", "request_id", "mpxn"] {
        assert!(!text.contains(&format!("{forbidden}=\"")), "{forbidden}");
    }
}

#[test]
fn caches_and_certificates_are_reported() {
    let m = Metrics::new();
    m.cache_loaded("devices", 12, false);
    m.cache_loaded("devices", 13, true);
    m.certificate_expires("tls_server", 1_900_000_000);
    let text = m.render();
    assert!(
        text.contains("dccgw_cache_entries{cache=\"devices\"} 13"),
        "{text}"
    );
    assert!(text.contains("dccgw_cache_reloads_total{cache=\"devices\"} 1"));
    assert!(text.contains("dccgw_cache_reloads_total{cache=\"users\"} 0"));
    assert!(text.contains(
        "dccgw_certificate_expiry_timestamp_seconds{certificate=\"tls_server\"} 1900000000"
    ));
}

#[test]
fn a_trace_keeps_only_the_stages_reached() {
    let mut t = RequestTrace::start();
    t.lap(Stage::Parse);
    t.lap(Stage::Verify);
    t.mark();
    t.lap(Stage::Sign);
    assert!(t.lap_of(Stage::Parse).is_some());
    assert!(t.lap_of(Stage::Authorize).is_none());
    let timings = t.timings(std::time::Duration::from_micros(1234));
    assert_eq!(timings.total_us, 1234);
    assert!(timings.parse_us.is_some() && timings.sign_us.is_some());
    assert_eq!((timings.authorize_us, timings.replay_us), (None, None));
    assert!(t.permit().is_none());
}
