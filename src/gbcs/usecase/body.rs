//! The content of every use case without a real encoding here: the DUIS request body itself, in
//! one deterministic form, under the use case's real message code. A device's response to such a
//! command carries its data the same way.
//!
//! ```text
//! C0 01 len srv len body      command: tag, format 1, the SRV (ASCII, e.g. "6.2.7"), and the
//!                             body element in exclusive XML canonical form, indentation
//!                             (whitespace-only text between tags) dropped
//! C1 01 len srv result len data
//!                             response: tag, format 1, the SRV, a result octet (0 success)
//!                             and the device's data
//! ```
//!
//! Lengths are GBCS lengths. `C0`/`C1` are the first octet of no GBCS content (DLMS starts
//! `D9`/`DA`/`0F`, ASN.1 `30`/`02`/`04`/`05`, GBZ `01 09`), so a GBCS parser shows the content
//! as opaque bytes and this module never mistakes it for real content.

use std::ops::Range;

use super::ContentError;
use crate::domain::Srv;
use crate::gbcs::length::{put_counted, Reader};
use crate::gbcs::{FrameError, MAX_FRAME_LEN};
use crate::xmldsig::c14n::{canonicalize, C14nError, C14nLimits, C14nMode};

pub const COMMAND_TAG: u8 = 0xC0;
pub const RESPONSE_TAG: u8 = 0xC1;
pub const FORMAT: u8 = 1;

/// The body element at `span` of the request `doc`, in exclusive canonical form with the
/// whitespace-only text between tags dropped: the same bytes whatever namespace declarations,
/// quoting, whitespace in tags, indentation or attribute order the User wrote (prefixes stay as
/// written).
pub fn canonical_body(
    doc: &[u8],
    span: Range<usize>,
    limits: &C14nLimits,
) -> Result<Vec<u8>, C14nError> {
    let mut out = Vec::with_capacity(span.len());
    canonicalize(doc, Some(span), None, C14nMode::Exclusive, limits, &mut out)?;
    Ok(drop_indentation(&out))
}

/// `canonical` without the runs of whitespace that lie between a `>` and a `<`. In canonical
/// form `<` never stands raw in an attribute value or text, and `>` never raw in text, so such a
/// run is always whitespace-only text between two tags.
fn drop_indentation(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len());
    let mut i = 0;
    while i < canonical.len() {
        let b = canonical[i];
        out.push(b);
        i += 1;
        if b == b'>' {
            let run = canonical[i..]
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            if canonical.get(i + run) == Some(&b'<') {
                i += run;
            }
        }
    }
    out
}

pub fn command_content(srv: Srv, canonical_body: &[u8]) -> Result<Vec<u8>, ContentError> {
    check(canonical_body.len())?;
    let mut out = vec![COMMAND_TAG, FORMAT];
    put_counted(&mut out, srv.to_string().as_bytes());
    put_counted(&mut out, canonical_body);
    Ok(out)
}

pub fn response_content(srv: Srv, result: u8, data: &[u8]) -> Result<Vec<u8>, ContentError> {
    check(data.len())?;
    let mut out = vec![RESPONSE_TAG, FORMAT];
    put_counted(&mut out, srv.to_string().as_bytes());
    out.push(result);
    put_counted(&mut out, data);
    Ok(out)
}

/// A command content read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCommand {
    pub srv: Srv,
    pub body: Vec<u8>,
}

/// A response content read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyResponse {
    pub srv: Srv,
    pub result: u8,
    pub data: Vec<u8>,
}

pub fn read_command(content: &[u8]) -> Result<BodyCommand, FrameError> {
    let mut r = Reader::new(content);
    r.expect(&[COMMAND_TAG, FORMAT])?;
    let srv = read_srv(&mut r)?;
    let body = r.counted()?.to_vec();
    end(&r)?;
    Ok(BodyCommand { srv, body })
}

pub fn read_response(content: &[u8]) -> Result<BodyResponse, FrameError> {
    let mut r = Reader::new(content);
    r.expect(&[RESPONSE_TAG, FORMAT])?;
    let srv = read_srv(&mut r)?;
    let result = r.byte()?;
    let data = r.counted()?.to_vec();
    end(&r)?;
    Ok(BodyResponse { srv, result, data })
}

fn read_srv(r: &mut Reader<'_>) -> Result<Srv, FrameError> {
    let at = r.position();
    let text = r.counted()?;
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(FrameError::Unexpected { at })
}

fn end(r: &Reader<'_>) -> Result<(), FrameError> {
    if !r.is_empty() {
        return Err(FrameError::Trailing { at: r.position() });
    }
    Ok(())
}

fn check(len: usize) -> Result<(), ContentError> {
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len }.into());
    }
    Ok(())
}

/// The command for `srv` to a device of `target`, carrying the DUIS body under the use case's
/// message code: a pre-command (for the User to sign) when `critical`, else an unsigned command.
pub fn body_command(
    parties: &super::Parties,
    srv: Srv,
    target: crate::gbcs::Target,
    canonical_body: &[u8],
    critical: bool,
) -> Result<crate::gbcs::GeneralSigning, ContentError> {
    let code = crate::gbcs::Table::builtin()
        .use_case_for(srv, target)
        .and_then(|u| u.message_code())
        .ok_or(ContentError::NoMessageCode { srv })?;
    let content = command_content(srv, canonical_body)?;
    Ok(super::command_frame(parties, code, content, critical))
}
