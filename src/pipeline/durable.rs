//! A request's decision, made durable in one commit: its originator's new mark, the records
//! of the effects the request log carries (a command for the hub network, a held request, a
//! quarantined request, a pre-command issued or used, a request counted) and
//! its audit record, through [`RequestLog`]; then, once durable, those effects taken up by their stores in memory
//! (the command dispatched, the hold waiting). The one place that says, for each kind of
//! entry, how an effect becomes a record ([`entry`]), what follows its commit ([`Gateway::commit`]),
//! how a start recovers it ([`Recovery`]) and how a checkpoint copies it into its store's own
//! file ([`checkpoint`]).

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use crate::audit::{self, AuditError, AuditEvent};
use crate::domain::{DuisService, RequestId};
use crate::duis::PartialHeader;
use crate::error::{Error, Resource};
use crate::metrics::{AuditWaited, RequestTrace};
use crate::outbox::Outbound;
use crate::routing::SignedCommand;
use crate::store::{
    CommitError, Decision, Entry, EntryKind, Held, HoldError, IssueError, QuarantineError,
    Quarantined, Reservation,
};
use crate::tls::PeerIdentity;

use super::critical::{use_error, HeldPreCommand};
use super::local::LocalCommand;
use super::plan::{issue_error, Effect};
use super::recovery::Recovery;
use super::{Answer, Gateway};

/// The request an entry belongs to, which a log keeping the entries itself settles it by
/// (the dispatcher settles a command by its request, the DSP a hold by its request).
pub fn entry_key(entry: &Entry) -> Option<String> {
    match entry.kind {
        EntryKind::Pending => SignedCommand::from_bytes(entry.bytes.clone())
            .header()
            .ok()
            .map(|h| h.request_id.to_string()),
        EntryKind::Hold => Held::from_record(&entry.bytes).map(|h| h.request_id.to_string()),
        // By its reference, which the admin API names it by (unique across instances).
        EntryKind::Quarantine => {
            Quarantined::from_record(&entry.bytes).map(|q| q.reference.to_string())
        }
        // `EntryKind::kept_by_instance`: in each instance's own files in cluster mode
        // (`cluster::LocalSink`), never settled through the log.
        // Issued and used share the row of the Transform's request: the use replaces the issue.
        EntryKind::PreCommand | EntryKind::PreCommandUse => crate::store::record_key(&entry.bytes),
        EntryKind::Audit | EntryKind::Count | EntryKind::LocalCommand => None,
    }
}

/// Whether the request log carries `effect`'s record.
pub(super) fn logged(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::Route(_)
            | Effect::Hold(_)
            | Effect::RememberPreCommand { .. }
            | Effect::UsePreCommand(_)
            | Effect::Count(_)
            | Effect::Quarantine(_)
            | Effect::DeliverLocally { .. }
            | Effect::LocalCommandAnswered(_)
    )
}

impl Gateway {
    /// The answer, once its decision (`prepared`: its counter and effects, for an accepted
    /// request) and its audit record are on disk: one commit, one fsync, shared by every request
    /// waiting (group commit). If the commit of an accepted request's decision fails, its
    /// counter and effects are given back and the error comes back, for the request to be
    /// answered as refused (`refuse_after_commit`): a counter another instance accepted first
    /// (`E57`), the log unavailable (`E100`). A refusal whose own record cannot be committed
    /// does not leave: the sender gets a bare 503 with no DUIS answer (the log that failed is
    /// the one that would record it).
    pub(super) async fn once_recorded(
        &self,
        answer: Answer,
        audited: AuditEvent,
        prepared: Prepared,
    ) -> Result<Answer, Error> {
        let waiting = Instant::now();
        let decided = prepared.mark.is_some() || !prepared.entries.is_empty();
        let (result, refused) = match audit::logged(&audited) {
            Ok(entry) => match self.commit_prepared(prepared, Some(entry)).await {
                Ok(()) => (Ok(()), None),
                Err(e) => (
                    Err(AuditError::Write(Arc::new(std::io::Error::other(
                        e.to_string(),
                    )))),
                    Some(e),
                ),
            },
            Err(e) => {
                self.give_back_prepared(prepared);
                (Err(e), None)
            }
        };
        let recorded = result.is_ok();
        AuditWaited {
            result,
            waited: waiting.elapsed(),
        }
        .emit(&self.metrics);
        match refused {
            _ if recorded => Ok(answer),
            Some(error) if decided => Err(error),
            _ => Ok(Answer::withheld()),
        }
    }

