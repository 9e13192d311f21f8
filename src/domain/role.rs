//! User Roles (what a User ID acts as) and SMKI certificate role codes (what a certificate is for).

use std::fmt;
use std::str::FromStr;

/// A DCC User Role. Each (party, role) pair has its own User ID; the eligibility class of a
/// service follows from the role (SEC Type A, B, C).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum UserRole {
    /// Import Supplier: Type A for the import MPAN.
    ImportSupplier,
    /// Export Supplier: Type A for the export MPAN.
    ExportSupplier,
    /// Gas Supplier: Type A for the MPRN.
    GasSupplier,
    /// Registered Supplier Agent: Type A on the supplier's behalf.
    RegisteredSupplierAgent,
    /// Electricity Distributor: Type B.
    ElectricityDistributor,
    /// Gas Transporter: Type B.
    GasTransporter,
    /// Other User: Type C.
    OtherUser,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("not a User Role code (IS ES GS RSA ED GT OU)")]
    UnknownUserRole,
    #[error("not a two-digit hex SMKI role code")]
    SmkiSyntax,
}

impl UserRole {
    pub const ALL: [UserRole; 7] = [
        Self::ImportSupplier,
        Self::ExportSupplier,
        Self::GasSupplier,
        Self::RegisteredSupplierAgent,
        Self::ElectricityDistributor,
        Self::GasTransporter,
        Self::OtherUser,
    ];

    /// The code DUIS and the SEC use: `IS`, `ES`, `GS`, `RSA`, `ED`, `GT`, `OU`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::ImportSupplier => "IS",
            Self::ExportSupplier => "ES",
            Self::GasSupplier => "GS",
            Self::RegisteredSupplierAgent => "RSA",
            Self::ElectricityDistributor => "ED",
            Self::GasTransporter => "GT",
            Self::OtherUser => "OU",
        }
    }
}

impl FromStr for UserRole {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or(RoleError::UnknownUserRole)
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl serde::Serialize for UserRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for UserRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The SMKI Organisation certificate role, carried in the subject's `OU` as two hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SmkiRole {
    /// `02`: a supplier's key.
    Supplier,
    /// `03`: a network operator's key.
    NetworkOperator,
    /// `04`: the DCC access-control broker.
    AccessControlBroker,
    /// `07`: an issuing authority (CA).
    IssuingAuthority,
    /// `7F`: other.
    Other,
    /// `87`: a User's XML-signing key.
    XmlSigning,
    /// `89`: the DCC's XML-signing key.
    DccXmlSigning,
    /// Any other code: parsed, kept, never granted anything.
    Unrecognised(u8),
}

impl SmkiRole {
    pub const fn from_code(code: u8) -> Self {
        match code {
            0x02 => Self::Supplier,
            0x03 => Self::NetworkOperator,
            0x04 => Self::AccessControlBroker,
            0x07 => Self::IssuingAuthority,
            0x7F => Self::Other,
            0x87 => Self::XmlSigning,
            0x89 => Self::DccXmlSigning,
            other => Self::Unrecognised(other),
        }
    }

    pub const fn code(self) -> u8 {
        match self {
            Self::Supplier => 0x02,
            Self::NetworkOperator => 0x03,
            Self::AccessControlBroker => 0x04,
            Self::IssuingAuthority => 0x07,
            Self::Other => 0x7F,
            Self::XmlSigning => 0x87,
            Self::DccXmlSigning => 0x89,
            Self::Unrecognised(c) => c,
        }
    }
}

impl FromStr for SmkiRole {
    type Err = RoleError;

    /// Two hex digits, as the certificate's `OU` carries them (`02`, `7F`, `87`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RoleError::SmkiSyntax);
        }
        u8::from_str_radix(s, 16)
            .map(Self::from_code)
            .map_err(|_| RoleError::SmkiSyntax)
    }
}

impl fmt::Display for SmkiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_roles_round_trip() {
        for role in UserRole::ALL {
            assert_eq!(role.code().parse(), Ok(role));
        }
        assert_eq!("is".parse::<UserRole>(), Err(RoleError::UnknownUserRole));
        assert_eq!("".parse::<UserRole>(), Err(RoleError::UnknownUserRole));
    }

    #[test]
    fn smki_roles_round_trip() {
        for code in 0..=255u8 {
            let role = SmkiRole::from_code(code);
            assert_eq!(role.code(), code);
            assert_eq!(role.to_string().parse(), Ok(role));
        }
        assert_eq!("7f".parse(), Ok(SmkiRole::Other));
        assert_eq!("87".parse(), Ok(SmkiRole::XmlSigning));
        for bad in ["", "8", "877", "+7", "0x"] {
            assert_eq!(bad.parse::<SmkiRole>(), Err(RoleError::SmkiSyntax), "{bad}");
        }
    }
}
