//! Pure checks that come before access control: the request against the catalogue and the URL
//! it came to, and its originator against the TLS client's party. Each returns the exact
//! [`Error`] the sender will be told.

use crate::catalogue::{Catalogue, SrvEntry};
use crate::domain::{DuisService, UserId};
use crate::duis::ParsedRequest;
use crate::error::Error;
use crate::register::PartyRegister;

/// The DUIS schema versions this gateway reads.
pub const SUPPORTED_SCHEMA_VERSIONS: &[&str] = &["5.4"];

/// The body element of a Command Variant 5, 6 or 7 request: the User's signed pre-command.
pub const SIGNED_PRE_COMMAND: &str = "SignedPreCommand";

/// Checks the request's header and body against the catalogue and the service it was sent to.
/// The order decides which code a request with several faults gets: schema version, SRV,
/// ServiceReference, Command Variant for the SRV (E12), Command Variant for the URL (E13), body.
pub fn check_service<'c>(
    catalogue: &'c Catalogue,
    service: DuisService,
    request: &ParsedRequest,
) -> Result<&'c SrvEntry, Error> {
    if !SUPPORTED_SCHEMA_VERSIONS.contains(&request.schema_version.as_str()) {
        return Err(Error::SchemaVersion(request.schema_version.clone()));
    }
    let header = &request.header;
    let srv = header.srv;
    let entry = catalogue.get(&srv).ok_or(Error::UnknownSrv(srv))?;
    if !entry.user_requestable() {
        return Err(Error::NotRequestable(srv));
    }
    if header.service_reference != srv.service_reference() {
        return Err(Error::ServiceReferenceMismatch(srv));
    }
    let cv = header.command_variant;
    if !entry.allows(cv) {
        return Err(Error::CommandVariantNotAllowed { srv, cv });
    }
    if !service.accepts(cv) {
        return Err(Error::WrongService { service, cv });
    }
    let expected = if matches!(cv.get(), 5..=7) {
        SIGNED_PRE_COMMAND
    } else {
        entry.body_element.as_str()
    };
    if request.body_element != expected {
        return Err(Error::BodyMismatch { srv });
    }
    Ok(entry)
}

/// The RequestID's originator must be a User ID of the same party as the TLS client: a party may
/// send for any of its roles over one connection, never for another party.
pub fn check_originator(
    register: &PartyRegister,
    client: UserId,
    originator: UserId,
) -> Result<(), Error> {
    let client_party = &register
        .get(&client)
        .ok_or(Error::UnknownUser(client))?
        .party_id;
    let originator_party = &register
        .get(&originator)
        .ok_or(Error::UnknownUser(originator))?
        .party_id;
    if client_party != originator_party {
        return Err(Error::PartyMismatch { client, originator });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
