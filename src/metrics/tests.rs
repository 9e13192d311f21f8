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
        "dccgw_request_duration_seconds",
        "dccgw_requests_total",
        "dccgw_request_refusals_total",
        "dccgw_tls_handshake_duration_seconds",
        "dccgw_tls_handshake_failures_total",
    ] {
        assert!(names.contains(want), "{want} missing from:\n{text}");
    }
    for (name, kind) in found.iter().filter(|(n, _)| !n.starts_with("process_")) {
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

/// The process's own figures are exported (CPU, memory, descriptors) on Linux.
#[cfg(target_os = "linux")]
#[test]
fn process_metrics_are_exported() {
    let text = Metrics::new().render();
    for want in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {want} ")), "{want}");
    }
}

/// The latency histogram's series do not multiply by SRV, role and code: those are on the
/// request counter, one series per combination.
#[test]
fn the_latency_histogram_has_only_small_labels() {
    let m = Metrics::new();
    m.requests
        .with_label_values(&["send", "4.1.1", "IS", "a", "I99"])
        .inc();
    let text = m.render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("dccgw_request_duration_seconds"))
        .count();
    // 3 services x 2 outcomes x (17 buckets + +Inf + sum + count).
    assert_eq!(series, 3 * 2 * 20, "{text}");
    for line in text
        .lines()
        .filter(|l| l.starts_with("dccgw_request_duration_seconds"))
    {
        for label in ["srv=", "code=", "role="] {
            assert!(!line.contains(label), "{line}");
        }
    }
    assert!(text.contains(
        "dccgw_requests_total{class=\"a\",code=\"I99\",role=\"IS\",service=\"send\",srv=\"4.1.1\"} 1"
    ));
}

/// Every closed set a panel or rule groups by is listed at zero before its first event.
#[test]
fn reasons_are_listed_before_their_first_event() {
    let text = Metrics::new().render();
    for reason in crate::error::REASONS {
        let line = format!("dccgw_request_refusals_total{{reason=\"{reason}\"}} 0");
        assert!(text.contains(&line), "{line}");
    }
    for f in crate::tls::HandshakeFailure::ALL {
        let line = format!(
            "dccgw_tls_handshake_failures_total{{reason=\"{}\"}} 0",
            f.label()
        );
        assert!(text.contains(&line), "{line}");
    }
}

/// The dashboard: every stat panel has thresholds that mean something (a healthy certificate is
/// green), every query is scoped to the chosen instances, failed deliveries are shown by reason,
/// and every certificate is on the expiry panel.
#[test]
fn the_dashboard_has_thresholds_an_instance_variable_and_the_delivery_failures() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/grafana/dccgw-dashboard.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "instance"),
        "no instance variable"
    );
    let panels = d["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap_or("");
            exprs.push(e.to_owned());
            for metric in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if metric.starts_with("dccgw_") || metric.starts_with("process_") {
                    let after = &e[e.find(metric).unwrap() + metric.len()..];
                    assert!(
                        after.starts_with("{instance=~\"$instance\""),
                        "{metric} in {e:?} is not scoped to $instance"
                    );
                }
            }
        }
        if p["type"] == "stat" {
            let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                .as_array()
                .unwrap_or_else(|| panic!("{} has no thresholds", p["title"]));
            assert!(!steps.is_empty(), "{}", p["title"]);
        }
    }
    let cert = panels
        .iter()
        .find(|p| {
            p["title"]
                .as_str()
                .is_some_and(|t| t.contains("Certificate days"))
        })
        .unwrap();
    let steps = cert["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap();
    // A certificate with 730 days left is on the last (green) step.
    let last = steps.last().unwrap();
    assert_eq!(last["color"], "green");
    assert!(last["value"].as_f64().unwrap() <= 730.0);
    assert_eq!(steps[0]["color"], "red");
    assert!(exprs
        .iter()
        .any(|e| e.contains("dccgw_delivery_failed_attempts_total") && e.contains("by (reason)")));
    assert!(exprs
        .iter()
        .any(|e| e.contains("process_resident_memory_bytes")));
}

/// The stage handles are indexed by a stage's discriminant: `Stage::ALL` must list the stages in
/// declaration order.
#[test]
fn stage_handles_are_indexed_in_declaration_order() {
    for (i, stage) in Stage::ALL.iter().enumerate() {
        assert_eq!(*stage as usize, i, "{}", stage.label());
    }
}
