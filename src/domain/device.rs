//! Devices and meter points: device types, SMI statuses, and MPxNs (MPAN or MPRN).

use std::fmt;
use std::str::FromStr;

/// Why a command sent to a device has no answer (each maps to one DUIS code, in `crate::error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceFailure {
    /// The network could not reach the device, or would not take the command.
    Unreachable,
    /// No answer within the SRV's time to answer.
    NoAnswer,
    /// The device refused the command: it could not verify the User's signature on a critical
    /// command (or could not read the command at all).
    Refused,
}

/// A smart-metering device type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum DeviceType {
    /// Electricity smart meter.
    Esme,
    /// Gas smart meter.
    Gsme,
    /// Gas proxy function.
    Gpf,
    /// Communications hub function.
    Chf,
    /// Prepayment meter interface device.
    Ppmid,
    /// In-home display.
    Ihd,
    /// Consumer access device.
    Cad,
    /// HAN-connected auxiliary load control switch.
    Hcalcs,
}

/// A device's SMI status.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum DeviceStatus {
    Pending,
    Whitelisted,
    InstalledNotCommissioned,
    Commissioned,
    Decommissioned,
    Withdrawn,
    Suspended,
    Recovery,
    Recovered,
}

/// A meter point: an MPAN (electricity, 13 digits) or an MPRN (gas, 6 to 10 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Mpxn {
    Mpan(u64),
    Mprn(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("not a device type (ESME GSME GPF CHF PPMID IHD CAD HCALCS)")]
    DeviceType,
    #[error("not an SMI status")]
    DeviceStatus,
    #[error("an MPxN is 13 digits (MPAN) or 6 to 10 digits (MPRN)")]
    Mpxn,
}

macro_rules! names {
    ($t:ty, $err:expr, $($v:ident = $s:literal),+ $(,)?) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
        }

        impl FromStr for $t {
            type Err = DeviceError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok(<$t>::$v),)+ _ => Err($err) }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(
    DeviceType,
    DeviceError::DeviceType,
    Esme = "ESME",
    Gsme = "GSME",
    Gpf = "GPF",
    Chf = "CHF",
    Ppmid = "PPMID",
    Ihd = "IHD",
    Cad = "CAD",
    Hcalcs = "HCALCS"
);

names!(
    DeviceStatus,
    DeviceError::DeviceStatus,
    Pending = "Pending",
    Whitelisted = "Whitelisted",
    InstalledNotCommissioned = "InstalledNotCommissioned",
    Commissioned = "Commissioned",
    Decommissioned = "Decommissioned",
    Withdrawn = "Withdrawn",
    Suspended = "Suspended",
    Recovery = "Recovery",
    Recovered = "Recovered"
);

impl Mpxn {
    pub const fn is_electricity(self) -> bool {
        matches!(self, Self::Mpan(_))
    }
}

impl FromStr for Mpxn {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DeviceError::Mpxn);
        }
        let n: u64 = s.parse().map_err(|_| DeviceError::Mpxn)?;
        match s.len() {
            13 => Ok(Self::Mpan(n)),
            6..=10 => Ok(Self::Mprn(n)),
            _ => Err(DeviceError::Mpxn),
        }
    }
}

impl fmt::Display for Mpxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mpan(n) => write!(f, "{n:013}"),
            // MPRNs are written without leading zeros; 6 to 10 digits as issued.
            Self::Mprn(n) => write!(f, "{n:06}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for t in DeviceType::ALL {
            assert_eq!(t.as_str().parse(), Ok(*t));
        }
        for s in DeviceStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(*s));
        }
        assert_eq!("esme".parse::<DeviceType>(), Err(DeviceError::DeviceType));
        assert_eq!("".parse::<DeviceStatus>(), Err(DeviceError::DeviceStatus));
    }

    #[test]
    fn mpxns() {
        assert_eq!("1200023305967".parse(), Ok(Mpxn::Mpan(1_200_023_305_967)));
        assert_eq!(
            "0100023305967".parse::<Mpxn>().unwrap().to_string(),
            "0100023305967"
        );
        assert_eq!("3453612".parse(), Ok(Mpxn::Mprn(3_453_612)));
        for bad in [
            "",
            "12345",
            "12345678901",
            "123456789012",
            "12345678901234",
            "12345a",
            "+123456",
        ] {
            assert_eq!(bad.parse::<Mpxn>(), Err(DeviceError::Mpxn), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn mpans_round_trip(n in 0u64..10_000_000_000_000) {
            let m = Mpxn::Mpan(n);
            prop_assert_eq!(m.to_string().parse::<Mpxn>(), Ok(m));
        }

        #[test]
        fn mprns_round_trip(n in 100_000u64..10_000_000_000) {
            let m = Mpxn::Mprn(n);
            prop_assert_eq!(m.to_string().parse::<Mpxn>(), Ok(m));
        }

        #[test]
        fn never_panics(s in ".{0,20}") {
            let _ = s.parse::<Mpxn>();
            let _ = s.parse::<DeviceType>();
            let _ = s.parse::<DeviceStatus>();
        }
    }
}
