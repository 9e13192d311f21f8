//! Which GBCS use cases serve each Service Reference Variant, and their message codes: the data
//! in `schemas/gbcs-use-cases.json`, compiled in.
//!
//! The SRV → use case pairs follow the DCC's GBCS mapping table (use case → service reference),
//! narrowed to variants by the DCC's public request templates (whose file names pair a use case
//! with a variant); the message codes are GBCS's. A use case with no message code in the public
//! data has none here. Non-device SRVs have no use case. Where an SRV has several, the device
//! picks: `E…` use cases address the electricity meter, `G…` the gas meter or gas proxy, the
//! rest any device ([`UseCase::target`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::frame::MessageCode;
use crate::domain::Srv;

const BUILTIN: &str = include_str!("../../schemas/gbcs-use-cases.json");

/// A GBCS use case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseCase {
    /// As GBCS names it (`ECS17b`).
    pub code: String,
    pub name: String,
    /// One for most use cases; CS02b has one per credentials replacement mode; none where the
    /// public data gives none.
    pub message_codes: Vec<MessageCode>,
}

/// Which device a use case addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Electricity,
    Gas,
    Any,
}

impl UseCase {
    pub fn message_code(&self) -> Option<MessageCode> {
        self.message_codes.first().copied()
    }

    pub fn target(&self) -> Target {
        if self.code.starts_with("GCS") {
            Target::Gas
        } else if self.code.starts_with("ECS") {
            Target::Electricity
        } else {
            Target::Any
        }
    }
}

/// The table: SRV → its use cases, in the file's order.
#[derive(Debug)]
pub struct Table {
    srvs: BTreeMap<Srv, Vec<UseCase>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("the use-case table is not valid JSON of its format: {0}")]
    Json(String),
    #[error("{0:?} is not an SRV")]
    Srv(String),
    #[error("SRV {srv} names use case {code}, which the table does not define")]
    UnknownUseCase { srv: String, code: String },
    #[error("use case {code} has message code {value:?}, not 0x followed by four hex digits")]
    MessageCode { code: String, value: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(rename = "_about")]
    _about: String,
    srvs: BTreeMap<String, Vec<String>>,
    use_cases: BTreeMap<String, RawUseCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUseCase {
    name: String,
    message_codes: Vec<String>,
}

impl Table {
    pub fn from_json(text: &str) -> Result<Self, TableError> {
        let raw: RawTable =
            serde_json::from_str(text).map_err(|e| TableError::Json(e.to_string()))?;
        let mut srvs = BTreeMap::new();
        for (srv_text, codes) in raw.srvs {
            let srv: Srv = srv_text
                .parse()
                .map_err(|_| TableError::Srv(srv_text.clone()))?;
            let mut use_cases = Vec::with_capacity(codes.len());
            for code in codes {
                let Some(raw_case) = raw.use_cases.get(&code) else {
                    return Err(TableError::UnknownUseCase {
                        srv: srv_text,
                        code,
                    });
                };
                use_cases.push(UseCase {
                    message_codes: parse_codes(&code, &raw_case.message_codes)?,
                    name: raw_case.name.clone(),
                    code,
                });
            }
            srvs.insert(srv, use_cases);
        }
        Ok(Self { srvs })
    }

    /// The compiled-in table.
    pub fn builtin() -> &'static Table {
        static BUILTIN_TABLE: OnceLock<Table> = OnceLock::new();
        BUILTIN_TABLE.get_or_init(|| {
            // The text is compiled in, not sent by a peer; the unit test `builtin_parses`
            // parses it, so a bad file fails the tests rather than a running gateway.
            Table::from_json(BUILTIN).expect("schemas/gbcs-use-cases.json is a valid table")
        })
    }

    /// The use cases of `srv`: empty for a non-device SRV or one the table does not list.
    pub fn lookup(&self, srv: Srv) -> &[UseCase] {
        self.srvs.get(&srv).map_or(&[], Vec::as_slice)
    }

    /// The use case `srv` sends to a device of `target`: the first for that device, else the
    /// first for any device.
    pub fn use_case_for(&self, srv: Srv, target: Target) -> Option<&UseCase> {
        let all = self.lookup(srv);
        all.iter()
            .find(|u| u.target() == target)
            .or_else(|| all.iter().find(|u| u.target() == Target::Any))
    }

    pub fn srvs(&self) -> impl Iterator<Item = (Srv, &[UseCase])> + '_ {
        self.srvs
            .iter()
            .map(|(srv, cases)| (*srv, cases.as_slice()))
    }
}

/// The use cases of `srv` in the compiled-in table.
pub fn lookup(srv: Srv) -> &'static [UseCase] {
    Table::builtin().lookup(srv)
}

fn parse_codes(code: &str, texts: &[String]) -> Result<Vec<MessageCode>, TableError> {
    texts
        .iter()
        .map(|text| {
            text.strip_prefix("0x")
                .filter(|hex| hex.len() == 4)
                .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                .map(MessageCode)
                .ok_or_else(|| TableError::MessageCode {
                    code: code.to_string(),
                    value: text.clone(),
                })
        })
        .collect()
}
