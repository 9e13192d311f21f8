//! Firmware distributions in progress (11.1 Update Firmware, 11.4 Update PPMID Firmware), kept
//! durably in `firmware/firmware.journal` under the state directory: each distribution is
//! journalled before its `I99`, each hub's outcome as it comes, and the distribution's end once
//! its final messages are in the outbox. A restart finds every distribution not yet reported,
//! with the hubs still owed (their commands are in the pending journal, and are dispatched
//! again) and those finished but not reported (reported again: duplicates, never loss). The
//! journal is compacted at each start (only what is in progress is kept); between starts it
//! grows by one record per distribution, per hub answer and per report.
//!
//! A distribution sends one command to each comms hub in front of the devices it reaches; the
//! command's RequestID is the request's with the hub as its target ([`hub_request_id`]), unique
//! because the request's counter was accepted once for its originator. At most
//! [`MAX_LIVE`] distributions are in progress at once; at the bound a new one is refused.

mod record;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::domain::{DeviceId, RequestId, Srv, DCC_ID};
use crate::duis::services::FirmwareWarning;
use crate::store::{rewrite, Journal, JournalError};

use record::Record;

/// Distributions in progress at once; at the bound a new request is refused (`E60`).
pub const MAX_LIVE: usize = 1024;

/// One distribution: the request, the image's version, the devices skipped and why, and each
/// hub's transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// The 11.1 or 11.4 request (its target is the DCC).
    #[serde(with = "crate::registry::text")]
    pub request_id: RequestId,
    pub srv: Srv,
    pub version: String,
    /// Listed devices the image is not sent to, and why.
    pub warning: FirmwareWarning,
    /// One transfer per hub, each hub once.
    pub hubs: Vec<HubTransfer>,
    /// When the request was accepted (unix seconds).
    pub at: i64,
}

/// The image's way to the devices behind one comms hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubTransfer {
    pub hub: DeviceId,
    pub devices: Vec<DeviceId>,
    /// `None` while the hub has not answered; then whether it took the image.
    pub delivered: Option<bool>,
}

impl Distribution {
    /// Whether every hub has answered.
    pub fn is_finished(&self) -> bool {
        self.hubs.iter().all(|h| h.delivered.is_some())
    }

    /// Whether it is an 11.4 Update PPMID Firmware (else 11.1).
    pub fn ppmid(&self) -> bool {
        self.srv.to_string() == "11.4"
    }

    /// The devices behind hubs that did not take the image, in order.
    pub fn undelivered(&self) -> Vec<DeviceId> {
        self.hubs
            .iter()
            .filter(|h| h.delivered == Some(false))
            .flat_map(|h| h.devices.iter().copied())
            .collect()
    }

    fn devices(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.hubs.iter().flat_map(|h| h.devices.iter().copied())
    }
}

/// The RequestID of the command that takes `request`'s image to `hub`.
pub fn hub_request_id(request: &RequestId, hub: DeviceId) -> RequestId {
    RequestId {
        target: hub,
        ..*request
    }
}

/// The request a hub's command belongs to.
pub fn distribution_id(hub_request: &RequestId) -> RequestId {
    RequestId {
        target: DCC_ID,
        ..*hub_request
    }
}

