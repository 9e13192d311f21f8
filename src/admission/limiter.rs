//! The admission decision for one request: its User's concurrency and rate bounds first (so
//! that one User cannot take what others need), then the global limit for its class. Pure
//! state: the caller holds it under one lock and passes the time in.

use std::collections::HashMap;

use super::classes::Class;
use super::gradient::Gradient2;
use super::AdmissionConfig;
use crate::domain::UserId;

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The gateway is at its limit for the request's class (`E60`, HTTP 503).
    Overload(Class),
    /// The User has its bound of requests in flight (`E61`, HTTP 429).
    UserConcurrency,
    /// The User has sent faster than its rate for longer than its burst (`E61`, HTTP 429).
    UserRate,
}

impl Shed {
    /// The metric and log label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Overload(_) => "overload",
            Self::UserConcurrency => "user_concurrency",
            Self::UserRate => "user_rate",
        }
    }
}

/// Every decision label: `admitted` and each [`Shed`]'s.
pub const DECISIONS: [&str; 4] = ["admitted", "overload", "user_concurrency", "user_rate"];

/// An admitted request: give it back with [`Limiter::release`] when it has been answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    pub user: UserId,
    pub class: Class,
    pub started_ns: u64,
    /// Requests in flight, this one included, when it was admitted.
    pub inflight: usize,
}

/// A User's requests in flight and its token bucket.
#[derive(Debug, Clone, Copy)]
struct UserState {
    inflight: usize,
    tokens: f64,
    at_ns: u64,
}

/// The global limit, the requests in flight, and each User's state.
#[derive(Debug, Clone)]
pub struct Limiter {
    config: AdmissionConfig,
    gradient: Gradient2,
    inflight: usize,
    /// One entry per User seen recently; at `max_users` entries the idle Users whose buckets
    /// are full again are forgotten (they lose nothing: a new entry starts full). Only Users in
    /// the party register reach admission, so the register's size bounds it whatever happens.
    users: HashMap<UserId, UserState>,
}

impl Limiter {
    pub fn new(config: AdmissionConfig) -> Self {
        let gradient = Gradient2::new(
            config.initial_limit,
            config.min_limit,
            config.max_limit,
            config.window_ms.saturating_mul(1_000_000),
        );
        Self {
            config,
            gradient,
            inflight: 0,
            users: HashMap::new(),
        }
    }

    /// The global limit now.
    pub fn limit(&self) -> usize {
        if self.config.adaptive {
            self.gradient.limit()
        } else {
            self.config.initial_limit.max(1)
        }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight
    }

    /// Users with state kept now.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// How many requests of `class` may be in flight at once under the limit now: bulk reads a
    /// share of it, standard requests all of it, critical ones up to `max_limit` whatever the
    /// adaptive limit (they are few, each User's bounds still hold, and a limit that fell
    /// while they were in flight must not shed them). Never fewer than one.
    pub fn ceiling(&self, class: Class) -> usize {
        let limit = self.limit() as f64;
        let c = match class {
            Class::Bulk => limit * self.config.bulk_share,
            Class::Standard => limit,
            Class::Critical => self.config.max_limit.max(self.limit()) as f64,
        };
        (c as usize).max(1)
    }

    /// Admits a request of `class` from `user` at `now_ns`, or says why not. A request that is
    /// not admitted takes nothing: no slot, no token.
    pub fn admit(&mut self, user: UserId, class: Class, now_ns: u64) -> Result<Admitted, Shed> {
        if self.users.len() >= self.config.max_users && !self.users.contains_key(&user) {
            self.forget_idle(now_ns);
        }
        let (rate, burst) = (self.config.per_user_rate, self.config.per_user_burst);
        let (ceiling, inflight) = (self.ceiling(class), self.inflight);
        let per_user = self.config.per_user_concurrency;
        let state = self.users.entry(user).or_insert(UserState {
            inflight: 0,
            tokens: burst,
            at_ns: now_ns,
        });
        refill(state, rate, burst, now_ns);
        if state.inflight >= per_user {
            return Err(Shed::UserConcurrency);
        }
        if state.tokens < 1.0 {
            return Err(Shed::UserRate);
        }
        if inflight >= ceiling {
            return Err(Shed::Overload(class));
        }
        state.tokens -= 1.0;
        state.inflight += 1;
        self.inflight += 1;
        Ok(Admitted {
            user,
            class,
            started_ns: now_ns,
            inflight: self.inflight,
        })
    }

    /// Gives back an admitted request's slots, answered at `now_ns`; its latency is a sample
    /// for the limit. The new limit when the sample closed a window.
    pub fn release(&mut self, admitted: &Admitted, now_ns: u64) -> Option<usize> {
        self.inflight = self.inflight.saturating_sub(1);
        if let Some(state) = self.users.get_mut(&admitted.user) {
            state.inflight = state.inflight.saturating_sub(1);
        }
        if !self.config.adaptive {
            return None;
        }
        let rtt = now_ns.saturating_sub(admitted.started_ns);
        self.gradient.sample(now_ns, rtt, admitted.inflight)
    }

    /// Seconds until `user` has a token again (at least 1): the `Retry-After` of a rate refusal.
    pub fn retry_after_secs(&self, user: &UserId) -> u64 {
        let Some(state) = self.users.get(user) else {
            return 1;
        };
        let missing = (1.0 - state.tokens).max(0.0);
        let rate = self.config.per_user_rate;
        if rate <= 0.0 {
            return 1;
        }
        ((missing / rate).ceil() as u64).max(1)
    }

    fn forget_idle(&mut self, now_ns: u64) {
        let (rate, burst) = (self.config.per_user_rate, self.config.per_user_burst);
        self.users.retain(|_, s| {
            refill(s, rate, burst, now_ns);
            s.inflight > 0 || s.tokens < burst
        });
    }
}

/// Adds the tokens earned since the bucket was last looked at, up to `burst`.
fn refill(state: &mut UserState, rate: f64, burst: f64, now_ns: u64) {
    let elapsed = now_ns.saturating_sub(state.at_ns) as f64 / 1e9;
    state.tokens = (state.tokens + elapsed * rate).min(burst);
    state.at_ns = state.at_ns.max(now_ns);
}
