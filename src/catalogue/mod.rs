//! Layer 0: the service catalogue. The facts about each of the 129 DUIS 5.4 Service Reference
//! Variants (who may send it, whether it is critical, which Command Variants it takes, which
//! `sr:Body` element carries it) as data, loaded from `schemas/catalogue.json` (see
//! `schemas/README.md` for where each fact comes from). Nothing here does I/O: the builtin file is
//! compiled in, and a reloaded one is handed in as text.

use std::collections::btree_map::{BTreeMap, Entry};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::{CommandVariant, DeviceType, ServiceReference, Srv, UserRole};

/// The `format` tag a catalogue file must carry.
pub const FORMAT: &str = "dccgw-catalogue/1";

/// The catalogue the gateway ships with.
const BUILTIN: &str = include_str!("../../schemas/catalogue.json");

/// Who holds a future-dated request until its execution time (DUIS "Future Dated Response
/// Pattern").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FutureDated {
    /// The DCC (DSP) holds the request and sends it to the device at the execution time.
    Dsp,
    /// The device receives the command at once and executes it at the execution time.
    Device,
    /// The DUIS table lists both patterns (only 6.23 Update Security Credentials (CoS)).
    DspAndDevice,
    /// Not future-datable.
    None,
}

impl FutureDated {
    /// Whether a request may be held by the DCC until its execution time.
    pub const fn dsp_holds(self) -> bool {
        matches!(self, Self::Dsp | Self::DspAndDevice)
    }

    /// Whether a request may be sent at once for the device to execute later.
    pub const fn device_executes(self) -> bool {
        matches!(self, Self::Device | Self::DspAndDevice)
    }
}

/// One Service Reference Variant's facts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrvEntry {
    pub srv: Srv,
    pub service_reference: ServiceReference,
    pub name: String,
    pub critical: bool,
    pub on_demand: bool,
    pub future_dated: FutureDated,
    pub dcc_scheduled: bool,
    /// Answered by the DCC itself (target is the DCC's ID), never sent to a device.
    pub non_device: bool,
    /// The eligible User Roles; empty for the variants no User may send (7.16, 8.5, 8.6).
    pub roles: Vec<UserRole>,
    pub command_variants: Vec<CommandVariant>,
    /// Local name of the `sr:Body` child a request of this variant carries (Command Variant 5
    /// requests carry `SignedPreCommand` instead).
    pub body_element: String,
    /// The device types a request of this variant may target (otherwise E11); empty exactly for
    /// non-device variants. Derived from the GBCS use cases (`schemas/README.md`).
    #[serde(with = "device_type_names")]
    pub device_types: Vec<DeviceType>,
}

impl SrvEntry {
    /// Whether any User Role may send this variant.
    pub fn user_requestable(&self) -> bool {
        !self.roles.is_empty()
    }

    /// Whether a request of this variant may use this Command Variant (otherwise E12).
    pub fn allows(&self, cv: CommandVariant) -> bool {
        self.command_variants.contains(&cv)
    }

    /// Whether a User acting in this role may send this variant (otherwise E2).
    pub fn eligible(&self, role: UserRole) -> bool {
        self.roles.contains(&role)
    }

    /// Whether a request of this variant may target a device of this type (otherwise E11).
    pub fn targets(&self, device_type: DeviceType) -> bool {
        self.device_types.contains(&device_type)
    }
}

/// `device_types` as the file writes them: `["ESME", "GSME"]`.
mod device_type_names {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::domain::DeviceType;

    pub fn serialize<S: Serializer>(v: &[DeviceType], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|t| t.as_str()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceType>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(de::Error::custom))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the catalogue is not well-formed catalogue JSON")]
    Json(#[from] serde_json::Error),
    #[error("the catalogue's format is {found:?}, expected {FORMAT:?}")]
    Format { found: String },
    #[error("the catalogue lists no services")]
    Empty,
    #[error("{srv} is listed twice")]
    DuplicateSrv { srv: Srv },
    #[error("{srv} is listed under service reference {service_reference}")]
    ServiceReferenceMismatch {
        srv: Srv,
        service_reference: ServiceReference,
    },
    #[error("{srv} has no name")]
    EmptyName { srv: Srv },
    #[error("{srv} allows no command variant")]
    NoCommandVariants { srv: Srv },
    #[error("{srv} lists command variant {cv} twice")]
    DuplicateCommandVariant { srv: Srv, cv: CommandVariant },
    #[error("{srv} lists role {role} twice")]
    DuplicateRole { srv: Srv, role: UserRole },
    #[error("{srv}'s body element {body_element:?} is not an XML local name")]
    BodyElement { srv: Srv, body_element: String },
    #[error("{srv} lists device types although it is non-device, or none although it is not")]
    DeviceTypes { srv: Srv },
    #[error("{srv} lists device type {device_type} twice")]
    DuplicateDeviceType { srv: Srv, device_type: DeviceType },
}

/// The file as written: `{ "format", "duis_schema_version", "services": [..] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    format: String,
    duis_schema_version: String,
    services: Vec<SrvEntry>,
}

