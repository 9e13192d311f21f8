//! A firmware distribution's outcomes: each hub command's outcome is recorded in the
//! distribution (durably) before the command is settled; when the last hub has answered, the
//! originator's final messages go into the outbox in one write — a `FirmwareDistributionFailure`
//! DCC Alert naming the devices behind hubs that did not take the image (if any), then the
//! request's Service Response (`I0`, with the `DSPUpdateFirmwareWarning` of the devices not sent
//! to, if any) — and only then is the distribution recorded as reported. A stop in between
//! reports it again at the next start.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::alerts::{dcc_recipients, DccAlert, DccEvent};
use crate::catalogue::Catalogue;
use crate::dispatch::{DispatchOutcome, Dispatcher};
use crate::domain::ResponseCode;
use crate::duis::outbound::{write_dcc_alert, DccAlertOut};
use crate::duis::services::write_firmware_warning;
use crate::duis::{self, ResponseHeaderOut, ResponsePayload};
use crate::firmware::Distribution;
use crate::outbox::{Outbound, OutboundKind};

use super::{now, Replies};

/// Whether `o` is the outcome of a command the DCC sent for one of its own (non-device)
/// services: today, a firmware distribution's hub command.
pub(super) fn is_distribution(o: &DispatchOutcome) -> bool {
    Catalogue::builtin()
        .get(&o.srv)
        .is_some_and(|e| e.non_device)
}

impl Replies {
    /// Records each hub's outcome in its distribution, reports the distributions that end, and
    /// settles the commands recorded. A command whose outcome could not be recorded stays
    /// pending: it is sent again after a restart.
    pub(super) async fn distributed(
        &mut self,
        dispatcher: &Dispatcher,
        outcomes: Vec<DispatchOutcome>,
    ) {
        let gateway = Arc::clone(&self.gateway);
        let mut settle = Vec::new();
        for o in outcomes {
            let Some(fw) = gateway.firmware() else {
                settle.push(o.request_id);
                continue;
            };
            match fw.hub_done(&o.request_id, o.result.is_ok()).await {
                Ok(finished) => {
                    if let Some(d) = finished {
                        self.report(&d).await;
                    }
                    settle.push(o.request_id);
                }
                Err(e) => {
                    tracing::error!(error = %e, request_id = %o.request_id, "Recording a firmware transfer failed; the hub's command is sent again after a restart.");
                }
            }
        }
        let settled =
            futures_util::future::join_all(settle.iter().map(|id| dispatcher.settle(id))).await;
        for e in settled.into_iter().filter_map(Result::err) {
            tracing::error!(error = %e, "Settling a command failed; it will be answered again after a restart.");
        }
    }

    /// Reports every distribution that ended but was not reported before the last stop.
    pub(super) async fn report_finished(&mut self) {
        let gateway = Arc::clone(&self.gateway);
        let Some(fw) = gateway.firmware() else {
            return;
        };
        for d in fw.finished() {
            self.report(&d).await;
        }
    }

    /// The final messages of `d` into the outbox, then `d` recorded as reported.
    async fn report(&mut self, d: &Distribution) {
        let gateway = Arc::clone(&self.gateway);
        let Some(fw) = gateway.firmware() else {
            return;
        };
        let Some(messages) = self.final_messages(d) else {
            // Not signed, so not sent: reported at the next start.
            return;
        };
        self.enqueue(messages).await;
        if let Err(e) = fw.reported(&d.request_id).await {
            tracing::error!(error = %e, request_id = %d.request_id, "Recording a firmware distribution as reported failed; it is reported again after a restart.");
        }
    }

    /// The alert (if any device was not reached) and the Service Response, signed.
    fn final_messages(&mut self, d: &Distribution) -> Option<Vec<Outbound>> {
        let at = now();
        let mut out = Vec::new();
        let undelivered = d.undelivered();
        if !undelivered.is_empty() {
            out.push(self.failure_alert(d, undelivered, at)?);
        }
        let payload = match d.warning.is_empty() {
            true => ResponsePayload::None,
            false => ResponsePayload::Raw(write_firmware_warning(&d.warning, d.ppmid())),
        };
        let header = ResponseHeaderOut {
            request_id: Some(d.request_id),
            response_id: None,
            code: ResponseCode::I0,
            date_time: at,
        };
        let xml = duis::write_response(&header, d.srv.service_reference(), d.srv, &payload);
        out.push(Outbound {
            id: self.outbox.next_id(),
            user: d.request_id.originator,
            kind: OutboundKind::Response {
                request_id: d.request_id,
                code: ResponseCode::I0,
            },
            body: self.sign(&xml)?,
            raised_at: at.unix_timestamp().saturating_mul(1000),
        });
        Some(out)
    }

    /// `FirmwareDistributionFailure` to the originator, naming `devices`.
    fn failure_alert(
        &mut self,
        d: &Distribution,
        devices: Vec<crate::domain::DeviceId>,
        at: OffsetDateTime,
    ) -> Option<Outbound> {
        let alert = DccAlert {
            id: self.alert_id(),
            event: DccEvent::FirmwareDistributionFailure {
                request_id: d.request_id,
                devices,
            },
            at: at.unix_timestamp(),
        };
        let (recipients, body) = match dcc_recipients(&alert, &self.gateway.registry()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "A firmware distribution's DCC Alert cannot be written.");
                return None;
            }
        };
        let code = alert.event.code();
        let user = recipients.first()?.user;
        let xml = write_dcc_alert(
            &DccAlertOut {
                user,
                counter: alert.id,
                request_id: alert.event.request_id(),
                code,
                throttled: None,
                body: &body,
            },
            at,
        );
        self.received("dcc");
        let body = self.sign(&xml)?;
        self.gateway
            .metrics()
            .alerts
            .sent
            .with_label_values(&["dcc"])
            .inc();
        Some(Outbound {
            id: self.outbox.next_id(),
            user,
            kind: OutboundKind::DccAlert { code },
            body,
            raised_at: alert.at.saturating_mul(1000),
        })
    }
}
