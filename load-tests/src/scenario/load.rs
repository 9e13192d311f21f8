//! The load: the arrival rate over time, piecewise constant, checked against the bounds a
//! scenario file or a command line may ask for.

use serde::Deserialize;

use super::ScenarioError;

/// The arrival rate over time: piecewise constant, open loop.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// `rate` requests per second for `duration_s` seconds.
    Constant { rate: f64, duration_s: f64 },
    /// `start`, `start + step`, … up to `max`, each held for `step_s` seconds.
    Ramp {
        start: f64,
        step: f64,
        step_s: f64,
        max: f64,
    },
    /// Any sequence of constant-rate steps (a burst between quieter periods, say).
    Steps { steps: Vec<Step> },
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub rate: f64,
    pub duration_s: f64,
}

/// Longest run a plan may describe, and the largest rate: bounds on what a scenario file or a
/// command line can ask for (every request is signed in memory before the run).
pub const MAX_DURATION_S: f64 = 3_600.0;
pub const MAX_RATE: f64 = 200_000.0;

impl Load {
    /// The steps, in order.
    pub fn steps(&self) -> Vec<Step> {
        match self {
            Load::Constant { rate, duration_s } => vec![Step {
                rate: *rate,
                duration_s: *duration_s,
            }],
            Load::Ramp {
                start,
                step,
                step_s,
                max,
            } => {
                let mut out = Vec::new();
                let mut rate = *start;
                // `check` made step positive, so this ends; the cap is a second guard.
                while rate <= *max + 1e-9 && out.len() < 1_000 {
                    out.push(Step {
                        rate,
                        duration_s: *step_s,
                    });
                    rate += step;
                }
                out
            }
            Load::Steps { steps } => steps.clone(),
        }
    }

    /// The same shape at a constant `rate` for `duration_s` (the bench's 50 % and 90 % runs).
    pub fn constant(rate: f64, duration_s: f64) -> Load {
        Load::Constant { rate, duration_s }
    }

    pub fn duration_s(&self) -> f64 {
        self.steps().iter().map(|s| s.duration_s).sum()
    }

    pub fn requests(&self) -> f64 {
        self.steps().iter().map(|s| s.rate * s.duration_s).sum()
    }

    pub(super) fn check(&self) -> Result<(), ScenarioError> {
        let bad = |what: &'static str| Err(ScenarioError::Load(what));
        if let Load::Ramp { step, step_s, .. } = self {
            if !positive(*step) || !positive(*step_s) {
                return bad("a ramp needs a positive step and step_s");
            }
        }
        let steps = self.steps();
        if steps.is_empty() {
            return bad("the load has no steps");
        }
        for s in &steps {
            if !(s.rate > 0.0 && s.rate <= MAX_RATE) {
                return bad("every rate must be above 0 and at most 200000 per second");
            }
            if !positive(s.duration_s) {
                return bad("every duration must be above 0");
            }
        }
        if self.duration_s() > MAX_DURATION_S {
            return bad("a run may last at most an hour");
        }
        Ok(())
    }
}

/// Above zero (false for NaN).
fn positive(x: f64) -> bool {
    x > 0.0
}
