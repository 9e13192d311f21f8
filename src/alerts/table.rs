//! The routing table: which audience each GBCS alert code is for. Rule data, not code — the
//! built-in rules come from public facts (`docs/alerts.md`), and the configuration can add rules
//! that override them for single codes or ranges without a rebuild.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AlertsError;

/// Who a device alert is for, among the Users registered for the device's meter point(s) at the
/// time of the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The registered supplier: the Import Supplier for an MPAN, the Gas Supplier for an MPRN.
    Supplier,
    /// The registered network operator: the Electricity Distributor for an MPAN, the Gas
    /// Transporter for an MPRN.
    NetworkOperator,
    /// Both of them.
    Both,
}

impl Audience {
    pub const fn includes_supplier(self) -> bool {
        matches!(self, Self::Supplier | Self::Both)
    }

    pub const fn includes_network_operator(self) -> bool {
        matches!(self, Self::NetworkOperator | Self::Both)
    }
}

/// An inclusive range of GBCS alert codes, written `8F35` or `8000-80FF` (hex, any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodeRange {
    first: u16,
    last: u16,
}

impl CodeRange {
    pub fn new(first: u16, last: u16) -> Result<Self, AlertsError> {
        if first > last {
            return Err(AlertsError::EmptyCodeRange { first, last });
        }
        Ok(Self { first, last })
    }

    pub const fn single(code: u16) -> Self {
        Self {
            first: code,
            last: code,
        }
    }

    pub const fn first(&self) -> u16 {
        self.first
    }

    pub const fn last(&self) -> u16 {
        self.last
    }

    pub const fn contains(&self, code: u16) -> bool {
        self.first <= code && code <= self.last
    }

    /// How many codes it covers (1 to 65 536).
    pub const fn width(&self) -> u32 {
        (self.last - self.first) as u32 + 1
    }
}

fn hex4(s: &str) -> Result<u16, AlertsError> {
    let ok = (1..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let bad = || AlertsError::CodeSyntax(s.chars().take(20).collect());
    if !ok {
        return Err(bad());
    }
    u16::from_str_radix(s, 16).map_err(|_| bad())
}

impl FromStr for CodeRange {
    type Err = AlertsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('-') {
            Some((a, b)) => Self::new(hex4(a)?, hex4(b)?),
            None => hex4(s).map(Self::single),
        }
    }
}

impl fmt::Display for CodeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{:04X}", self.first)
        } else {
            write!(f, "{:04X}-{:04X}", self.first, self.last)
        }
    }
}

impl Serialize for CodeRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CodeRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One rule: these codes go to this audience. In the configuration:
/// `{ codes = "8F35-8F3C", to = "network_operator" }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// An alert code or an inclusive range of them, hex: `8F35`, `8000-80FF`.
    #[schemars(with = "String")]
    pub codes: CodeRange,
    /// Who they go to: `supplier`, `network_operator` or `both`.
    pub to: Audience,
}

/// The rules every gateway starts from (sources in `docs/alerts.md`).
pub const BUILTIN_RULES: [RouteRule; 4] = [
    // Anything without a narrower rule: the supplier, so that no alert is dropped for want of a
    // rule. This covers the non-configurable 0x8Fxx alerts ("critical alerts to the supplier").
    RouteRule {
        codes: CodeRange {
            first: 0x0000,
            last: 0xFFFF,
        },
        to: Audience::Supplier,
    },
    // Every code SRV 6.22 lets a network operator configure on an ESME (DUIS XSD
    // `NetworkOperatorESME*`: 0x8002 to 0x809C, voltage and power quality).
    RouteRule {
        codes: CodeRange {
            first: 0x8000,
            last: 0x80FF,
        },
        to: Audience::NetworkOperator,
    },
    // Every code SRV 6.22 lets a supplier configure on an ESME or GSME (DUIS XSD `SupplierESME*`,
    // `SupplierGSME`: 0x810D to 0x81C6).
    RouteRule {
        codes: CodeRange {
            first: 0x8100,
            last: 0x81FF,
        },
        to: Audience::Supplier,
    },
    // Supply outage restored (DUIS XSD `SupplyOutageRestoreAlert`: 0x8F35 to 0x8F3C): power
    // outage is the network operator's.
    RouteRule {
        codes: CodeRange {
            first: 0x8F35,
            last: 0x8F3C,
        },
        to: Audience::NetworkOperator,
    },
];

/// The rules in force: for a code, the narrowest rule covering it decides; between rules of the
/// same width, a configured rule beats a built-in one and a later configured rule an earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingTable {
    /// Built-in rules first, then configured ones, in order.
    rules: Vec<RouteRule>,
}

impl Default for RoutingTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl RoutingTable {
    pub fn builtin() -> Self {
        Self {
            rules: BUILTIN_RULES.to_vec(),
        }
    }

    /// The built-in rules overridden by `configured`.
    pub fn with_rules(configured: &[RouteRule]) -> Self {
        let mut rules = BUILTIN_RULES.to_vec();
        rules.extend_from_slice(configured);
        Self { rules }
    }

    pub fn rules(&self) -> &[RouteRule] {
        &self.rules
    }

    pub fn audience(&self, code: u16) -> Audience {
        let mut best: Option<&RouteRule> = None;
        for rule in self.rules.iter().filter(|r| r.codes.contains(code)) {
            // `<=`: a later rule of the same width wins.
            if best.is_none_or(|b| rule.codes.width() <= b.codes.width()) {
                best = Some(rule);
            }
        }
        // The first built-in rule covers every code.
        best.map_or(Audience::Supplier, |r| r.to)
    }
}