    /// An accepted request whose decision did not commit, answered with `error` instead: its
    /// refusal written and recorded on its own (a second commit, with nothing but the record).
    pub(super) async fn refuse_after_commit(
        &self,
        service: DuisService,
        peer: &PeerIdentity,
        partial: PartialHeader,
        error: Error,
        now: OffsetDateTime,
    ) -> Answer {
        let trace = RequestTrace::start();
        let (answer, audited) = self
            .offload
            .run(|| self.respond(service, peer, partial, Err(error), now, trace))
            .await;
        self.once_recorded(answer, audited, Prepared::default())
            .await
            .unwrap_or_else(|_| Answer::withheld())
    }

    /// `mark` and `effects` (each [`logged`]) made ready for their commit at `now` (unix
    /// seconds): each effect taken by its store in memory (so that a checkpoint of the segment
    /// it lands in finds it), with its record. If one cannot be taken, what was taken and the
    /// counter are given back.
    pub(super) fn prepare(
        &self,
        mark: Option<Reservation>,
        effects: Vec<Effect>,
        now: i64,
    ) -> Result<Prepared, Error> {
        let mut taken = Taken::default();
        let mut entries = Vec::with_capacity(effects.len() + 1);
        for effect in &effects {
            match self.take(effect, &mut taken, now) {
                Ok(entry) => entries.extend(entry),
                Err(e) => {
                    self.give_back(mark.as_ref(), &taken);
                    return Err(e);
                }
            }
        }
        Ok(Prepared {
            mark,
            entries,
            effects,
            taken,
        })
    }

    /// Commits a prepared decision, with `audit` (the request's audit record as the log
    /// carries it, `audit::logged`) when the answer waits for it: one commit, one fsync. Once
    /// durable the effects follow: commands dispatched in the background, holds waiting for
    /// their time. If the commit fails, the counter, the commands and the holds' room are given
    /// back and nothing follows.
    pub(super) async fn commit_prepared(
        &self,
        prepared: Prepared,
        audit: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let Prepared {
            mark,
            mut entries,
            effects,
            taken,
        } = prepared;
        entries.extend(audit.map(|bytes| Entry {
            kind: EntryKind::Audit,
            bytes,
        }));
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
                Effect::Quarantine(q) if taken.quarantined.contains(&q.entry.reference) => {
                    self.quarantined(*q);
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
        for q in r.quarantined {
            self.anomaly.quarantine.adopt(q);
        }
        self.ledgers.precommands.recover(&r.precommands);
    }

    /// `effect` taken by its store in memory, before its decision's commit; its record (none
    /// for a local command recorded already).
    fn take(&self, effect: &Effect, taken: &mut Taken, now: i64) -> Result<Option<Entry>, Error> {
        let (kind, bytes) = match effect {
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
                (EntryKind::Pending, command.as_bytes().to_vec())
            }
            Effect::Hold(held) => {
                match self.dsp.holds.reserve(held) {
                    Ok(true) => taken.holds.push(held.request_id),
                    // Held already: the same hold; nothing more to keep.
                    Ok(false) => {}
                    Err(HoldError::TooMany(_) | HoldError::TooLarge(_)) => {
                        return Err(Error::HoldsFull)
                    }
                    Err(HoldError::Journal(e)) => {
                        return Err(Error::resource(Resource::HoldJournal, e))
                    }
                }
                (EntryKind::Hold, held.to_record())
            }
            Effect::RememberPreCommand { id, held } => {
                let ledger = &self.ledgers.precommands;
                let record = ledger
                    .issue_in_memory(*id, held.clone(), now)
                    .map_err(issue_error)?;
                taken.issued.push(*id);
                (EntryKind::PreCommand, record)
            }
            Effect::UsePreCommand(id) => {
                let ledger = &self.ledgers.precommands;
                let (value, record) = ledger.take_in_memory(id, now).map_err(use_error)?;
                taken.used.push((*id, value));
                (EntryKind::PreCommandUse, record)
            }
            // Counted in memory when screened; its record rides with the decision.
            Effect::Count(t) => (EntryKind::Count, t.to_record()),
            Effect::Quarantine(q) => {
                self.anomaly.quarantine.reserve(&q.entry).map_err(full)?;
                taken.quarantined.push(q.entry.reference);
                (EntryKind::Quarantine, q.entry.to_record())
            }
            Effect::DeliverLocally { id, record, .. } => {
                let ledger = &self.ledgers.local_commands;
                match ledger.issue_in_memory(*id, record.clone(), now) {
                    Ok(bytes) => {
                        taken.sent_locally.push(*id);
                        (EntryKind::LocalCommand, bytes)
                    }
                    // Recorded already: a held request released again after a crash (a new
                    // request's RequestID is new, anti-replay sees to that). Its message goes
                    // out again; Users' endpoints take duplicates.
                    Err(IssueError::Duplicate) => return Ok(None),
                    Err(e) => return Err(issue_error(e)),
                }
            }
            Effect::LocalCommandAnswered(id) => {
                let ledger = &self.ledgers.local_commands;
                let (value, bytes) = ledger
                    .take_in_memory(id, now)
                    .map_err(super::local::use_error)?;
                taken.answered_locally.push((*id, value));
                (EntryKind::LocalCommand, bytes)
            }
            // Not `logged`: carried out in their own stores before the commit.
            _ => return Err(Error::resource(Resource::ReplayJournal, NotLogged)),
        };
        Ok(Some(Entry { kind, bytes }))
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
        for id in &taken.issued {
            self.ledgers.precommands.unissue(id);
        }
        for (id, value) in &taken.used {
            self.ledgers.precommands.untake(id, value.clone());
        }
        for reference in &taken.quarantined {
            self.anomaly.quarantine.unreserve(*reference);
        }
        for id in &taken.sent_locally {
            self.ledgers.local_commands.unissue(id);
        }
        for (id, value) in &taken.answered_locally {
            self.ledgers.local_commands.untake(id, value.clone());
        }
    }