/// All Service Reference Variants the gateway knows, keyed by SRV.
#[derive(Clone, Debug)]
pub struct Catalogue {
    duis_schema_version: String,
    entries: BTreeMap<Srv, SrvEntry>,
}

impl Catalogue {
    /// The catalogue compiled into the binary from `schemas/catalogue.json`, parsed on first use.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN_CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN_CATALOGUE.get_or_init(|| {
            // The text is compiled in, not sent by a peer; the unit test `builtin_parses`
            // parses it, so a bad file fails the build's tests rather than a running gateway.
            Catalogue::from_json(BUILTIN).expect("schemas/catalogue.json is a valid catalogue")
        })
    }

    /// Parses and checks a catalogue file: the format tag, one entry per SRV, each SRV under its
    /// own service reference, a name, at least one Command Variant, no repeated Command Variant
    /// or role, device types exactly for device variants and none twice, and a body element that
    /// is an XML local name.
    pub fn from_json(text: &str) -> Result<Catalogue, CatalogueError> {
        let file: CatalogueFile = serde_json::from_str(text)?;
        if file.format != FORMAT {
            return Err(CatalogueError::Format { found: file.format });
        }
        if file.services.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut entries = BTreeMap::new();
        for entry in file.services {
            check_entry(&entry)?;
            match entries.entry(entry.srv) {
                Entry::Occupied(_) => return Err(CatalogueError::DuplicateSrv { srv: entry.srv }),
                Entry::Vacant(slot) => {
                    slot.insert(entry);
                }
            }
        }
        Ok(Catalogue {
            duis_schema_version: file.duis_schema_version,
            entries,
        })
    }

    pub fn get(&self, srv: &Srv) -> Option<&SrvEntry> {
        self.entries.get(srv)
    }

    /// This catalogue with `entry` in place of the one for its SRV, checked as a file's entries
    /// are (a dated rule set changes eligibility and flags this way).
    pub fn with_entry(&self, entry: SrvEntry) -> Result<Catalogue, CatalogueError> {
        check_entry(&entry)?;
        let mut next = self.clone();
        next.entries.insert(entry.srv, entry);
        Ok(next)
    }

    /// All entries in SRV order (`1.1.1`, `1.1.2`, …, `4.8.3`, `4.10`, …, `14.1`).
    pub fn iter(&self) -> impl Iterator<Item = &SrvEntry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false for a parsed catalogue (an empty file is refused); here for completeness.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The DUIS schema version the catalogue describes (`5.4`).
    pub fn duis_schema_version(&self) -> &str {
        &self.duis_schema_version
    }
}

fn check_entry(entry: &SrvEntry) -> Result<(), CatalogueError> {
    let srv = entry.srv;
    if entry.service_reference != srv.service_reference() {
        return Err(CatalogueError::ServiceReferenceMismatch {
            srv,
            service_reference: entry.service_reference,
        });
    }
    if entry.name.trim().is_empty() {
        return Err(CatalogueError::EmptyName { srv });
    }
    if entry.command_variants.is_empty() {
        return Err(CatalogueError::NoCommandVariants { srv });
    }
    for (i, &cv) in entry.command_variants.iter().enumerate() {
        if entry.command_variants[..i].contains(&cv) {
            return Err(CatalogueError::DuplicateCommandVariant { srv, cv });
        }
    }
    for (i, &role) in entry.roles.iter().enumerate() {
        if entry.roles[..i].contains(&role) {
            return Err(CatalogueError::DuplicateRole { srv, role });
        }
    }
    if entry.non_device != entry.device_types.is_empty() {
        return Err(CatalogueError::DeviceTypes { srv });
    }
    for (i, &device_type) in entry.device_types.iter().enumerate() {
        if entry.device_types[..i].contains(&device_type) {
            return Err(CatalogueError::DuplicateDeviceType { srv, device_type });
        }
    }
    if !is_local_name(&entry.body_element) {
        return Err(CatalogueError::BodyElement {
            srv,
            body_element: entry.body_element.clone(),
        });
    }
    Ok(())
}

/// An ASCII XML local name (no prefix): a letter or `_`, then letters, digits, `_`, `-`, `.`.
fn is_local_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests;
