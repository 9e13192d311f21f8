//! The three DUIS request services and the Command Variants each accepts.

use std::fmt;

use super::srv::CommandVariant;

/// A DUIS request service, one per URL path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DuisService {
    /// `/api/v1/serviceS`: Send Command, Command Variants 1, 3, 5, 7.
    Send,
    /// `/api/v1/serviceT`: Transform (critical → pre-command), Command Variant 4.
    Transform,
    /// `/api/v1/serviceD`: DCC-only, non-device and local delivery, Command Variants 2, 6, 8.
    Dcc,
}

impl DuisService {
    pub const ALL: [DuisService; 3] = [Self::Send, Self::Transform, Self::Dcc];

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.path() == path)
    }

    pub const fn path(self) -> &'static str {
        match self {
            Self::Send => "/api/v1/serviceS",
            Self::Transform => "/api/v1/serviceT",
            Self::Dcc => "/api/v1/serviceD",
        }
    }

    /// A short name for logs and metric labels.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Transform => "transform",
            Self::Dcc => "dcc",
        }
    }

    /// Whether this service takes requests of this Command Variant (otherwise E13).
    pub const fn accepts(self, cv: CommandVariant) -> bool {
        match self {
            Self::Send => matches!(cv.get(), 1 | 3 | 5 | 7),
            Self::Transform => cv.get() == 4,
            Self::Dcc => matches!(cv.get(), 2 | 6 | 8),
        }
    }
}

impl fmt::Display for DuisService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_variant_has_exactly_one_service() {
        for v in 1..=8u8 {
            let cv = CommandVariant::try_from(v).unwrap();
            let n = DuisService::ALL.iter().filter(|s| s.accepts(cv)).count();
            assert_eq!(n, 1, "CV{v}");
        }
        for s in DuisService::ALL {
            assert_eq!(DuisService::from_path(s.path()), Some(s));
        }
        assert_eq!(DuisService::from_path("/api/v1/services"), None);
    }
}