    /// What a prepared decision that is not committed gives back.
    pub(super) fn give_back_prepared(&self, prepared: Prepared) {
        self.give_back(prepared.mark.as_ref(), &prepared.taken);
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

/// A decision ready for its commit: the counter, the effects' records, the effects, and what
/// their stores took in memory.
#[derive(Default)]
pub(super) struct Prepared {
    mark: Option<Reservation>,
    entries: Vec<Entry>,
    effects: Vec<Effect>,
    taken: Taken,
}

impl Prepared {
    /// The messages the effects put in the outbox before their commit: a quarantine's `AD1`,
    /// a command for local delivery.
    pub(super) fn messages(&self) -> Vec<Outbound> {
        let message = |e: &Effect| match e {
            Effect::Quarantine(q) => Some(q.alert.clone()),
            Effect::DeliverLocally { message, .. } => Some(message.clone()),
            _ => None,
        };
        self.effects.iter().filter_map(message).collect()
    }
}

/// The effects a decision's stores took before its commit.
#[derive(Default)]
struct Taken {
    commands: Vec<SignedCommand>,
    holds: Vec<RequestId>,
    /// Pre-commands issued, and used (with what to put back).
    issued: Vec<RequestId>,
    used: Vec<(RequestId, HeldPreCommand)>,
    /// Quarantines, by reference.
    quarantined: Vec<u64>,
    /// Local commands sent, and answered (with what to put back).
    sent_locally: Vec<RequestId>,
    answered_locally: Vec<(RequestId, LocalCommand)>,
}

/// A quarantine that could not be taken: full (`E68`), or its journal failed.
fn full(e: QuarantineError) -> Error {
    match e {
        QuarantineError::TooMany(_) | QuarantineError::TooLarge(_) => Error::QuarantineFull,
        QuarantineError::Journal(e) => Error::resource(Resource::QuarantineJournal, e),
    }
}

/// An effect handed to the commit that the request log does not carry (a bug: `logged` and
/// `take` disagree); the request is refused rather than its effect lost.
#[derive(Debug, thiserror::Error)]
#[error("an effect the request log does not carry reached its commit")]
struct NotLogged;
