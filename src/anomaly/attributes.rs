//! The named values an attribute limit can bound: prepayment credit amounts (2.1 Update Prepay
//! Configuration, 2.3 Update Debt) and tariff prices (the 1.1.x and 1.2.x tariffs),
//! read from the request body as the integers DUIS writes (in the units and scale the body
//! names: pence, or the `PriceScale` power of ten). Each occurrence of the element anywhere in
//! the body is a value: a tariff with three `TOUPrice`s gives three.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::duis::body::Node;

macro_rules! attributes {
    ($($variant:ident,)*) => {
        /// An element of a request body whose integer value a limit can bound.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Attribute { $($variant,)* }

        impl Attribute {
            pub const ALL: &'static [Attribute] = &[$(Self::$variant,)*];

            /// The element's local name, which is also the attribute's name in thresholds.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant),)* }
            }
        }
    };
}

attributes! {
    EmergencyCreditLimit,
    EmergencyCreditThreshold,
    LowCreditThreshold,
    MaxMeterBalance,
    MaxCreditThreshold,
    DebtRecoveryRateCap,
    PaymentDebtRegister,
    TimeDebtRegister1,
    TimeDebtRegister2,
    DebtRecoveryPerPayment,
    DebtRecoveryRate,
    TOUPrice,
    BlockPrice,
    StandingCharge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an attribute the gateway reads")]
pub struct UnknownAttribute;

impl FromStr for Attribute {
    type Err = UnknownAttribute;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or(UnknownAttribute)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Attribute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Every value of the `wanted` attributes in `body` (the body element's bytes, as the request
/// parser located them). A body that does not read as a tree gives none: the request was read
/// by the parser already, and its command made from the same fields. A value that is not an
/// integer is given as `None`, which no range admits.
pub fn attribute_values(body: &[u8], wanted: &[Attribute]) -> Vec<(Attribute, Option<i64>)> {
    let mut out = Vec::new();
    if wanted.is_empty() {
        return out;
    }
    let Ok(root) = Node::parse(body) else {
        return out;
    };
    let mut stack = vec![&root];
    while let Some(node) = stack.pop() {
        if let Some(a) = wanted.iter().find(|a| a.name() == node.name) {
            out.push((*a, node.text.parse().ok()));
        }
        stack.extend(node.children.iter());
    }
    out
}
