//! The DUIS response codes the gateway emits. Codes E40 and up are the gateway's own choices
//! for conditions the public DUIS material gives no meaning for; `docs/response-codes.md` is
//! their one table, and `crate::error` the one place that maps failures onto them.

use std::fmt;

/// A DUIS `ResponseCode` value (every one is in the DUIS 5.4 schema's enumeration).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ResponseCode {
    /// Success.
    I0,
    /// Acknowledged: accepted and sent on.
    I99,
    /// Invalid User / User Role combination.
    E1,
    /// User Role not allowed to send this Service Reference Variant.
    E2,
    /// User status does not allow this request.
    E3,
    /// User not authorised for this device at the required time.
    E4,
    /// Device status incompatible with the request.
    E5,
    /// Request invalid for this device type.
    E11,
    /// Command Variant invalid for this request.
    E12,
    /// Request type invalid for this URL.
    E13,
    /// Device does not exist.
    E19,
    /// Unable to communicate with the device.
    E20,
    /// No response from the device.
    E21,
    /// Future-dated command timed out: a held request that could not be sent in its window.
    E30,
    /// Gateway's choice: a DSP-held request's `ExecutionDateTime` is in the past or beyond the
    /// hold bound.
    E31,
    /// Gateway's choice: not well-formed XML, or not a DUIS request's structure.
    E40,
    /// Gateway's choice: a forbidden XML construct (DOCTYPE, entity reference, processing
    /// instruction).
    E41,
    /// Gateway's choice: a size, depth or count bound exceeded.
    E42,
    /// Gateway's choice: the RequestID is malformed.
    E43,
    /// Gateway's choice: unknown or not user-requestable Service Reference Variant, or a
    /// ServiceReference that does not match it.
    E44,
    /// Gateway's choice: the body element is not the one the Service Reference Variant names.
    E45,
    /// Gateway's choice: the RequestID's originator is not a User ID of the TLS client's party.
    E46,
    /// Gateway's choice: unsupported schemaVersion.
    E47,
    /// Gateway's choice: the signature is missing or malformed (not the root's last child, not
    /// the profile's structure, bad base64, bad issuer or serial).
    E48,
    /// Gateway's choice: the signature names an algorithm other than the profile's.
    E49,
    /// Gateway's choice: the digest of the document does not match the signed DigestValue.
    E50,
    /// Gateway's choice: the signature value does not verify with the certificate's key.
    E51,
    /// Gateway's choice: no known User XML-signing certificate has that issuer and serial.
    E52,
    /// Gateway's choice: the signing certificate is expired or not yet valid.
    E53,
    /// Gateway's choice: the signing certificate is not a User XML-signing one (role 87, P-256).
    E54,
    /// Gateway's choice: the signing certificate does not chain to a configured trust anchor.
    E55,
    /// Gateway's choice: the signing certificate names a User other than the originator.
    E56,
    /// Gateway's choice: the originator's counter is not above the last one accepted (replay).
    E57,
    /// Gateway's choice: the signing certificate is revoked by its issuer's CRL.
    E58,
    /// Gateway's choice: the gateway is overloaded or too slow; retry later.
    E60,
    /// Gateway's choice: the User is over its own admission bound (requests in flight or rate).
    E61,
    /// Gateway's choice: an operator deleted the request from anomaly-detection quarantine; it
    /// was never sent (the final Service Response of a quarantined request).
    E67,
    /// Gateway's choice: anomaly detection would quarantine the request, but the quarantine is
    /// full; nothing is kept or sent.
    E68,
    /// Gateway's choice: the gateway holds as many future-dated requests as it may; retry later.
    E69,
    /// Gateway's choice: no room for another DSP schedule (for the User and device, or at all).
    E70,
    /// Gateway's choice: no DSP schedule of the User's matches a 5.2 or 5.3 request.
    E71,
    /// Gateway's choice: an internal failure of the gateway (never caused by the sender).
    E100,
    /// Gateway's choice: no pre-command was issued for a signed pre-command's RequestID.
    E1000,
    /// Gateway's choice: the pre-command was signed and sent already.
    E1001,
    /// Gateway's choice: the pre-command expired before its signed form arrived.
    E1003,
    /// Gateway's choice: the signed payload is not the pre-command issued and a signature.
    E1004,
    /// Gateway's choice: the User holds no usable Digital Signing certificate for its role.
    E1006,
    /// Gateway's choice: the User's signature on the command does not verify.
    E1007,
    /// Gateway's choice: the User has too many pre-commands or local commands outstanding.
    E1008,
    /// Gateway's choice: no command for local delivery is outstanding for that RequestID.
    E1010,
    /// Gateway's choice: the returned response is not the device's answer to that command.
    E1011,
    /// Gateway's choice, 8.4 Update Inventory: the registration cache does not hold the field
    /// the update sets (a secondary import or an export MPAN).
    E080405,
    /// Gateway's choice, 11.1 Update Firmware: no listed device can take the image.
    E110101,
    /// Gateway's choice, 11.4 Update PPMID Firmware: no listed device can take the image.
    E110401,
    /// Gateway's choice, 12.1 Request WAN Matrix (a region's `CSPRegionResponseCode`): the
    /// region cannot place the premises asked about.
    E120101,
}

