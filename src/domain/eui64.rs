//! EUI-64 identifiers as DUIS writes them: eight hex octets separated by dashes.

use std::fmt;
use std::str::FromStr;

/// An EUI-64, written `90-B3-D5-1F-30-01-00-00`; parsing is case-insensitive, display upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eui64([u8; 8]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Eui64Error {
    #[error("an EUI-64 is eight hex octets separated by dashes")]
    Syntax,
}

impl Eui64 {
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// Parses the sixteen hex digits without separators, as certificates and file names carry
    /// them (`90B3D51F30010000`).
    pub fn from_compact_hex(s: &str) -> Result<Self, Eui64Error> {
        let s = s.as_bytes();
        if s.len() != 16 {
            return Err(Eui64Error::Syntax);
        }
        let mut out = [0u8; 8];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Ok(Self(out))
    }

    /// The sixteen upper-case hex digits without separators.
    pub fn to_compact_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

fn hex_digit(c: u8) -> Result<u8, Eui64Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Eui64Error::Syntax),
    }
}

impl FromStr for Eui64 {
    type Err = Eui64Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        // 8 octets of 2 digits and 7 dashes.
        if s.len() != 23 {
            return Err(Eui64Error::Syntax);
        }
        let mut out = [0u8; 8];
        for (i, octet) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && s[at - 1] != b'-' {
                return Err(Eui64Error::Syntax);
            }
            *octet = (hex_digit(s[at])? << 4) | hex_digit(s[at + 1])?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Eui64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

impl fmt::Debug for Eui64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eui64({self})")
    }
}

impl serde::Serialize for Eui64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Eui64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_any_case_and_displays_upper() {
        let id: Eui64 = "90-b3-D5-1f-30-01-00-00".parse().unwrap();
        assert_eq!(id.to_string(), "90-B3-D5-1F-30-01-00-00");
        assert_eq!(id.to_compact_hex(), "90B3D51F30010000");
        assert_eq!(Eui64::from_compact_hex("90b3d51f30010000"), Ok(id));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "90-B3-D5-1F-30-01-00",
            "90-B3-D5-1F-30-01-00-00-",
            "90:B3:D5:1F:30:01:00:00",
            "90-B3-D5-1F-30-01-00-0G",
            "90B3-D5-1F-30-01-00-00-",
            "+0-B3-D5-1F-30-01-00-00",
            "90-B3-D5-1F-30-01-00-é",
        ] {
            assert_eq!(bad.parse::<Eui64>(), Err(Eui64Error::Syntax), "{bad}");
        }
        assert!(Eui64::from_compact_hex("90B3D51F3001000").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(bytes in any::<[u8; 8]>()) {
            let id = Eui64::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<Eui64>(), Ok(id));
            prop_assert_eq!(id.to_string().to_lowercase().parse::<Eui64>(), Ok(id));
            prop_assert_eq!(Eui64::from_compact_hex(&id.to_compact_hex()), Ok(id));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = s.parse::<Eui64>();
            let _ = Eui64::from_compact_hex(&s);
        }
    }
}
