//! A request's decision, made durable in one commit: its originator's new mark and the records
//! of the effects the request log carries (a command for the hub network, a held request),
//! through [`RequestLog`]; then, once durable, those effects taken up by their stores in memory
//! (the command dispatched, the hold waiting). The one place that says, for each kind of
//! entry, how an effect becomes a record ([`entry`]), what follows its commit ([`Gateway::commit`]),
//! how a start recovers it ([`Recovery`]) and how a checkpoint copies it into its store's own
//! file ([`checkpoint`]).

use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::Dispatcher;
use crate::domain::RequestId;
use crate::error::{Error, Resource};
use crate::routing::SignedCommand;
use crate::store::{
    CommitError, Decision, Entry, EntryKind, FileRequestLog, Held, HoldError, Holds, MarkEntry,
    ReplayGuard, Reservation,
};

use super::plan::Effect;
use super::Gateway;

/// A logged effect's record; `None` for an effect the log does not carry.
fn entry(effect: &Effect) -> Option<Entry> {
    match effect {
        Effect::Route(cmd) => Some(Entry {
            kind: EntryKind::Pending,
            bytes: cmd.as_bytes().to_vec(),
        }),
        Effect::Hold(held) => Some(Entry {
            kind: EntryKind::Hold,
            bytes: held.to_record(),
        }),
        _ => None,
    }
}

/// The request an entry belongs to, which a log keeping the entries itself settles it by
/// (the dispatcher settles a command by its request, the DSP a hold by its request).
pub fn entry_key(entry: &Entry) -> Option<String> {
    match entry.kind {
        EntryKind::Pending => SignedCommand::from_bytes(entry.bytes.clone())
            .header()
            .ok()
            .map(|h| h.request_id.to_string()),
        EntryKind::Hold => Held::from_record(&entry.bytes).map(|h| h.request_id.to_string()),
    }
}

/// Whether the request log carries `effect`'s record.
pub(super) fn logged(effect: &Effect) -> bool {
    matches!(effect, Effect::Route(_) | Effect::Hold(_))
}