/// Why a distribution did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{MAX_LIVE} distributions are in progress")]
    Full,
    #[error("the firmware journal")]
    Journal(#[source] JournalError),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the firmware journal")]
    Journal(#[from] JournalError),
    #[error("the firmware journal {path} holds a record that does not read")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Default)]
struct Live {
    distributions: HashMap<RequestId, Distribution>,
    /// Devices in a distribution in progress, with how many.
    busy: HashMap<DeviceId, usize>,
}

impl Live {
    fn insert(&mut self, d: Distribution) {
        for device in d.devices() {
            *self.busy.entry(device).or_default() += 1;
        }
        self.distributions.insert(d.request_id, d);
    }

    fn remove(&mut self, id: &RequestId) {
        let Some(d) = self.distributions.remove(id) else {
            return;
        };
        for device in d.devices() {
            if let Some(n) = self.busy.get_mut(&device) {
                *n -= 1;
                if *n == 0 {
                    self.busy.remove(&device);
                }
            }
        }
    }
}

/// The distributions in progress and their journal.
pub struct Distributions {
    journal: Journal,
    live: Mutex<Live>,
}

impl Distributions {
    /// Opens the journal in `dir` (blocking), keeping only the distributions not yet reported:
    /// the file is rewritten with them alone, their hubs' outcomes folded in.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join("firmware.journal");
        let (journal, records) = Journal::open(&path)?;
        let mut live = Live::default();
        for bytes in records {
            let record: Record =
                serde_json::from_slice(&bytes).map_err(|source| OpenError::Record {
                    path: path.clone(),
                    source,
                })?;
            record.replay(&mut live);
        }
        drop(journal);
        let mut kept: Vec<&Distribution> = live.distributions.values().collect();
        kept.sort_by_key(|d| (d.at, d.request_id.counter));
        let kept = kept.into_iter().map(Record::start_bytes);
        rewrite(&path, kept)?;
        let (journal, _) = Journal::open(&path)?;
        Ok(Self {
            journal,
            live: Mutex::new(live),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // Whole inserts and removals only: nothing half-done survives a panic.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `device` is in a distribution in progress.
    pub fn in_progress(&self, device: DeviceId) -> bool {
        self.lock().busy.contains_key(&device)
    }

    /// Whether another distribution may start.
    pub fn has_room(&self) -> bool {
        self.lock().distributions.len() < MAX_LIVE
    }

    /// Distributions in progress.
    pub fn len(&self) -> usize {
        self.lock().distributions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Journals `d` (on disk when this returns), then counts it in progress.
    pub async fn start(&self, d: Distribution) -> Result<(), StartError> {
        if !self.has_room() {
            return Err(StartError::Full);
        }
        self.journal
            .append(Record::start_bytes(&d))
            .await
            .map_err(StartError::Journal)?;
        self.lock().insert(d);
        Ok(())
    }

    /// Records the outcome of the hub command `hub_request` (durably). The distribution, when
    /// this outcome was its last one; `None` for a repeated outcome, or one for a distribution
    /// no longer in progress.
    pub async fn hub_done(
        &self,
        hub_request: &RequestId,
        delivered: bool,
    ) -> Result<Option<Distribution>, JournalError> {
        let id = distribution_id(hub_request);
        let hub = hub_request.target;
        if !self.awaits(&id, hub) {
            return Ok(None);
        }
        self.journal
            .append(Record::hub_bytes(&id, hub, delivered))
            .await?;
        let mut live = self.lock();
        let Some(d) = live.distributions.get_mut(&id) else {
            return Ok(None);
        };
        let Some(h) = d
            .hubs
            .iter_mut()
            .find(|h| h.hub == hub && h.delivered.is_none())
        else {
            return Ok(None);
        };
        h.delivered = Some(delivered);
        Ok(d.is_finished().then(|| d.clone()))
    }

    fn awaits(&self, id: &RequestId, hub: DeviceId) -> bool {
        self.lock()
            .distributions
            .get(id)
            .is_some_and(|d| d.hubs.iter().any(|h| h.hub == hub && h.delivered.is_none()))
    }

    /// Distributions whose hubs have all answered and whose final messages are not recorded as
    /// in the outbox: after a restart, report them again.
    pub fn finished(&self) -> Vec<Distribution> {
        let mut out: Vec<Distribution> = self
            .lock()
            .distributions
            .values()
            .filter(|d| d.is_finished())
            .cloned()
            .collect();
        out.sort_by_key(|d| (d.at, d.request_id.counter));
        out
    }

    /// Records that `id`'s final messages are in the outbox; it is no longer in progress.
    pub async fn reported(&self, id: &RequestId) -> Result<(), JournalError> {
        self.journal.append(Record::reported_bytes(id)).await?;
        self.lock().remove(id);
        Ok(())
    }
}