impl ResponseCode {
    /// Every code the gateway emits (a test's exhaustive `match` keeps it complete).
    pub const ALL: [ResponseCode; 55] = {
        use ResponseCode::*;
        [
            I0, I99, E1, E2, E3, E4, E5, E11, E12, E13, E19, E20, E21, E30, E31, E40, E41, E42,
            E43, E44, E45, E46, E47, E48, E49, E50, E51, E52, E53, E54, E55, E56, E57, E58, E60,
            E61, E67, E68, E69, E70, E71, E100, E1000, E1001, E1003, E1004, E1006, E1007, E1008,
            E1010, E1011, E080405, E110101, E110401, E120101,
        ]
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::I0 => "I0",
            Self::I99 => "I99",
            Self::E1 => "E1",
            Self::E2 => "E2",
            Self::E3 => "E3",
            Self::E4 => "E4",
            Self::E5 => "E5",
            Self::E11 => "E11",
            Self::E12 => "E12",
            Self::E13 => "E13",
            Self::E19 => "E19",
            Self::E20 => "E20",
            Self::E21 => "E21",
            Self::E30 => "E30",
            Self::E31 => "E31",
            Self::E40 => "E40",
            Self::E41 => "E41",
            Self::E42 => "E42",
            Self::E43 => "E43",
            Self::E44 => "E44",
            Self::E45 => "E45",
            Self::E46 => "E46",
            Self::E47 => "E47",
            Self::E48 => "E48",
            Self::E49 => "E49",
            Self::E50 => "E50",
            Self::E51 => "E51",
            Self::E52 => "E52",
            Self::E53 => "E53",
            Self::E54 => "E54",
            Self::E55 => "E55",
            Self::E56 => "E56",
            Self::E57 => "E57",
            Self::E58 => "E58",
            Self::E60 => "E60",
            Self::E61 => "E61",
            Self::E67 => "E67",
            Self::E68 => "E68",
            Self::E69 => "E69",
            Self::E70 => "E70",
            Self::E71 => "E71",
            Self::E100 => "E100",
            Self::E1000 => "E1000",
            Self::E1001 => "E1001",
            Self::E1003 => "E1003",
            Self::E1004 => "E1004",
            Self::E1006 => "E1006",
            Self::E1007 => "E1007",
            Self::E1008 => "E1008",
            Self::E1010 => "E1010",
            Self::E1011 => "E1011",
            Self::E080405 => "E080405",
            Self::E110101 => "E110101",
            Self::E110401 => "E110401",
            Self::E120101 => "E120101",
        }
    }

    pub const fn is_success(self) -> bool {
        matches!(self, Self::I0 | Self::I99)
    }
}

/// Not a code the gateway emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a response code the gateway emits")]
pub struct ResponseCodeError;

impl std::str::FromStr for ResponseCode {
    type Err = ResponseCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(ResponseCodeError)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists each code once, and every code's text is in the DUIS 5.4 enumeration's form.
    #[test]
    fn all_codes_are_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for code in ResponseCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse(), Ok(code));
            let s = code.as_str();
            assert!(s.starts_with('I') || s.starts_with('E'), "{s}");
        }
        assert_eq!(seen.len(), ResponseCode::ALL.len());
    }

    /// Does not compile when a code is added, so that [`ResponseCode::ALL`] is revisited.
    #[allow(dead_code)]
    fn all_codes_listed(code: ResponseCode) {
        use ResponseCode::*;
        match code {
            I0 | I99 | E1 | E2 | E3 | E4 | E5 | E11 | E12 | E13 | E19 | E20 | E21 | E30 | E31
            | E40 | E41 | E42 | E43 | E44 | E45 | E46 | E47 | E48 | E49 | E50 | E51 | E52 | E53
            | E54 | E55 | E56 | E57 | E58 | E60 | E61 | E67 | E68 | E69 | E70 | E71 | E100
            | E1000 | E1001 | E1003 | E1004 | E1006 | E1007 | E1008 | E1010 | E1011 | E080405
            | E110101 | E110401 | E120101 => {}
        }
    }
}
