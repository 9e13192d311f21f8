//! 12.1 Request WAN Matrix: the premises asked about (XSD `RequestWANMatrix`: a UPRN, or a post
//! code and address identifier) and the DCC's answer, `DSPWANMatrix`: the request echoed and one
//! `DSPWANMatrixResponse` per Communications Service Provider region that answered.

use super::fields::Fields;
use super::BodyError;
use crate::domain::ResponseCode;
use crate::duis::escape::escape;

/// `UPRN`: a positive integer of at most 12 digits.
const MAX_UPRN: u64 = 999_999_999_999;
/// `PostCode`: 6 to 8 characters.
const POST_CODE_CHARS: std::ops::RangeInclusive<usize> = 6..=8;
/// `AddressIdentifier`: at most 30 characters.
const MAX_ADDRESS: usize = 30;

/// The premises a 12.1 request asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WanQuery {
    Uprn(u64),
    Address { post_code: String, address: String },
}

/// One region's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanAnswer {
    /// The schema's `CSPRegion` value.
    pub region: &'static str,
    /// `CSPRegionResponseCode`.
    pub code: ResponseCode,
    /// The coverage, when the region could place the premises.
    pub coverage: Option<WanCoverage>,
}

/// What a region says of the premises' WAN coverage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanCoverage {
    pub available: bool,
    /// `WANTechnology`, 1 to 30 characters.
    pub technology: &'static str,
    /// `ConnectivityLikelihood`: `High`, `Medium` or `Low`.
    pub likelihood: &'static str,
}

/// Reads an `sr:RequestWANMatrix`.
pub fn read_wan_matrix_request(body: &[u8]) -> Result<WanQuery, BodyError> {
    let mut f = Fields::read(body, "RequestWANMatrix")?;
    let query = if let Some(uprn) = f.take("UPRN") {
        match uprn.parse::<u64>() {
            Ok(n) if (1..=MAX_UPRN).contains(&n) => WanQuery::Uprn(n),
            _ => return Err(BodyError::Invalid("UPRN")),
        }
    } else {
        let post_code = f.required("PartialAddress/PostCode")?;
        if !POST_CODE_CHARS.contains(&post_code.chars().count()) {
            return Err(BodyError::Invalid("PartialAddress/PostCode"));
        }
        let address = f
            .text("PartialAddress/AddressIdentifier", MAX_ADDRESS)?
            .ok_or(BodyError::Missing("PartialAddress/AddressIdentifier"))?;
        WanQuery::Address { post_code, address }
    };
    f.finish()?;
    Ok(query)
}

/// Writes `<sr:DSPWANMatrix>`: `query` echoed as the `Request`, then `answers` in order (the
/// schema requires at least one).
pub fn write_wan_matrix(query: &WanQuery, answers: &[WanAnswer]) -> String {
    let mut out = String::with_capacity(256 + answers.len() * 256);
    out.push_str("<sr:DSPWANMatrix><sr:Request>");
    match query {
        WanQuery::Uprn(n) => element(&mut out, "UPRN", &n.to_string()),
        WanQuery::Address { post_code, address } => {
            out.push_str("<sr:PartialAddress>");
            element(&mut out, "PostCode", post_code);
            element(&mut out, "AddressIdentifier", address);
            out.push_str("</sr:PartialAddress>");
        }
    }
    out.push_str("</sr:Request>");
    for a in answers {
        out.push_str("<sr:DSPWANMatrixResponse>");
        element(&mut out, "CSPRegion", a.region);
        element(&mut out, "CSPRegionResponseCode", a.code.as_str());
        if let Some(c) = a.coverage {
            element(
                &mut out,
                "CoverageAvailability",
                if c.available { "true" } else { "false" },
            );
            element(&mut out, "WANTechnology", c.technology);
            element(&mut out, "ConnectivityLikelihood", c.likelihood);
        }
        out.push_str("</sr:DSPWANMatrixResponse>");
    }
    out.push_str("</sr:DSPWANMatrix>");
    out
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str("<sr:");
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</sr:");
    out.push_str(name);
    out.push('>');
}
