//! The reports as plain-text tables (the JSON form is their `Serialize`).

use std::fmt::Write as _;

use super::{FamilyPerformance, PerformanceReport, UsageReport};

pub fn performance_text(r: &PerformanceReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Performance, {}: on-demand Service Responses within their Target Response Time",
        r.month
    );
    let mut targets = format!("default {} s", r.targets.default_seconds);
    for (prefix, seconds) in &r.targets.by_srv {
        let _ = write!(targets, ", {prefix}: {seconds} s");
    }
    let _ = writeln!(out, "Targets: {targets}\n");
    let _ = writeln!(
        out,
        "{:<8} {:>12} {:>12} {:>10} {:>12} {:>9}",
        "family", "responses", "within", "late", "undelivered", "% within"
    );
    let row = |out: &mut String, name: &str, f: &FamilyPerformance| {
        let _ = writeln!(
            out,
            "{:<8} {:>12} {:>12} {:>10} {:>12} {:>9.3}",
            name, f.responses, f.within_target, f.late, f.undelivered, f.percent_within_target
        );
    };
    for (family, f) in &r.families {
        row(&mut out, &family.to_string(), f);
    }
    row(&mut out, "all", &r.total);
    let _ = writeln!(
        out,
        "\nRefused requests in the month (not counted above): {}",
        r.refused
    );
    out
}

pub fn usage_text(r: &UsageReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Usage, {}: per User", r.month);
    for (user, u) in &r.users {
        let _ = writeln!(
            out,
            "\nUser {user}: {} requests ({} accepted), {} bytes in, {} bytes out; \
             {} messages delivered, {} bytes",
            u.requests,
            u.accepted,
            u.bytes_in,
            u.bytes_out,
            u.delivered_messages,
            u.delivered_bytes
        );
        let _ = writeln!(
            out,
            "  {:<10} {:>10} {:>10} {:>14} {:>14}",
            "SRV", "requests", "accepted", "bytes in", "bytes out"
        );
        for (srv, s) in &u.by_srv {
            let _ = writeln!(
                out,
                "  {:<10} {:>10} {:>10} {:>14} {:>14}",
                srv, s.requests, s.accepted, s.bytes_in, s.bytes_out
            );
        }
        anomaly_lines(&mut out, &u.anomalies);
    }
    if r.users.is_empty() {
        let _ = writeln!(out, "\nNo requests or deliveries in the month.");
    }
    out
}

/// A User's anomaly-detection decisions: warnings, quarantines, releases and deletions.
fn anomaly_lines(out: &mut String, lines: &[super::usage::AnomalyLine]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "  Anomaly detection:");
    for a in lines {
        let at = time::OffsetDateTime::from_unix_timestamp(a.at_ms.div_euclid(1000))
            .map(|t| t.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {at}  {:<11} {:<10} {:<16} {}",
            a.action,
            a.srv.as_deref().unwrap_or("-"),
            a.breach.as_deref().unwrap_or("-"),
            a.reference
                .map_or_else(|| "-".to_owned(), |r| format!("ref {r}")),
        );
    }
}
