//! From raw results to figures: HdrHistogram percentiles (microseconds, three significant
//! digits), throughput, and answers by code — for the whole run, per load step and per request
//! class, synchronous and asynchronous.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::SyncResult;
use crate::plan::Plan;
use crate::receiver::Deliveries;
use crate::scenario::MixEntry;

/// Latencies are recorded from 1 µs to one hour.
const MAX_US: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    // Constant bounds hdrhistogram accepts (low >= 1, high >= 2 x low, 3 significant digits):
    // this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid")
}

pub fn record_ns(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record((ns / 1_000).clamp(1, MAX_US));
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
        mean_us: (h.mean() * 10.0).round() / 10.0,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StepSummary {
    pub offered_rps: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub accepted: u64,
    /// Accepted answers to this step's requests per second of the step.
    pub throughput_rps: f64,
    pub sync: Percentiles,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AsyncSummary {
    /// Requests sent to a device and acknowledged I99: each should bring a Service Response.
    pub expected: u64,
    pub received: u64,
    /// From the request's due time to the Service Response's arrival.
    pub latency: Percentiles,
    pub codes: BTreeMap<String, u64>,
    pub duplicates: u64,
    /// Requests for local delivery acknowledged I99 (Command Variants 2, 3, 6, 7): each should
    /// bring a command for local delivery …
    pub expected_local: u64,
    /// … and these arrived.
    pub local_commands: u64,
    pub unmatched: u64,
    pub unreadable: u64,
    pub alerts: BTreeMap<String, u64>,
}

/// A critical class's pairs: the Transform, the User's signing, the signed pre-command, the
/// whole pair, and the device's Service Response.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CriticalSummary {
    /// Pairs run (their Transforms sent) …
    pub pairs: u64,
    /// … whose signed pre-command was sent (the Transform answered `I0` with a pre-command) …
    pub signed: u64,
    /// … and accepted (`I99`): the pair's outcome is the signed pre-command's.
    pub accepted: u64,
    /// The Transform (Command Variant 4): due → its answer.
    pub transform: Percentiles,
    /// The User's work: the Transform's answer → the signed pre-command sent.
    pub user_signing: Percentiles,
    /// The signed pre-command (Command Variant 5, 6 or 7): sent → its answer.
    pub signed_precommand: Percentiles,
    /// The whole pair: the Transform due → the signed pre-command's answer.
    pub pair: Percentiles,
    /// The device's Service Response: the Transform due → its arrival.
    pub device_response: Percentiles,
}

#[derive(Default)]
struct CriticalHistograms {
    pairs: u64,
    signed: u64,
    accepted: u64,
    transform: Option<Histogram<u64>>,
    user_signing: Option<Histogram<u64>>,
    signed_precommand: Option<Histogram<u64>>,
    pair: Option<Histogram<u64>>,
    device_response: Option<Histogram<u64>>,
}

impl CriticalHistograms {
    fn record(&mut self, r: &SyncResult) {
        self.pairs += 1;
        let Some(p) = r.pair else { return };
        self.signed += 1;
        self.accepted += u64::from(r.outcome.accepted());
        let put = |h: &mut Option<Histogram<u64>>, ns| {
            record_ns(h.get_or_insert_with(histogram), ns);
        };
        put(&mut self.transform, p.transform_ns);
        put(&mut self.user_signing, p.signing_ns);
        put(&mut self.signed_precommand, p.signed_ns);
        put(&mut self.pair, r.latency_ns);
    }

    fn summary(&self) -> CriticalSummary {
        let p = |h: &Option<Histogram<u64>>| h.as_ref().map(percentiles).unwrap_or_default();
        CriticalSummary {
            pairs: self.pairs,
            signed: self.signed,
            accepted: self.accepted,
            transform: p(&self.transform),
            user_signing: p(&self.user_signing),
            signed_precommand: p(&self.signed_precommand),
            pair: p(&self.pair),
            device_response: p(&self.device_response),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub offered_rps: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub accepted: u64,
    /// Accepted answers per second, from time zero to the last answer.
    pub throughput_rps: f64,
    pub error_ratio: f64,
    /// Due (or sent, if earlier) to answered: the open-loop latency.
    pub sync: Percentiles,
    /// Sent to answered: what a closed-loop tool would report.
    pub service: Percentiles,
    /// How late requests were sent after they were due (generator or lane backlog).
    pub send_lag: Percentiles,
    pub codes: BTreeMap<String, u64>,
    pub by_class: BTreeMap<String, Percentiles>,
    /// Critical classes (a Transform, then its signed pre-command), by class name. A pair is one
    /// request everywhere else in the summary: its latency runs to the second answer.
    pub critical: BTreeMap<String, CriticalSummary>,
    pub steps: Vec<StepSummary>,
    #[serde(rename = "async")]
    pub async_: AsyncSummary,
}

/// Summarises a run. `elapsed_s` is time zero to the last answer.
pub fn summarise(
    plan: &Plan,
    mix: &[MixEntry],
    results: &[SyncResult],
    elapsed_s: f64,
    deliveries: Option<&Deliveries>,
) -> RunSummary {
    let (mut sync, mut service, mut lag) = (histogram(), histogram(), histogram());
    let mut by_class: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut critical: BTreeMap<String, CriticalHistograms> = BTreeMap::new();
    let mut steps: Vec<(Histogram<u64>, u64, u64)> =
        plan.steps.iter().map(|_| (histogram(), 0, 0)).collect();
    let mut codes = BTreeMap::new();
    let (mut accepted, mut expected_async, mut expected_local) = (0u64, 0u64, 0u64);
    for r in results {
        let Some(item) = plan.items.get(r.idx as usize) else {
            continue;
        };
        let entry = &mix[usize::from(item.class)];
        record_ns(&mut sync, r.latency_ns);
        record_ns(&mut service, r.service_ns);
        record_ns(&mut lag, r.lag_ns);
        record_ns(
            by_class.entry(entry.name.clone()).or_insert_with(histogram),
            r.latency_ns,
        );
        *codes.entry(r.outcome.label()).or_insert(0) += 1;
        if entry.critical().is_some() {
            critical.entry(entry.name.clone()).or_default().record(r);
        }
        let step = steps.get_mut(usize::from(item.step));
        if let Some((h, n, _)) = step {
            record_ns(h, r.latency_ns);
            *n += 1;
        }
        if r.outcome.accepted() {
            accepted += 1;
            if let Some((_, _, ok)) = steps.get_mut(usize::from(item.step)) {
                *ok += 1;
            }
            // Only a command sent to a device brings a Service Response (CV2/CV6 return the
            // command to the User instead, as a `LocalCommand`, counted apart). A critical
            // pair's outcome is its signed pre-command's.
            let acknowledged = r.outcome.label() == "I99";
            expected_async += u64::from(entry.routed() && acknowledged);
            expected_local += u64::from(entry.local_delivery() && acknowledged);
        }
    }
    if let Some(d) = deliveries {
        for (i, ns) in d.latencies() {
            let Some(item) = plan.items.get(i) else {
                continue;
            };
            if let Some(c) = critical.get_mut(&mix[usize::from(item.class)].name) {
                record_ns(c.device_response.get_or_insert_with(histogram), ns);
            }
        }
    }
    let duration_s = plan.duration_ns() as f64 / 1e9;
    let requests = results.len() as u64;
    RunSummary {
        offered_rps: plan.items.len() as f64 / duration_s.max(1e-9),
        duration_s,
        requests,
        accepted,
        throughput_rps: accepted as f64 / elapsed_s.max(1e-9),
        error_ratio: (requests - accepted) as f64 / (requests.max(1)) as f64,
        sync: percentiles(&sync),
        service: percentiles(&service),
        send_lag: percentiles(&lag),
        codes,
        by_class: by_class
            .iter()
            .map(|(k, h)| (k.clone(), percentiles(h)))
            .collect(),
        critical: critical
            .iter()
            .map(|(k, c)| (k.clone(), c.summary()))
            .collect(),
        steps: plan
            .steps
            .iter()
            .zip(&steps)
            .map(|(s, (h, n, ok))| {
                let d = (s.end_ns - s.start_ns) as f64 / 1e9;
                StepSummary {
                    offered_rps: s.rate,
                    duration_s: d,
                    requests: *n,
                    accepted: *ok,
                    throughput_rps: *ok as f64 / d.max(1e-9),
                    sync: percentiles(h),
                }
            })
            .collect(),
        async_: deliveries.map_or_else(AsyncSummary::default, |d| {
            async_summary(d, expected_async, expected_local)
        }),
    }
}

fn async_summary(d: &Deliveries, expected: u64, expected_local: u64) -> AsyncSummary {
    use std::sync::atomic::Ordering::Relaxed;
    let mut h = histogram();
    let mut received = 0;
    for (_, ns) in d.latencies() {
        record_ns(&mut h, ns);
        received += 1;
    }
    let copy = |m: &std::sync::Mutex<BTreeMap<String, u64>>| {
        m.lock().map(|g| g.clone()).unwrap_or_default()
    };
    AsyncSummary {
        expected,
        received,
        latency: percentiles(&h),
        codes: copy(&d.codes),
        duplicates: d.duplicates.load(Relaxed),
        expected_local,
        local_commands: d.local_commands.load(Relaxed),
        unmatched: d.unmatched.load(Relaxed),
        unreadable: d.unreadable.load(Relaxed),
        alerts: copy(&d.alerts),
    }
}

#[cfg(test)]
mod tests;
