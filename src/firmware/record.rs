//! The firmware journal's records (JSON, one per journal record): a distribution started, one
//! hub's outcome, a distribution reported.

use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, RequestId};

use super::{Distribution, Live};

#[derive(Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Record {
    Start {
        distribution: Distribution,
    },
    Hub {
        #[serde(with = "crate::registry::text")]
        request_id: RequestId,
        hub: DeviceId,
        delivered: bool,
    },
    Reported {
        #[serde(with = "crate::registry::text")]
        request_id: RequestId,
    },
}

impl Record {
    pub fn start_bytes(d: &Distribution) -> Vec<u8> {
        Self::Start {
            distribution: d.clone(),
        }
        .bytes()
    }

    pub fn hub_bytes(request_id: &RequestId, hub: DeviceId, delivered: bool) -> Vec<u8> {
        Self::Hub {
            request_id: *request_id,
            hub,
            delivered,
        }
        .bytes()
    }

    pub fn reported_bytes(request_id: &RequestId) -> Vec<u8> {
        Self::Reported {
            request_id: *request_id,
        }
        .bytes()
    }

    fn bytes(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Applies the record to the distributions replayed so far. A hub outcome or report for a
    /// distribution not (or no longer) there changes nothing.
    pub fn replay(self, live: &mut Live) {
        match self {
            Self::Start { distribution } => live.insert(distribution),
            Self::Hub {
                request_id,
                hub,
                delivered,
            } => {
                let hub = live
                    .distributions
                    .get_mut(&request_id)
                    .and_then(|d| d.hubs.iter_mut().find(|h| h.hub == hub));
                if let Some(h) = hub {
                    h.delivered.get_or_insert(delivered);
                }
            }
            Self::Reported { request_id } => live.remove(&request_id),
        }
    }
}
