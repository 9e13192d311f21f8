//! The DUIS RequestID: `BusinessOriginatorID:BusinessTargetID:OriginatorCounter`.

use std::fmt;
use std::str::FromStr;

use super::eui64::Eui64;

/// A RequestID. The originator is the User ID, the target the device (or the DCC itself for
/// non-device requests); the counter is the originator's, and must rise (anti-replay).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestId {
    pub originator: Eui64,
    pub target: Eui64,
    pub counter: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    #[error("a RequestID is originator:target:counter")]
    Shape,
    #[error("the originator or target is not an EUI-64")]
    Eui64,
    #[error("the counter is not a decimal number below 2^64 without leading zeros")]
    Counter,
}

impl RequestId {
    /// The ResponseID a device answer carries: target and originator swapped, same counter.
    pub fn response_id(&self) -> String {
        format!("{}:{}:{}", self.target, self.originator, self.counter)
    }
}

impl FromStr for RequestId {
    type Err = RequestIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let (Some(o), Some(t), Some(c), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(RequestIdError::Shape);
        };
        let originator = o.parse().map_err(|_| RequestIdError::Eui64)?;
        let target = t.parse().map_err(|_| RequestIdError::Eui64)?;
        // The schema's pattern: `0` or a decimal without leading zeros, at most 2^64-1.
        let digits_ok = !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_digit())
            && (c == "0" || !c.starts_with('0'));
        if !digits_ok {
            return Err(RequestIdError::Counter);
        }
        let counter = c.parse().map_err(|_| RequestIdError::Counter)?;
        Ok(Self {
            originator,
            target,
            counter,
        })
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.originator, self.target, self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_template_form() {
        let id: RequestId = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000"
            .parse()
            .unwrap();
        assert_eq!(id.originator.to_string(), "90-B3-D5-1F-30-01-00-00");
        assert_eq!(id.target.to_string(), "00-DB-12-34-56-78-90-A0");
        assert_eq!(id.counter, 1000);
        assert_eq!(
            id.response_id(),
            "00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:1000"
        );
    }

    #[test]
    fn refuses_malformed() {
        let o = "90-B3-D5-1F-30-01-00-00";
        let t = "00-DB-12-34-56-78-90-A0";
        let cases = [
            (format!("{o}:{t}"), RequestIdError::Shape),
            (format!("{o}:{t}:1:2"), RequestIdError::Shape),
            (format!("{o}:x:1"), RequestIdError::Eui64),
            (format!("{o}:{t}:"), RequestIdError::Counter),
            (format!("{o}:{t}:01"), RequestIdError::Counter),
            (format!("{o}:{t}:-1"), RequestIdError::Counter),
            (format!("{o}:{t}:+1"), RequestIdError::Counter),
            (
                format!("{o}:{t}:18446744073709551616"),
                RequestIdError::Counter,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<RequestId>(), Err(want), "{s}");
        }
        let max: RequestId = format!("{o}:{t}:18446744073709551615").parse().unwrap();
        assert_eq!(max.counter, u64::MAX);
    }

    proptest! {
        #[test]
        fn round_trips(o in any::<[u8; 8]>(), t in any::<[u8; 8]>(), counter in any::<u64>()) {
            let id = RequestId { originator: Eui64::from_bytes(o), target: Eui64::from_bytes(t), counter };
            prop_assert_eq!(id.to_string().parse::<RequestId>(), Ok(id));
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = s.parse::<RequestId>();
        }
    }
}
