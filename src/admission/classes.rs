//! The priority class of each Service Reference Variant, written down as data: which requests
//! the gateway keeps admitting longest when it sheds load. `docs/admission.md` is the same
//! table for people; a test checks it against the catalogue.

use std::collections::HashMap;

use crate::catalogue::{Catalogue, SrvEntry};
use crate::domain::Srv;

/// How much a request is protected from shedding. The order is the order of protection:
/// `Critical` is admitted longest, `Bulk` is shed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Critical commands (the catalogue's `critical` flag: signed by the User's Digital Signing
    /// key, e.g. 7.1 Enable Supply, 7.3 Arm Supply, 1.5 Update Meter Balance) and the
    /// prepayment requests a customer waits on (2.2 Top Up Device).
    Critical,
    /// Everything neither critical nor a bulk read: configuration changes, the DCC's own
    /// services, prepayment reads, a Return Local Command Response.
    Standard,
    /// Reads that Users send in bulk (registers, logs, profiles, configuration reads) and the
    /// reads the DCC answers from its cache (8.2, 12.1, 5.2): shed first.
    Bulk,
}

/// Every class, most protected first.
pub const CLASSES: [Class; 3] = [Class::Critical, Class::Standard, Class::Bulk];

impl Class {
    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Standard => "standard",
            Self::Bulk => "bulk",
        }
    }
}

/// SRVs that are `Critical` although the catalogue does not mark them critical: prepayment
/// requests a customer waits on at the meter.
pub const PREPAYMENT: &[&str] = &["2.2"];

/// SRVs in the `Bulk` class: reads Users run over many devices at once, and the DCC's answers
/// from its own cache. Prepayment reads (4.3 Read Instantaneous Prepay Values, 4.13, 4.14, 4.18
/// Read Meter Balance) are deliberately not here: a customer at a prepayment meter waits on them.
pub const BULK: &[&str] = &[
    "4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.2", "4.4.2", "4.4.3", "4.4.4", "4.4.5", "4.6.1",
    "4.6.2", "4.8.1", "4.8.2", "4.8.3", "4.10", "4.11.1", "4.11.2", "4.12.1", "4.12.2", "4.15",
    "4.16", "4.17", "6.2.1", "6.2.2", "6.2.3", "6.2.4", "6.2.5", "6.2.7", "6.2.8", "6.2.9",
    "6.2.10", "6.13", "6.30", "6.31", "6.32", "7.4", "7.7", "7.11", "7.14", "7.15", "8.2", "8.9",
    "11.2", "12.1", "5.2",
];

/// The class of a request for `entry`'s SRV: critical by the catalogue's flag or the
/// prepayment list, bulk by the bulk list, standard otherwise.
pub fn class_of(entry: &SrvEntry) -> Class {
    let srv = entry.srv.to_string();
    if entry.critical || PREPAYMENT.contains(&srv.as_str()) {
        Class::Critical
    } else if BULK.contains(&srv.as_str()) {
        Class::Bulk
    } else {
        Class::Standard
    }
}

/// Every catalogue SRV's class, worked out once.
#[derive(Debug, Clone)]
pub struct ClassTable {
    classes: HashMap<Srv, Class>,
}

impl ClassTable {
    pub fn new(catalogue: &Catalogue) -> Self {
        Self {
            classes: catalogue.iter().map(|e| (e.srv, class_of(e))).collect(),
        }
    }

    /// The class of a request naming `srv`; one outside the catalogue is `Standard` (it is
    /// refused before admission anyway).
    pub fn get(&self, srv: &Srv) -> Class {
        self.classes.get(srv).copied().unwrap_or(Class::Standard)
    }
}
