//! 8.14.1–8.14.4 Communications Hub Status Updates: a comms hub installed (with or without SM
//! WAN) or returned (with or without a fault). XSD `CHFInstallSuccessSMWAN`,
//! `CHFInstallSuccessNoSMWAN`, `CHFFaultReturn`, `CHFNoFaultReturn`; every field is checked
//! against the schema, and what the registration cache holds is returned.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::fields::Fields;
use super::{xs_bool, BodyError};
use crate::domain::{DeviceId, Mpxn};

const INSTALL_TYPES: &[&str] = &[
    "New CHF Install",
    "Replacement CHF Install",
    "CHF Install - no SM WAN",
];
const LOCATIONS: &[&str] = &[
    "Outside Premises",
    "Indoors on external wall",
    "Deep indoors",
    "Basement or Cellar",
];
const PREMISE_TYPES: &[&str] = &[
    "Detached / Semi Detached",
    "Terraced",
    "Low Rise Apartment (MDU <= 5 floors)",
    "High Rise Apartment (MDU > 5 floors)",
];
const FAULT_RETURN_TYPES: &[&str] = &[
    "Fault identified prior to installation",
    "Fault identified post installation",
];
const NO_FAULT_RETURN_TYPES: &[&str] = &[
    "No Fault Return (general)",
    "No Fault Return (non-dom opt out)",
    "No Fault Return (dual supplier HAN variant replacement)",
    "No Fault Return (SM WAN variant replacement requested by DCC)",
    "Lost or Stolen Hub",
];
const CONNECTION_METHODS: &[&str] = &["Hot-shoe", "Cradle", "ESME"];
const FAULT_REASONS: &[&str] = &[
    "Damaged case",
    "Damaged Connector",
    "Illegal interference or missing seals",
    "Environmental conditions exceeded",
    "SM WAN Fault",
    "SMHAN Interface Fault",
    "LED Fault",
    "Aerial fault",
    "Manufacturing defect",
];
/// `UserRefID`, `GISData`: at most 25 characters.
const MAX_REF: usize = 25;
/// `IncidentReference`: at most 15 characters.
const MAX_INCIDENT: usize = 15;
/// `AdditionalInformation`: at most 200 characters.
const MAX_INFORMATION: usize = 200;

/// One Communications Hub Status Update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubStatusUpdate {
    /// The comms hub (`DeviceID`).
    pub hub: DeviceId,
    pub kind: HubUpdateKind,
}

/// What happened to the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubUpdateKind {
    /// 8.14.1 (`wan`: it reached the SM WAN) or 8.14.2 (it did not), at the premises of `mpxn`.
    Installed { wan: bool, mpxn: Mpxn },
    /// 8.14.3 (`fault`, with the hub's other device, its gas proxy) or 8.14.4 (no fault).
    Returned {
        fault: bool,
        other: Option<DeviceId>,
    },
}

/// Reads the body element `element` (the one the catalogue names for the variant).
pub fn read_hub_status_update(body: &[u8], element: &str) -> Result<HubStatusUpdate, BodyError> {
    let mut f = Fields::read(body, element)?;
    let hub = f.parsed("DeviceID")?;
    let kind = match element {
        "CHFInstallSuccessSMWAN" => installed(&mut f, true)?,
        "CHFInstallSuccessNoSMWAN" => installed(&mut f, false)?,
        "CHFFaultReturn" => fault_return(&mut f)?,
        "CHFNoFaultReturn" => {
            one_of(&mut f, "CHFNoFaultReturnType", NO_FAULT_RETURN_TYPES)?;
            references(&mut f, "UserRefDateTime")?;
            HubUpdateKind::Returned {
                fault: false,
                other: None,
            }
        }
        _ => return Err(BodyError::Structure),
    };
    f.text("AdditionalInformation", MAX_INFORMATION)?;
    f.finish()?;
    Ok(HubStatusUpdate { hub, kind })
}

fn installed(f: &mut Fields, wan: bool) -> Result<HubUpdateKind, BodyError> {
    one_of(f, "CHFInstallType", INSTALL_TYPES)?;
    references(f, "InstallDateTime")?;
    let mpxn = f.parsed("MPxN")?;
    f.text("GISData", MAX_REF)?;
    boolean(f, "AerialInstall")?;
    one_of(f, "CHFLocation", LOCATIONS)?;
    if !wan {
        one_of(f, "PremiseType", PREMISE_TYPES)?;
        boolean(f, "MetalObstructionCheck")?;
        boolean(f, "ConnectivityObstructionCheck")?;
        boolean(f, "SharedObstructionCheck")?;
    }
    Ok(HubUpdateKind::Installed { wan, mpxn })
}

fn fault_return(f: &mut Fields) -> Result<HubUpdateKind, BodyError> {
    one_of(f, "CHFFaultReturnType", FAULT_RETURN_TYPES)?;
    references(f, "UserRefDateTime")?;
    let other = f.parsed("OtherDeviceID")?;
    one_of(f, "CHFConnectionMethod", CONNECTION_METHODS)?;
    one_of(f, "CHFFaultReason", FAULT_REASONS)?;
    Ok(HubUpdateKind::Returned {
        fault: true,
        other: Some(other),
    })
}

/// The optional date-time (`date_time`), `UserRefID` and `IncidentReference` a status update
/// may carry; checked, not kept.
fn references(f: &mut Fields, date_time: &'static str) -> Result<(), BodyError> {
    if let Some(t) = f.take(date_time) {
        if !is_xs_date_time(&t) {
            return Err(BodyError::Invalid(date_time));
        }
    }
    f.text("UserRefID", MAX_REF)?;
    f.text("IncidentReference", MAX_INCIDENT)?;
    Ok(())
}

fn one_of(f: &mut Fields, path: &'static str, values: &[&str]) -> Result<(), BodyError> {
    let v = f.required(path)?;
    if values.contains(&v.as_str()) {
        Ok(())
    } else {
        Err(BodyError::Invalid(path))
    }
}

fn boolean(f: &mut Fields, path: &'static str) -> Result<bool, BodyError> {
    xs_bool(&f.required(path)?).ok_or(BodyError::Invalid(path))
}

/// An `xs:dateTime`, with or without a zone.
fn is_xs_date_time(text: &str) -> bool {
    OffsetDateTime::parse(text, &Rfc3339).is_ok()
        || OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339).is_ok()
}