impl Gateway {
    /// Commits `mark` (the request's reserved counter, if it spends one) and the records of
    /// `effects` (each [`logged`]) as one decision; once durable, the effects follow: commands
    /// dispatched in the background, holds waiting for their time. Each effect is taken by its
    /// store in memory before the commit (so that a checkpoint of the segment it lands in finds
    /// it); if the commit fails, the counter, the commands and the holds' room are given back
    /// and nothing follows.
    pub(super) async fn commit(
        &self,
        mark: Option<Reservation>,
        effects: Vec<Effect>,
    ) -> Result<(), Error> {
        let mut taken = Taken::default();
        let mut entries = Vec::with_capacity(effects.len());
        for effect in &effects {
            if let Err(e) = self.take(effect, &mut taken) {
                self.give_back(mark.as_ref(), &taken);
                return Err(e);
            }
            entries.extend(entry(effect));
        }
        let decision = Decision {
            mark: mark.map(|r| r.entry),
            entries,
        };
        if !decision.is_empty() {
            if let Err(e) = self.log.commit(decision).await {
                self.give_back(mark.as_ref(), &taken);
                return Err(match e {
                    // Another instance accepted the counter first: a replay, as if seen here.
                    CommitError::Refused(replay) => Error::Replay(replay),
                    e => Error::resource(Resource::ReplayJournal, e),
                });
            }
        }
        for effect in effects {
            match effect {
                Effect::Route(command) if taken.commands.contains(&command) => {
                    self.dispatch(command);
                }
                Effect::Hold(held) if taken.holds.contains(&held.request_id) => {
                    self.dsp.holds.admit(held);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Entries a gone instance left, claimed by this one: its commands pending here and sent
    /// again (the hub network answers a request it has seen again as it answers any), its
    /// holds waiting here for their time. Durable already (the claim moved their rows).
    pub fn adopt(&self, decisions: &[Decision]) {
        let r = Recovery::of(decisions);
        for command in r.commands {
            match self.routing.dispatcher.admit(&command) {
                Ok(true) => self.dispatch(command),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "A claimed command does not read; skipped."),
            }
        }
        for held in r.holds {
            match self.dsp.holds.reserve(&held) {
                Ok(true) => self.dsp.holds.admit(held),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "A claimed hold was not taken."),
            }
        }
    }

    /// `effect` taken by its store in memory, before its decision's commit.
    fn take(&self, effect: &Effect, taken: &mut Taken) -> Result<(), Error> {
        match effect {
            Effect::Route(command) => {
                let dispatcher = &self.routing.dispatcher;
                // Pending already: a held request released again after a crash; it is sent
                // once.
                if dispatcher
                    .admit(command)
                    .map_err(|e| Error::resource(Resource::PendingJournal, e))?
                {
                    taken.commands.push(command.clone());
                }
            }
            Effect::Hold(held) => match self.dsp.holds.reserve(held) {
                Ok(true) => taken.holds.push(held.request_id),
                // Held already: the same hold; nothing more to keep.
                Ok(false) => {}
                Err(HoldError::TooMany(_) | HoldError::TooLarge(_)) => {
                    return Err(Error::HoldsFull)
                }
                Err(HoldError::Journal(e)) => {
                    return Err(Error::resource(Resource::HoldJournal, e))
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// What a failed commit gives back: the counter, the commands, the holds' room.
    fn give_back(&self, mark: Option<&Reservation>, taken: &Taken) {
        if let Some(r) = mark {
            self.replay.rollback(r);
        }
        for command in &taken.commands {
            self.routing.dispatcher.forget(command);
        }
        for id in &taken.holds {
            self.dsp.holds.unreserve(id);
        }
    }

    /// A command durable in the request log, sent in the background.
    fn dispatch(&self, command: SignedCommand) {
        let dispatcher = Arc::clone(&self.routing.dispatcher);
        tokio::spawn(async move {
            if let Err(e) = dispatcher.dispatch(command).await {
                tracing::error!(error = %e, "Dispatch failed; the command is answered after a restart.");
            }
        });
    }
}

/// The effects a decision's stores took before its commit.
#[derive(Default)]
struct Taken {
    commands: Vec<SignedCommand>,
    holds: Vec<RequestId>,
}

/// The request log's decisions at a start, by the store each part goes to.
#[derive(Default)]
pub struct Recovery {
    pub marks: Vec<MarkEntry>,
    pub commands: Vec<SignedCommand>,
    pub holds: Vec<Held>,
}

impl Recovery {
    /// Sorts `decisions` (in log order) by store.
    pub fn of(decisions: &[Decision]) -> Self {
        let mut r = Self::default();
        for d in decisions {
            r.marks.extend(d.mark);
            for e in &d.entries {
                match e.kind {
                    EntryKind::Pending => {
                        r.commands.push(SignedCommand::from_bytes(e.bytes.clone()));
                    }
                    EntryKind::Hold => match Held::from_record(&e.bytes) {
                        Some(h) => r.holds.push(h),
                        None => tracing::warn!(
                            "A held request in the request log does not read; skipped."
                        ),
                    },
                }
            }
        }
        r
    }
}

/// The stores a checkpoint copies into.
pub struct Stores {
    pub replay: Arc<ReplayGuard>,
    pub dispatcher: Arc<Dispatcher>,
    pub holds: Arc<Holds>,
}

/// Copies each sealed segment of `log` into the stores' own files, then deletes it; runs for as
/// long as the gateway does. A checkpoint that fails is tried again a second later (the
/// segment stays on disk meanwhile, so nothing is lost; the log's bound on sealed segments
/// holds the rest).
pub async fn checkpoint(log: Arc<FileRequestLog>, stores: Stores) {
    loop {
        let sealed = log.next_sealed().await;
        loop {
            match copy(&sealed, &stores)
                .await
                .and_then(|()| log.release(&sealed).map_err(|e| e.to_string()))
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "Request log checkpoint failed; tried again in a second.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

async fn copy(sealed: &crate::store::Sealed, stores: &Stores) -> Result<(), String> {
    let decisions = sealed.decisions().await.map_err(|e| e.to_string())?;
    let r = Recovery::of(&decisions);
    stores
        .replay
        .checkpoint(&r.marks)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .dispatcher
        .checkpoint(&r.commands)
        .await
        .map_err(|e| e.to_string())?;
    stores
        .holds
        .checkpoint(&r.holds)
        .await
        .map_err(|e| e.to_string())
}
