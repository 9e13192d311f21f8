//! DSP schedules (5.1 creates, 5.3 deletes, a change of supplier removes): each journalled
//! before its answer, with how far its executions have got, so that a start resumes every
//! schedule where it stopped.
//!
//! Records (JSON): `{"created": {"id", "owner", "spec", "next"}}` (the spec as the
//! `sr:CreateSchedule` the schedule parser reads back), `{"ran": {"id", "k"}}` (execution `k`
//! was started: the next is `k + 1`), `{"deleted": id}`, `{"removed": {"id", "seq"}}` (a change
//! of supplier, the registration change log's batch `seq`, removed it; it is kept as removed
//! until a start after that batch's DCC Alerts are all out, so that raising them again finds
//! it), `{"issued": id}` (every ID up to this one was given out). A journal with many superseded
//! records is rewritten at open: the highest ID given out, then one record per schedule.
//!
//! Bounds: at most `max_schedules` schedules, and 99 per User and device (what one
//! `DSPSchedulesRead` can list); a schedule past either is refused.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::journal::{rewrite, Journal, JournalError};
use crate::domain::{DeviceId, UserId};
use crate::duis::schedule::{
    parse_create_schedule, write_create_schedule, ScheduleId, ScheduleSelector, ScheduleSpec,
    MAX_SCHEDULES_READ,
};

/// One schedule as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub id: ScheduleId,
    pub owner: UserId,
    pub spec: Arc<ScheduleSpec>,
    /// The next execution to start.
    pub next: u32,
    /// The change batch that removed it, if one did.
    pub removed: Option<u64>,
}

/// A schedule whose executions `from..=to` are due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub schedule: Schedule,
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleStoreError {
    #[error("{0} DSP schedules are kept already")]
    TooMany(usize),
    #[error("the User has {MAX_SCHEDULES_READ} DSP schedules on the device already")]
    TooManyForDevice,
    #[error("no DSP schedule ID is left")]
    IdsUsedUp,
    #[error(transparent)]
    Journal(#[from] JournalError),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Created {
        id: u64,
        owner: UserId,
        spec: String,
        next: u32,
    },
    Ran {
        id: u64,
        k: u32,
    },
    Deleted(u64),
    Removed {
        id: u64,
        seq: u64,
    },
    /// Every ID up to this one has been given out (written by a rewrite, which drops the
    /// records of deleted schedules: their IDs are not given out again).
    Issued(u64),
}

#[derive(Default)]
struct State {
    schedules: HashMap<ScheduleId, Schedule>,
    /// Live schedules by the time of their next execution.
    timetable: BTreeSet<(i64, ScheduleId)>,
    /// Schedules on each device, removed ones included.
    by_device: HashMap<DeviceId, BTreeSet<ScheduleId>>,
    /// Schedules deleted or removed while this process runs, whose executions' answers may
    /// still come.
    gone: BTreeSet<ScheduleId>,
    /// Schedules neither deleted nor removed.
    live: usize,
}

pub struct Schedules {
    journal: Journal,
    max_schedules: usize,
    /// Seconds in a day of the schedule calendar (86 400 but in tests).
    day_secs: i64,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Told when a schedule is created, so a timer waiting for a later one looks again.
    created: Notify,
}

