//! A DUIS `DCCAlertCode`: `AD1`, `N1` to `N65` except `N32`, or `N999` (the DUIS 5.4
//! enumeration). The one type for it, from the alert the gateway raises to the outbox record
//! that carries it and the audit record of its delivery.

use std::fmt;
use std::str::FromStr;

/// A DCC Alert code. The number of an `N` code is kept; `AD1` is 0.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DccAlertCode(u16);

/// Not one of the DUIS 5.4 DCC Alert codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a DUIS 5.4 DCC Alert code (AD1, N1 to N65 except N32, N999)")]
pub struct DccAlertCodeError;

/// The family letters of a DCC Alert code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DccAlertFamily {
    /// `AD…`: anomaly detection (`AD1`, a quarantined request).
    Ad,
    /// `N…`: DCC notifications (`N12`; `N999`).
    N,
}

impl DccAlertCode {
    /// `AD1`: anomaly detection, a request was quarantined.
    pub const AD1: Self = Self(0);
    pub const N999: Self = Self(999);

    /// `N<n>`, when the schema has it.
    pub const fn n(n: u16) -> Result<Self, DccAlertCodeError> {
        match n {
            1..=31 | 33..=65 | 999 => Ok(Self(n)),
            _ => Err(DccAlertCodeError),
        }
    }

    /// The code from its family and number, as a binary record keeps it.
    pub const fn from_parts(
        family: DccAlertFamily,
        number: u16,
    ) -> Result<Self, DccAlertCodeError> {
        match family {
            DccAlertFamily::Ad if number == 1 => Ok(Self::AD1),
            DccAlertFamily::Ad => Err(DccAlertCodeError),
            DccAlertFamily::N => Self::n(number),
        }
    }

    pub const fn family(self) -> DccAlertFamily {
        match self.0 {
            0 => DccAlertFamily::Ad,
            _ => DccAlertFamily::N,
        }
    }

    /// The number after the family letters (`1` for `AD1`).
    pub const fn number(self) -> u16 {
        match self.0 {
            0 => 1,
            n => n,
        }
    }
}

impl FromStr for DccAlertCode {
    type Err = DccAlertCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "AD1" {
            return Ok(Self::AD1);
        }
        let digits = s.strip_prefix('N').ok_or(DccAlertCodeError)?;
        let decimal = digits.bytes().all(|b| b.is_ascii_digit());
        if !decimal || digits.is_empty() || digits.starts_with('0') || digits.len() > 3 {
            return Err(DccAlertCodeError);
        }
        let n = digits.parse().map_err(|_| DccAlertCodeError)?;
        Self::n(n)
    }
}

impl fmt::Display for DccAlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("AD1"),
            n => write!(f, "N{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_schemas_and_round_trip() {
        for ok in ["AD1", "N1", "N31", "N33", "N65", "N999"] {
            let code = ok.parse::<DccAlertCode>().unwrap();
            assert_eq!(code.to_string(), ok);
            assert_eq!(
                DccAlertCode::from_parts(code.family(), code.number()),
                Ok(code)
            );
        }
        for bad in [
            "", "N", "N0", "N32", "N66", "N01", "n1", "AD2", "AD", "X1", "N9999", "N1000", "N+1",
            "N1 ",
        ] {
            assert_eq!(bad.parse::<DccAlertCode>(), Err(DccAlertCodeError), "{bad}");
        }
        assert_eq!(DccAlertCode::n(32), Err(DccAlertCodeError));
        assert_eq!(DccAlertCode::n(999), Ok(DccAlertCode::N999));
        assert_eq!(
            DccAlertCode::from_parts(DccAlertFamily::Ad, 2),
            Err(DccAlertCodeError)
        );
    }
}
