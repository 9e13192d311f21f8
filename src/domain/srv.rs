//! Service Reference Variants (`4.1.1`), Service References (`4.1`) and Command Variants (1–8).

use std::fmt;
use std::str::FromStr;

/// A Service Reference Variant: two or three dot-separated decimal parts (`8.2`, `4.1.1`).
/// Whether it names a real service is the catalogue's business, not the syntax's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Srv {
    parts: [u8; 3],
    /// 2 or 3.
    len: u8,
}

/// A Service Reference: the first two parts of a variant (`4.1`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceReference([u8; 2]);

/// A DUIS Command Variant, 1 to 8.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CommandVariant(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrvError {
    #[error("a service reference variant is two or three dot-separated numbers")]
    SrvSyntax,
    #[error("a service reference is two dot-separated numbers")]
    ServiceReferenceSyntax,
    #[error("a command variant is a number from 1 to 8")]
    CommandVariant,
}

/// Parses `n(.n)*` with 2..=max_parts parts, each a decimal below 256 without leading zeros.
fn parse_parts(s: &str, max_parts: usize) -> Option<([u8; 3], u8)> {
    let mut parts = [0u8; 3];
    let mut len = 0usize;
    for piece in s.split('.') {
        if len == max_parts
            || piece.is_empty()
            || piece.len() > 3
            || !piece.bytes().all(|b| b.is_ascii_digit())
            || (piece.len() > 1 && piece.starts_with('0'))
        {
            return None;
        }
        parts[len] = piece.parse().ok()?;
        len += 1;
    }
    (len >= 2).then_some((parts, len as u8))
}

impl Srv {
    pub fn service_reference(&self) -> ServiceReference {
        ServiceReference([self.parts[0], self.parts[1]])
    }

    /// The first number of the variant: the group of services it belongs to (`4` for 4.1.1).
    pub fn group(&self) -> u8 {
        self.parts[0]
    }

    /// The variant's text, as `Display` writes it, without allocating: for a metric's label
    /// and the answer's header on every request.
    pub fn text(&self) -> SrvText {
        let mut t = SrvText {
            buf: [0; 11],
            len: 0,
        };
        for (i, part) in self.parts[..usize::from(self.len)].iter().enumerate() {
            if i > 0 {
                t.push(b'.');
            }
            if *part >= 100 {
                t.push(b'0' + part / 100);
            }
            if *part >= 10 {
                t.push(b'0' + part / 10 % 10);
            }
            t.push(b'0' + part % 10);
        }
        t
    }
}

/// An SRV's text (`255.255.255` at most), on the stack.
#[derive(Clone, Copy)]
pub struct SrvText {
    buf: [u8; 11],
    len: u8,
}

impl SrvText {
    fn push(&mut self, b: u8) {
        self.buf[usize::from(self.len)] = b;
        self.len += 1;
    }
}

impl std::ops::Deref for SrvText {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII digits and dots are pushed.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for Srv {
    type Err = SrvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (parts, len) = parse_parts(s, 3).ok_or(SrvError::SrvSyntax)?;
        Ok(Self { parts, len })
    }
}

impl fmt::Display for Srv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.parts[0], self.parts[1])?;
        if self.len == 3 {
            write!(f, ".{}", self.parts[2])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Srv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Srv({self})")
    }
}

impl ServiceReference {
    /// The family: the first part (`8` for `8.11`).
    pub const fn family(self) -> u8 {
        self.0[0]
    }
}

impl FromStr for ServiceReference {
    type Err = SrvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (parts, _) = parse_parts(s, 2).ok_or(SrvError::ServiceReferenceSyntax)?;
        Ok(Self([parts[0], parts[1]]))
    }
}

impl fmt::Display for ServiceReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0[0], self.0[1])
    }
}

impl fmt::Debug for ServiceReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceReference({self})")
    }
}

impl CommandVariant {
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for CommandVariant {
    type Error = SrvError;

    fn try_from(v: u8) -> Result<Self, Self::Error> {
        if (1..=8).contains(&v) {
            Ok(Self(v))
        } else {
            Err(SrvError::CommandVariant)
        }
    }
}

impl FromStr for CommandVariant {
    type Err = SrvError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [d @ b'1'..=b'8'] => Self::try_from(d - b'0'),
            _ => Err(SrvError::CommandVariant),
        }
    }
}

impl fmt::Display for CommandVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(Srv);
serde_via_str!(ServiceReference);

impl serde::Serialize for CommandVariant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CommandVariant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(u8::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_variants() {
        let srv: Srv = "4.1.1".parse().unwrap();
        assert_eq!(srv.to_string(), "4.1.1");
        assert_eq!(srv.service_reference().to_string(), "4.1");
        let srv: Srv = "8.2".parse().unwrap();
        assert_eq!(srv.service_reference(), "8.2".parse().unwrap());
        assert_eq!("14.1".parse::<Srv>().unwrap().to_string(), "14.1");
        for bad in [
            "", "8", "8.", ".2", "4.1.1.1", "04.1", "4.1a", "256.1", "4..1", " 4.1",
        ] {
            assert_eq!(bad.parse::<Srv>(), Err(SrvError::SrvSyntax), "{bad}");
        }
        assert!("4.1.1".parse::<ServiceReference>().is_err());
    }

    #[test]
    fn text_is_what_display_writes() {
        for text in [
            "4.1.1",
            "8.2",
            "14.1",
            "255.255.255",
            "0.0",
            "10.100.9",
            "99.9.10",
        ] {
            let srv: Srv = text.parse().unwrap();
            assert_eq!(&*srv.text(), text);
            assert_eq!(&*srv.text(), srv.to_string());
        }
    }

    #[test]
    fn command_variants() {
        for v in 1..=8u8 {
            assert_eq!(v.to_string().parse::<CommandVariant>().unwrap().get(), v);
        }
        for bad in ["0", "9", "", "01", "1 "] {
            assert!(bad.parse::<CommandVariant>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn srv_round_trips(a in any::<u8>(), b in any::<u8>(), c in proptest::option::of(any::<u8>())) {
            let s = match c { Some(c) => format!("{a}.{b}.{c}"), None => format!("{a}.{b}") };
            let srv: Srv = s.parse().unwrap();
            prop_assert_eq!(srv.to_string(), s);
        }

        #[test]
        fn never_panics(s in ".{0,20}") {
            let _ = s.parse::<Srv>();
            let _ = s.parse::<ServiceReference>();
            let _ = s.parse::<CommandVariant>();
        }
    }
}