impl Schedules {
    /// Opens the journal at `path`. Schedules a change removed are forgotten unless
    /// `owed(seq)` says that change's DCC Alerts may not all be out. Blocking.
    pub fn open(
        path: &Path,
        max_schedules: usize,
        day_secs: i64,
        owed: impl Fn(u64) -> bool,
    ) -> Result<Self, JournalError> {
        let (_, records) = Journal::open(path)?;
        let mut schedules: HashMap<ScheduleId, Schedule> = HashMap::new();
        let mut last_id = 0;
        for r in &records {
            let Ok(record) = serde_json::from_slice::<Record>(r) else {
                tracing::warn!("A DSP schedule record does not read; skipped.");
                continue;
            };
            fold(&mut schedules, &mut last_id, record);
        }
        schedules.retain(|_, s| s.removed.is_none_or(&owed));
        if records.len() > 4096 && records.len() > 4 * schedules.len() {
            let mut live: Vec<&Schedule> = schedules.values().collect();
            live.sort_by_key(|s| s.id);
            let issued = record_bytes(&Record::Issued(last_id));
            let records = std::iter::once(issued).chain(live.into_iter().flat_map(compacted));
            rewrite(path, records)?;
        }
        let (journal, _) = Journal::open(path)?;
        let store = Self {
            journal,
            max_schedules,
            day_secs: day_secs.max(1),
            next_id: AtomicU64::new(last_id + 1),
            state: Mutex::new(State::default()),
            created: Notify::new(),
        };
        {
            let mut s = store.lock();
            for schedule in schedules.into_values() {
                store.index(&mut s, schedule);
            }
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds in a day of the schedule calendar.
    pub fn day_secs(&self) -> i64 {
        self.day_secs
    }

    /// A fresh schedule ID (an ID taken by a request that is then refused stays unused).
    pub fn allocate_id(&self) -> Result<ScheduleId, ScheduleStoreError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        ScheduleId::try_from(id).map_err(|_| ScheduleStoreError::IdsUsedUp)
    }

    /// Whether `owner` may add a schedule on `device` within the bounds now.
    pub fn room_for(&self, owner: UserId, device: DeviceId) -> Result<(), ScheduleStoreError> {
        let s = self.lock();
        if s.live >= self.max_schedules {
            return Err(ScheduleStoreError::TooMany(self.max_schedules));
        }
        if owned_on(&s, owner, device).count() >= MAX_SCHEDULES_READ {
            return Err(ScheduleStoreError::TooManyForDevice);
        }
        Ok(())
    }

    /// Keeps a new schedule, whose first execution is `next`; returns once it is on disk.
    pub async fn create(
        &self,
        id: ScheduleId,
        owner: UserId,
        spec: ScheduleSpec,
        next: u32,
    ) -> Result<(), ScheduleStoreError> {
        self.room_for(owner, spec.device)?;
        let record = Record::Created {
            id: id.get(),
            owner,
            spec: write_create_schedule(&spec),
            next,
        };
        self.append(&record).await?;
        let schedule = Schedule {
            id,
            owner,
            spec: Arc::new(spec),
            next,
            removed: None,
        };
        {
            let mut s = self.lock();
            self.index(&mut s, schedule);
        }
        self.created.notify_one();
        Ok(())
    }

    /// `owner`'s live schedules that `selector` picks, by ID.
    pub fn read(&self, owner: UserId, selector: ScheduleSelector) -> Vec<Schedule> {
        let s = self.lock();
        let mut found: Vec<Schedule> = match selector {
            ScheduleSelector::Id(id) => s
                .schedules
                .get(&id)
                .filter(|x| x.owner == owner && x.removed.is_none())
                .cloned()
                .into_iter()
                .collect(),
            ScheduleSelector::Device(device) => owned_on(&s, owner, device).cloned().collect(),
        };
        found.sort_by_key(|x| x.id);
        found
    }

    /// Deletes the live schedules among `ids`; returns once that is on disk.
    pub async fn delete(&self, ids: &[ScheduleId]) -> Result<(), JournalError> {
        for id in ids {
            self.append(&Record::Deleted(id.get())).await?;
            let mut s = self.lock();
            if let Some(gone) = s.schedules.remove(id) {
                unindex(&mut s, &gone, self.day_secs);
                if gone.removed.is_none() {
                    s.live -= 1;
                }
                s.gone.insert(*id);
            }
        }
        Ok(())
    }

    /// What a change of supplier (change batch `seq`) takes from `outgoing` on `device`: their
    /// live schedules there, now removed (durably), and any this same batch removed before (a
    /// start raising the batch's alerts again). Returns them with their owners.
    pub async fn remove_for_change(
        &self,
        seq: u64,
        device: DeviceId,
        outgoing: &[UserId],
    ) -> Result<Vec<(ScheduleId, UserId)>, JournalError> {
        let (fresh, before): (Vec<Schedule>, Vec<Schedule>) = {
            let s = self.lock();
            s.by_device
                .get(&device)
                .into_iter()
                .flatten()
                .filter_map(|id| s.schedules.get(id))
                .filter(|x| outgoing.contains(&x.owner))
                .filter(|x| x.removed.is_none_or(|r| r == seq))
                .cloned()
                .partition(|x| x.removed.is_none())
        };
        for x in &fresh {
            self.append(&Record::Removed {
                id: x.id.get(),
                seq,
            })
            .await?;
            let mut s = self.lock();
            let day_secs = self.day_secs;
            if let Some(kept) = s.schedules.get_mut(&x.id) {
                if kept.removed.is_none() {
                    kept.removed = Some(seq);
                    let kept = kept.clone();
                    unindex_time(&mut s, &kept, day_secs);
                    s.live -= 1;
                }
            }
            s.gone.insert(x.id);
        }
        let mut out: Vec<(ScheduleId, UserId)> = fresh
            .iter()
            .chain(&before)
            .map(|x| (x.id, x.owner))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Whether `id` is a schedule this process knows or knew (its executions' answers are
    /// schedule results).
    pub fn knows(&self, id: ScheduleId) -> bool {
        let s = self.lock();
        s.schedules.contains_key(&id) || s.gone.contains(&id)
    }

    /// The time of the next execution of any live schedule.
    pub fn next_due(&self) -> Option<i64> {
        self.lock().timetable.first().map(|(t, _)| *t)
    }

    /// Every live schedule with executions due at or before `now`, and which.
    pub fn due(&self, now: i64) -> Vec<Due> {
        let s = self.lock();
        s.timetable
            .range(..=(now, ScheduleId::LAST))
            .filter_map(|(_, id)| s.schedules.get(id))
            .filter_map(|x| {
                let to = x.spec.last_execution_by(x.next, now, self.day_secs)?;
                Some(Due {
                    schedule: x.clone(),
                    from: x.next,
                    to,
                })
            })
            .collect()
    }

    /// Executions of `id` up to `k` have been started (or skipped); returns once that is on
    /// disk.
    pub async fn ran(&self, id: ScheduleId, k: u32) -> Result<(), JournalError> {
        self.append(&Record::Ran { id: id.get(), k }).await?;
        let mut s = self.lock();
        let day_secs = self.day_secs;
        if let Some(x) = s.schedules.get(&id).cloned() {
            unindex_time(&mut s, &x, day_secs);
            let next = x.next.max(k.saturating_add(1));
            let moved = Schedule { next, ..x };
            index_time(&mut s, &moved, day_secs);
            s.schedules.insert(id, moved);
        }
        Ok(())
    }

    /// Resolves once a schedule has been created since the last call.
    pub async fn created(&self) {
        self.created.notified().await;
    }

    /// Live schedules.
    pub fn len(&self) -> usize {
        self.lock().live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the journal's last write failed (a later one that succeeds clears it).
    pub fn is_failing(&self) -> bool {
        self.journal.is_failing()
    }

    async fn append(&self, record: &Record) -> Result<(), JournalError> {
        self.journal.append(record_bytes(record)).await
    }

    fn index(&self, s: &mut State, schedule: Schedule) {
        if schedule.removed.is_none() {
            s.live += 1;
        }
        s.by_device
            .entry(schedule.spec.device)
            .or_default()
            .insert(schedule.id);
        index_time(s, &schedule, self.day_secs);
        s.schedules.insert(schedule.id, schedule);
    }
}

/// `owner`'s live schedules on `device`.
fn owned_on(s: &State, owner: UserId, device: DeviceId) -> impl Iterator<Item = &Schedule> {
    s.by_device
        .get(&device)
        .into_iter()
        .flatten()
        .filter_map(|id| s.schedules.get(id))
        .filter(move |x| x.owner == owner && x.removed.is_none())
}

fn index_time(s: &mut State, x: &Schedule, day_secs: i64) {
    if x.removed.is_some() {
        return;
    }
    if let Some(t) = x.spec.execution_time(x.next, day_secs) {
        s.timetable.insert((t, x.id));
    }
}

fn unindex_time(s: &mut State, x: &Schedule, day_secs: i64) {
    if let Some(t) = x.spec.execution_time(x.next, day_secs) {
        s.timetable.remove(&(t, x.id));
    }
}

fn unindex(s: &mut State, x: &Schedule, day_secs: i64) {
    unindex_time(s, x, day_secs);
    if let Some(ids) = s.by_device.get_mut(&x.spec.device) {
        ids.remove(&x.id);
        if ids.is_empty() {
            s.by_device.remove(&x.spec.device);
        }
    }
}

/// Applies one journal record.
fn fold(schedules: &mut HashMap<ScheduleId, Schedule>, last_id: &mut u64, record: Record) {
    let id = |n: u64| ScheduleId::try_from(n).ok();
    match record {
        Record::Created {
            id: n,
            owner,
            spec,
            next,
        } => {
            *last_id = (*last_id).max(n);
            let (Some(id), Ok(spec)) = (id(n), parse_create_schedule(spec.as_bytes())) else {
                tracing::warn!(id = n, "A stored DSP schedule does not read; skipped.");
                return;
            };
            schedules.insert(
                id,
                Schedule {
                    id,
                    owner,
                    spec: Arc::new(spec),
                    next,
                    removed: None,
                },
            );
        }
        Record::Ran { id: n, k } => {
            if let Some(x) = id(n).and_then(|id| schedules.get_mut(&id)) {
                x.next = x.next.max(k.saturating_add(1));
            }
        }
        Record::Deleted(n) => {
            if let Some(id) = id(n) {
                schedules.remove(&id);
            }
        }
        Record::Removed { id: n, seq } => {
            if let Some(x) = id(n).and_then(|id| schedules.get_mut(&id)) {
                x.removed = Some(seq);
            }
        }
        Record::Issued(n) => *last_id = (*last_id).max(n),
    }
}

fn record_bytes(record: &Record) -> Vec<u8> {
    // Serialising these plain values cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

/// The records that recreate `x` on their own.
fn compacted(x: &Schedule) -> Vec<Vec<u8>> {
    let mut records = vec![Record::Created {
        id: x.id.get(),
        owner: x.owner,
        spec: write_create_schedule(&x.spec),
        next: x.next,
    }];
    if let Some(seq) = x.removed {
        records.push(Record::Removed {
            id: x.id.get(),
            seq,
        });
    }
    records.iter().map(record_bytes).collect()
}

#[cfg(test)]
mod tests;
