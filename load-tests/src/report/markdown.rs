//! The short markdown page: one table of runs, the ratios, errors by code, the verdict.

use super::*;
use crate::stats::Percentiles;

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn load_label(run: &TargetRun, saturation: bool) -> String {
    if saturation {
        format!("{:.0} %", run.fraction * 100.0)
    } else {
        "scenario".into()
    }
}

/// The gateway runs' critical pairs, part by part.
fn critical(s: &mut String, r: &Report) {
    let runs: Vec<&TargetRun> = r
        .runs
        .iter()
        .filter(|run| run.target == "gateway" && !run.summary.critical.is_empty())
        .collect();
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nCritical requests (the Transform, then its pre-command signed by the User and sent back \
         under the same RequestID; a pair counts as one request above), ms p50 / p99:\n\n\
         | load | class | pairs | signed | accepted | Transform | User signing | signed pre-command | pair | device response |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let both = |p: &Percentiles| format!("{} / {}", ms(p.p50_us), ms(p.p99_us));
    for run in runs {
        for (class, c) in &run.summary.critical {
            let _ = writeln!(
                s,
                "| {} | {class} | {} | {} | {} | {} | {} | {} | {} | {} |",
                load_label(run, r.saturation.is_some()),
                c.pairs,
                c.signed,
                c.accepted,
                both(&c.transform),
                both(&c.user_signing),
                both(&c.signed_precommand),
                both(&c.pair),
                both(&c.device_response),
            );
        }
    }
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# dccgw-load: {}\n\n{}\n",
        r.scenario,
        r.description.trim()
    );
    let _ = writeln!(
        s,
        "Started {}; {} cores ({}); server CPUs {}{}, generator CPUs {}.\n",
        r.started_at,
        r.machine.cores,
        r.machine.cpu_model,
        r.machine.server_cpus.as_deref().unwrap_or("unpinned"),
        r.machine
            .server_cpu_share
            .map(|f| format!(" (each server limited to {f} of a CPU)"))
            .unwrap_or_default(),
        r.machine.generator_cpus.as_deref().unwrap_or("unpinned"),
    );
    if let Some(f) = &r.floor {
        let _ = writeln!(
            s,
            "Crypto floor (ring, one thread): {:.2} × verify {:.1} µs + {:.2} × sign {:.1} µs = **{:.1} µs** per request.\n",
            f.verifies_per_request, f.verify_us, f.signs_per_request, f.sign_us, f.floor_us
        );
    }
    if let Some(sat) = &r.saturation {
        let how = if sat.steps.is_empty() {
            "given on the command line".to_owned()
        } else {
            format!("ramp of {} steps", sat.steps.len())
        };
        let _ = writeln!(
            s,
            "Saturation ({how}): **{:.0} requests/s**.\n",
            sat.rate_rps
        );
    }
    if let (true, Some(c)) = (r.runs.is_empty(), &r.cluster) {
        // `bench --cluster` keeps its runs in its own section.
        s.push_str(&crate::bench::cluster::markdown(c));
        return s;
    }
    let _ = writeln!(
        s,
        "| target | load | offered/s | accepted/s | sync p50 ms | p90 | p99 | p99.9 | max | async p99 ms | CPU µs/req | not accepted |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in &r.runs {
        let m = &run.summary;
        let async_p99 = if run.target != "gateway" {
            "-".to_owned()
        } else if m.async_.expected == 0 && m.async_.received == 0 {
            "not routed".to_owned()
        } else if m.async_.received == 0 {
            "none received".to_owned()
        } else {
            ms(m.async_.latency.p99_us)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.2} % |",
            run.target,
            load_label(run, r.saturation.is_some()),
            m.offered_rps,
            m.throughput_rps,
            ms(m.sync.p50_us),
            ms(m.sync.p90_us),
            ms(m.sync.p99_us),
            ms(m.sync.p999_us),
            ms(m.sync.max_us),
            async_p99,
            run.cpu
                .map_or("-".to_owned(), |c| format!("{:.0}", c.per_request_us)),
            m.error_ratio * 100.0,
        );
    }
    critical(&mut s, r);
    if let Some(o) = &r.overload {
        super::overload::section(&mut s, o);
    }
    if let Some(soak) = &r.soak {
        super::soak::section(&mut s, soak);
    }
    if !r.ratios.is_empty() {
        let _ = writeln!(
            s,
            "\nGateway over reference (throughput: higher is better; p99 and CPU: lower is better):\n\n\
             | reference | load | throughput | p99 | CPU per request |\n|---|---|---:|---:|---:|"
        );
        for q in &r.ratios {
            let load = if r.saturation.is_some() {
                format!("{:.0} %", q.fraction * 100.0)
            } else {
                "scenario".to_owned()
            };
            let _ = writeln!(
                s,
                "| {} | {load} | {:.2} | {:.2} | {} |",
                q.reference,
                q.throughput,
                q.p99,
                q.cpu_per_request
                    .map_or("-".to_owned(), |c| format!("{c:.2}"))
            );
        }
    }
    let _ = writeln!(s, "\nAnswers by code:\n");
    for run in &r.runs {
        let codes: Vec<String> = run
            .summary
            .codes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "- {} {}: {}",
            run.target,
            load_label(run, r.saturation.is_some()),
            codes.join(", ")
        );
        let a = &run.summary.async_;
        if run.target == "gateway" && (a.expected > 0 || a.received > 0) {
            let _ = writeln!(
                s,
                "  asynchronous: {} of {} expected Service Responses received, {} duplicates, {} unmatched, alerts {:?}",
                a.received, a.expected, a.duplicates, a.unmatched, a.alerts
            );
        }
    }
    if let Some(o) = &r.oha {
        let _ = writeln!(
            s,
            "\noha against {} at {:.0} requests/s ({} connections): {:.0} answered/s, p50 {} ms, p99 {} ms, p99.9 {} ms; dccgw-load on the same: {}.\n",
            o.target,
            o.rate,
            o.connections,
            o.rps,
            ms(o.p50_us),
            ms(o.p99_us),
            ms(o.p999_us),
            o.ours.as_deref().unwrap_or("-")
        );
    }
    if !r.sla.is_empty() {
        let _ = writeln!(s, "\nSLA:\n");
        for c in &r.sla {
            let _ = writeln!(
                s,
                "- {} {} {}: {:.3} against {:.3}",
                if c.pass { "PASS" } else { "FAIL" },
                c.run,
                c.name,
                c.actual,
                c.limit
            );
        }
        let _ = writeln!(s, "\n**{}**", if r.pass { "PASS" } else { "FAIL" });
    }
    for note in &r.notes {
        let _ = writeln!(s, "\n> {note}");
    }
    s
}
