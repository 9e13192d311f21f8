//! The overload bench's section of the markdown page.

use std::fmt::Write as _;

use crate::bench::overload::OverloadSummary;
use crate::stats::Percentiles;

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn both(p: &Percentiles) -> String {
    format!("{} / {}", ms(p.p50_us), ms(p.p99_us))
}

fn goal(pass: bool) -> &'static str {
    if pass {
        "met"
    } else {
        "**not met**"
    }
}

pub fn section(s: &mut String, o: &OverloadSummary) {
    let sp = &o.spec;
    let _ = writeln!(
        s,
        "\n## Overload: {:.1} × saturation ({:.0}/s offered) for {:.0} s\n\n\
         Baseline: {:.0} % of saturation ({:.0}/s) for {:.0} s; after the overload the plan drops \
         back to the baseline rate for {:.0} s.\n",
        sp.factor,
        o.offered_rps,
        sp.run_s,
        sp.baseline_fraction * 100.0,
        o.saturation_rps * sp.baseline_fraction,
        sp.baseline_s,
        sp.recovery_s
    );
    let critical_base = o.baseline_classes.get("critical").map(|c| &c.accepted_sync);
    let critical_over = o.overload_classes.get("critical").map(|c| &c.accepted_sync);
    let critical_shed = o.overload_classes.get("critical").map_or(0, |c| c.shed);
    let bulk_shed = o.overload_classes.get("bulk").map_or(0, |c| c.shed);
    let _ = writeln!(
        s,
        "| figure | value | goal |\n|---|---:|---|\n\
         | goodput (accepted/s of requests due in the overload) | {:.0}/s = **{:.1} %** of saturation | ≥ 90 %: {} |\n\
         | shed answers (E60/E61), due → answer, p50 / p99 ms | {} | p99 ≤ 5 ms: {} |\n\
         | shed answers, sent → answer, p50 / p99 ms | {} | |\n\
         | critical, accepted, p50 / p99 ms: baseline → overload | {} → {} | unchanged |\n\
         | critical shed / bulk shed (overload) | {} / {} | no critical shed while bulk is: {} |\n\
         | RSS before / after / peak MiB | {:.0} / {:.0} / {:.0} | flat |\n\
         | back to normal after the overload | {} | ≤ 5 s: {} |\n\
         | send lag during the overload, p50 / p99 ms | {} | |\n\
         | gateway CPU over the overload plan | {:.1} s | |",
        o.goodput_rps,
        o.goodput_ratio * 100.0,
        goal(o.goodput_ratio >= 0.9),
        both(&o.shed_sync),
        goal(o.shed_sync.count == 0 || o.shed_sync.p99_us <= 5_000),
        both(&o.shed_service),
        critical_base.map_or("-".into(), both),
        critical_over.map_or("-".into(), both),
        critical_shed,
        bulk_shed,
        goal(critical_shed == 0 || bulk_shed == 0),
        o.rss_before_kib as f64 / 1024.0,
        o.rss_after_kib as f64 / 1024.0,
        o.rss_peak_kib as f64 / 1024.0,
        o.back_to_normal_s
            .map_or("never within the recovery phase".into(), |t| format!("{t} s")),
        goal(o.back_to_normal_s.is_some_and(|t| t <= 5)),
        both(&o.send_lag),
        o.cpu_s,
    );
    if o.goodput_ratio > 1.05 {
        let _ = writeln!(
            s,
            "\n**The overload did not overload**: the gateway accepted more than the saturation \
             rate the ramp found, so that rate was measured low (a busy machine during the ramp). \
             Read the shed figures as those of a gateway near, not past, its capacity."
        );
    }
    let _ = writeln!(
        s,
        "\nBy admission class (the gateway's own table), baseline | overload:\n\n\
         | class | requests | accepted | shed | accepted p50 / p99 ms |\n|---|---|---|---|---|"
    );
    for (class, over) in &o.overload_classes {
        let base = o.baseline_classes.get(class).cloned().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {class} | {} \\| {} | {} \\| {} | {} \\| {} | {} \\| {} |",
            base.requests,
            over.requests,
            base.accepted,
            over.accepted,
            base.shed,
            over.shed,
            both(&base.accepted_sync),
            both(&over.accepted_sync),
        );
    }
    let codes: Vec<String> = o.codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let _ = writeln!(
        s,
        "\nOverload plan's answers by code: {}.",
        codes.join(", ")
    );
    let _ = writeln!(
        s,
        "\nEach second by due time (t = 0 the overload's start; requests, accepted, shed, sync p99 ms):\n"
    );
    let line: Vec<String> = o
        .seconds
        .iter()
        .map(|x| {
            format!(
                "{}: {} {} {} {}",
                x.t_s,
                x.requests,
                x.accepted,
                x.shed,
                ms(x.sync_p99_us)
            )
        })
        .collect();
    let _ = writeln!(s, "{}", line.join("; "));
}
