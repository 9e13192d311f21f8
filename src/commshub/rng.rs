//! The simulator's seeded random generator: xoshiro256** seeded through SplitMix64 (Blackman and
//! Vigna's published algorithms, a few lines each). Written out rather than taken from a crate so
//! that a seed replays the same run whatever crate versions the build picks up.

use std::time::Duration;

use super::config::Latency;

#[derive(Clone, Debug)]
pub(super) struct SimRng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimRng {
    /// A generator for `seed` and a `stream` (each command gets its own stream, so its fate does
    /// not depend on the order in which concurrent commands arrive).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut x = seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let s = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Self { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: bias below 2^-64 per draw, irrelevant for a simulation.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // in (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An exponential gap with mean `1 / rate` seconds.
    pub fn exponential_secs(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }

    pub fn latency(&mut self, l: &Latency) -> Duration {
        let ms = match *l {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => {
                min_ms + self.below(max_ms.saturating_sub(min_ms).saturating_add(1))
            }
            Latency::LogNormal { median_ms, p99_ms } => {
                let mu = (median_ms.max(1) as f64).ln();
                // z(0.99) = 2.3263: the p99 is exp(mu + 2.3263 sigma).
                let sigma = ((p99_ms.max(1) as f64).ln() - mu).max(0.0) / 2.326_3;
                // Capped at an hour: a draw from the far tail is a timeout anyway.
                (mu + sigma * self.normal()).exp().min(3_600_000.0) as u64
            }
        };
        Duration::from_millis(ms)
    }
}
