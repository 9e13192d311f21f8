//! What the DCC writes about schedules: the `DSPScheduleID` a 5.1 is answered with, the
//! `DSPSchedulesRead` of a 5.2, the `DSPScheduledMessage` that carries an execution's result, and
//! the request an execution makes (unsigned, for the request parser and the command it becomes).

use base64::Engine as _;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use super::{BodyKind, ClockTime, ScheduleId, ScheduleSpec, ScheduledRead};
use crate::domain::{RequestId, ResponseCode, Srv};
use crate::duis::response::{element, open_with_header};
use crate::duis::{xs_date_time, ResponseHeaderOut, DS_NAMESPACE, RESPONSE_CLOSE, SR_NAMESPACE};

/// The most schedules one `DSPSchedulesRead` holds (the schema's `maxOccurs`).
pub const MAX_SCHEDULES_READ: usize = 99;

/// `<sr:DSPScheduleID>`, for `ResponsePayload::Raw`.
pub fn write_schedule_id(id: ScheduleId) -> String {
    let mut out = String::with_capacity(48);
    element(&mut out, "DSPScheduleID", &id.to_string());
    out
}

/// `<sr:CreateSchedule>` with its own namespace declaration: the schedule as a request would
/// create it, which [`parse_create_schedule`](super::parse_create_schedule) reads back (how the
/// schedule store keeps schedules).
pub fn write_create_schedule(spec: &ScheduleSpec) -> String {
    let mut out = String::with_capacity(800);
    out.push_str(r#"<sr:CreateSchedule xmlns:sr=""#);
    out.push_str(SR_NAMESPACE);
    out.push_str(r#"">"#);
    schedule_details(&mut out, spec);
    out.push_str("</sr:CreateSchedule>");
    out
}

/// `<sr:DSPSchedulesRead>` with the first [`MAX_SCHEDULES_READ`] schedules, for
/// `ResponsePayload::Raw`. The schema wants at least one.
pub fn write_schedules_read(schedules: &[(ScheduleId, &ScheduleSpec)]) -> String {
    let mut out = String::with_capacity(64 + schedules.len() * 700);
    out.push_str("<sr:DSPSchedulesRead>");
    for (id, spec) in schedules.iter().take(MAX_SCHEDULES_READ) {
        out.push_str("<sr:DSPSchedules>");
        element(&mut out, "DSPScheduleID", &id.to_string());
        out.push_str("<sr:DSPScheduleDetails>");
        schedule_details(&mut out, spec);
        out.push_str("</sr:DSPScheduleDetails></sr:DSPSchedules>");
    }
    out.push_str("</sr:DSPSchedulesRead>");
    out
}

/// The children of a `DSPSchedule`, in the schema's order.
fn schedule_details(out: &mut String, spec: &ScheduleSpec) {
    element(out, "ScheduleFrequency", spec.frequency.as_str());
    element(out, "ScheduleStartDate", &xs_date(spec.start));
    if let Some(end) = spec.end {
        element(out, "ScheduleEndDate", &xs_date(end));
    }
    if let Some(t) = spec.time {
        element(out, "ScheduleExecutionStartTime", &xs_time(t));
    }
    if let Some(ka) = &spec.ka_credential {
        element(out, "KAPublicSecurityCredential", ka);
    }
    element(
        out,
        "DSPScheduledServiceReference",
        &spec.srv.service_reference().to_string(),
    );
    element(
        out,
        "DSPScheduledServiceReferenceVariant",
        &spec.srv.to_string(),
    );
    element(out, "DeviceID", &spec.device.to_string());
    let name = spec.request().dsp_element;
    match spec.read {
        ScheduledRead::Data => {
            out.push_str("<sr:");
            out.push_str(name);
            out.push_str("/>");
        }
        ScheduledRead::Log {
            start_offset,
            start_time,
            end_offset,
            end_time,
        } => {
            out.push_str("<sr:");
            out.push_str(name);
            out.push('>');
            element(out, "StartDateOffset", &start_offset.to_string());
            element(out, "StartTime", &xs_time(start_time));
            element(out, "EndDateOffset", &end_offset.to_string());
            element(out, "EndTime", &xs_time(end_time));
            out.push_str("</sr:");
            out.push_str(name);
            out.push('>');
        }
    }
}

/// The `DSPScheduledMessage` that carries one execution's result to the schedule's owner: `I0`,
/// the execution's RequestID and the device's ResponseID, the scheduled variant, the device's GBCS
/// bytes and the schedule's ID.
pub fn write_scheduled_message(
    request_id: &RequestId,
    srv: Srv,
    schedule: ScheduleId,
    payload: &[u8],
    now: OffsetDateTime,
) -> String {
    let header = ResponseHeaderOut {
        request_id: Some(*request_id),
        response_id: Some(request_id.response_id()),
        code: ResponseCode::I0,
        date_time: now,
    };
    let mut out = String::with_capacity(900 + payload.len() * 4 / 3);
    open_with_header(&mut out, &header);
    out.push_str("<sr:Body><sr:ResponseMessage>");
    element(
        &mut out,
        "ServiceReference",
        &srv.service_reference().to_string(),
    );
    element(&mut out, "ServiceReferenceVariant", &srv.to_string());
    out.push_str("<sr:DSPScheduledMessage>");
    element(
        &mut out,
        "GBCSPayload",
        &base64::engine::general_purpose::STANDARD.encode(payload),
    );
    element(&mut out, "DSPScheduleID", &schedule.to_string());
    out.push_str("</sr:DSPScheduledMessage></sr:ResponseMessage></sr:Body>");
    out.push_str(RESPONSE_CLOSE);
    out
}

/// The request execution `request_id` of `spec` makes on `date` (its execution date): Command
/// Variant 1, the scheduled variant's body with a log period counted back from `date`, unsigned.
pub fn scheduled_request(spec: &ScheduleSpec, request_id: &RequestId, date: Date) -> String {
    let request = spec.request();
    let mut out = String::with_capacity(1200);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr=""#);
    out.push_str(SR_NAMESPACE);
    out.push_str(r#"" xmlns:ds=""#);
    out.push_str(DS_NAMESPACE);
    out.push_str(r#"" schemaVersion="5.4"><sr:Header>"#);
    element(&mut out, "RequestID", &request_id.to_string());
    element(&mut out, "CommandVariant", "1");
    element(
        &mut out,
        "ServiceReference",
        &spec.srv.service_reference().to_string(),
    );
    element(&mut out, "ServiceReferenceVariant", &spec.srv.to_string());
    out.push_str("</sr:Header><sr:Body><sr:");
    out.push_str(request.body_element);
    out.push('>');
    if let ScheduledRead::Log {
        start_offset,
        start_time,
        end_offset,
        end_time,
    } = spec.read
    {
        out.push_str("<sr:ReadLogPeriod>");
        element(
            &mut out,
            "StartDateTime",
            &period_end(date, start_offset, start_time),
        );
        element(
            &mut out,
            "EndDateTime",
            &period_end(date, end_offset, end_time),
        );
        out.push_str("</sr:ReadLogPeriod>");
        if let (BodyKind::Log { urp: true }, Some(ka)) = (request.kind, &spec.ka_credential) {
            element(&mut out, "KAPublicSecurityCredentials", ka);
        }
    }
    out.push_str("</sr:");
    out.push_str(request.body_element);
    out.push_str("></sr:Body></sr:Request>");
    out
}

/// `date` plus `offset` days at `t`, as an `xs:dateTime` in UTC.
fn period_end(date: Date, offset: i16, t: ClockTime) -> String {
    let day = date
        .checked_add(Duration::days(i64::from(offset)))
        .unwrap_or(date);
    let at = day
        .with_time(t.time)
        .assume_offset(t.offset.unwrap_or(UtcOffset::UTC));
    xs_date_time(at)
}

fn xs_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `hh:mm:ss`, `.mmm` when there are milliseconds, and the zone when it had one.
fn xs_time(t: ClockTime) -> String {
    let mut s = format!(
        "{:02}:{:02}:{:02}",
        t.time.hour(),
        t.time.minute(),
        t.time.second()
    );
    if t.time.millisecond() != 0 {
        s.push_str(&format!(".{:03}", t.time.millisecond()));
    }
    match t.offset {
        None => {}
        Some(o) if o == UtcOffset::UTC => s.push('Z'),
        Some(o) => {
            let (h, m, _) = o.as_hms();
            let sign = if o.is_negative() { '-' } else { '+' };
            s.push_str(&format!(
                "{sign}{:02}:{:02}",
                h.unsigned_abs(),
                m.unsigned_abs()
            ));
        }
    }
    s
}
