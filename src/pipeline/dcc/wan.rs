//! 12.1 Request WAN Matrix, answered at once (`I0` with `DSPWANMatrix`) from what the gateway
//! knows of the simulated network, not by asking it: the network covers every premises in the
//! three Communications Service Provider regions, with the technology each region's provider
//! uses (long-range radio in the North, cellular in the Central and South regions).
//!
//! The premises are placed by the post code's area (its leading letters) with the table below,
//! which approximates the regions' boundaries (they follow the electricity distribution areas:
//! North is Scotland and the North of England, Central the Midlands, East of England and Wales,
//! South London and the South). The registration cache holds no addresses, so a UPRN, a post
//! code of another shape, or an area outside Great Britain cannot be placed: each region then
//! answers `E120101` with no coverage data.

use crate::domain::ResponseCode;
use crate::duis::services::{self, WanAnswer, WanCoverage, WanQuery};
use crate::duis::ResponsePayload;
use crate::error::Error;
use crate::registry::CspRegion;

use super::super::plan::{Plan, Reply};
use super::body_error;

pub(super) const NORTH: &[&str] = &[
    // Scotland.
    "AB", "DD", "DG", "EH", "FK", "G", "HS", "IV", "KA", "KW", "KY", "ML", "PA", "PH", "TD", "ZE",
    // The North East, North West and Yorkshire.
    "BB", "BD", "BL", "CA", "DH", "DL", "DN", "FY", "HD", "HG", "HU", "HX", "LA", "LS", "M", "NE",
    "OL", "PR", "S", "SK", "SR", "TS", "WF", "WN", "YO",
];
pub(super) const CENTRAL: &[&str] = &[
    // The Midlands.
    "B", "CV", "DE", "DY", "HR", "LE", "LN", "NG", "NN", "ST", "SY", "TF", "WR", "WS", "WV",
    // The East of England.
    "AL", "CB", "CM", "CO", "HP", "IP", "LU", "MK", "NR", "PE", "SG", "SS", "WD",
    // Wales, Merseyside and Cheshire.
    "CF", "CH", "CW", "L", "LD", "LL", "NP", "SA", "WA",
];
pub(super) const SOUTH: &[&str] = &[
    // London.
    "BR", "CR", "DA", "E", "EC", "EN", "HA", "IG", "KT", "N", "NW", "RM", "SE", "SM", "SW", "TW",
    "UB", "W", "WC", // The South East, Southern and South West.
    "BA", "BH", "BN", "BS", "CT", "DT", "EX", "GL", "GU", "ME", "OX", "PL", "PO", "RG", "RH", "SL",
    "SN", "SO", "SP", "TA", "TN", "TQ", "TR",
];

/// The region a post code is in: its area (one or two letters, then a digit) in the table.
pub(super) fn region_of(post_code: &str) -> Option<CspRegion> {
    let compact: String = post_code
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let letters = compact.bytes().take_while(u8::is_ascii_alphabetic).count();
    let next_is_digit = compact
        .as_bytes()
        .get(letters)
        .is_some_and(u8::is_ascii_digit);
    if !(1..=2).contains(&letters) || !next_is_digit {
        return None;
    }
    let area = &compact[..letters];
    [
        (CspRegion::North, NORTH),
        (CspRegion::Central, CENTRAL),
        (CspRegion::South, SOUTH),
    ]
    .into_iter()
    .find(|(_, areas)| areas.contains(&area))
    .map(|(region, _)| region)
}

/// The answers for `query`: its region's coverage, or every region unable to place it.
pub(super) fn answers(query: &WanQuery) -> Vec<WanAnswer> {
    let region = match query {
        WanQuery::Address { post_code, .. } => region_of(post_code),
        WanQuery::Uprn(_) => None,
    };
    match region {
        Some(region) => vec![WanAnswer {
            region: region.duis_name(),
            code: ResponseCode::I0,
            coverage: Some(coverage(region)),
        }],
        None => [CspRegion::North, CspRegion::Central, CspRegion::South]
            .into_iter()
            .map(|region| WanAnswer {
                region: region.duis_name(),
                code: ResponseCode::E120101,
                coverage: None,
            })
            .collect(),
    }
}

fn coverage(region: CspRegion) -> WanCoverage {
    let technology = match region {
        CspRegion::North => "Long Range Radio",
        CspRegion::Central | CspRegion::South | CspRegion::Unknown => "Cellular",
    };
    WanCoverage {
        available: true,
        technology,
        likelihood: "High",
    }
}

/// 12.1: `I0` with the matrix.
pub(super) fn request_wan_matrix(body: &[u8]) -> Result<Plan, Error> {
    let query = services::read_wan_matrix_request(body).map_err(body_error)?;
    let xml = services::write_wan_matrix(&query, &answers(&query));
    Ok(Plan {
        reply: Reply::Done(ResponsePayload::Raw(xml)),
        effects: Vec::new(),
    })
}
