use time::macros::{date, datetime, time};
use time::UtcOffset;

use super::parse::{xs_date, xs_time};
use super::*;
use crate::catalogue::Catalogue;
use crate::domain::RequestId;
use crate::duis::testing::DuisXsd;
use crate::duis::{parse_request, Limits, ResponsePayload};

const ESME: &str = "00-DB-12-34-56-78-90-A0";

/// The body element of a request: from `<sr:{name}` to its end tag.
fn body_of<'a>(xml: &'a str, name: &str) -> &'a [u8] {
    let start = xml.find(&format!("<sr:{name}")).unwrap();
    let close = format!("</sr:{name}>");
    let end = xml.find(&close).unwrap() + close.len();
    &xml.as_bytes()[start..end]
}

fn create(inner: &str) -> String {
    format!(
        r#"<sr:CreateSchedule xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">{inner}</sr:CreateSchedule>"#
    )
}

fn daily_read_log(extra: &str) -> String {
    create(&format!(
        "<sr:ScheduleFrequency>Daily</sr:ScheduleFrequency>\
         <sr:ScheduleStartDate>2015-01-02</sr:ScheduleStartDate>{extra}\
         <sr:DSPScheduledServiceReference>4.6</sr:DSPScheduledServiceReference>\
         <sr:DSPScheduledServiceReferenceVariant>4.6.1</sr:DSPScheduledServiceReferenceVariant>\
         <sr:DeviceID>{ESME}</sr:DeviceID>\
         <sr:DSPRetrieveImportDailyReadLog><sr:StartDateOffset>-1</sr:StartDateOffset>\
         <sr:StartTime>00:00:00.00Z</sr:StartTime><sr:EndDateOffset>0</sr:EndDateOffset>\
         <sr:EndTime>00:00:00.00Z</sr:EndTime></sr:DSPRetrieveImportDailyReadLog>"
    ))
}

fn spec(frequency: Frequency, start: time::Date, end: Option<time::Date>) -> ScheduleSpec {
    ScheduleSpec {
        frequency,
        start,
        end,
        time: Some(ClockTime {
            time: time!(06:30),
            offset: None,
        }),
        ka_credential: None,
        srv: "4.12.1".parse().unwrap(),
        device: ESME.parse().unwrap(),
        read: ScheduledRead::Data,
    }
}

#[test]
fn the_public_create_schedule_template_reads_as_its_fields() {
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let path = anchors.join("duis-samples/templates/ECS21a_5.1._DCC_SCHEDULED_REQUEST_DUIS.XML");
    let xml = std::fs::read_to_string(path).unwrap();
    let spec = parse_create_schedule(body_of(&xml, "CreateSchedule")).unwrap();
    assert_eq!(spec.frequency, Frequency::Daily);
    assert_eq!(spec.start, date!(2015 - 01 - 02));
    assert_eq!(spec.end, None);
    assert_eq!(spec.time, None);
    assert_eq!(spec.srv.to_string(), "4.6.1");
    assert_eq!(spec.device.to_string(), ESME);
    let midnight = ClockTime {
        time: time!(00:00),
        offset: Some(UtcOffset::UTC),
    };
    assert_eq!(
        spec.read,
        ScheduledRead::Log {
            start_offset: -1,
            start_time: midnight,
            end_offset: 0,
            end_time: midnight,
        }
    );
    let read = anchors.join("duis-samples/templates/5.2_READ_SCHEDULE_REQUEST_DUIS.XML");
    let xml = std::fs::read_to_string(read).unwrap();
    assert_eq!(
        parse_schedule_selector(body_of(&xml, "ReadSchedule")),
        Ok(ScheduleSelector::Id(ScheduleId::try_from(123).unwrap()))
    );
}

#[test]
fn schedule_bodies_the_schema_or_the_table_refuse_are_refused() {
    let ok = daily_read_log("");
    assert!(parse_create_schedule(ok.as_bytes()).is_ok());
    let cases: Vec<(String, ScheduleError)> = vec![
        (ok.replace(">Daily<", ">Hourly<"), ScheduleError::Field("ScheduleFrequency")),
        (ok.replace("2015-01-02", "2015-02-30"), ScheduleError::Field("ScheduleStartDate")),
        (
            daily_read_log("<sr:ScheduleEndDate>2015-01-01</sr:ScheduleEndDate>"),
            ScheduleError::EndBeforeStart,
        ),
        // The end date before the start date's place in the order.
        (
            ok.replace(
                "<sr:ScheduleStartDate>2015-01-02</sr:ScheduleStartDate>",
                "<sr:ScheduleEndDate>2016-01-01</sr:ScheduleEndDate><sr:ScheduleStartDate>2015-01-02</sr:ScheduleStartDate>",
            ),
            ScheduleError::Structure,
        ),
        (ok.replace(">4.6.1<", ">4.6.2<"), ScheduleError::RequestMismatch),
        (ok.replace(">4.6.1<", ">4.1.1<"), ScheduleError::NotSchedulable),
        (ok.replace(">4.6<", ">4.8<"), ScheduleError::Field("DSPScheduledServiceReference")),
        (ok.replace(ESME, "00-DB-12"), ScheduleError::Field("DeviceID")),
        (ok.replace(">-1<", ">-401<"), ScheduleError::Field("StartDateOffset")),
        (ok.replace(">-1<", ">1<"), ScheduleError::Field("StartDateOffset")),
        (
            ok.replace("<sr:StartDateOffset>-1<", "<sr:StartDateOffset>0<")
                .replace("<sr:EndDateOffset>0<", "<sr:EndDateOffset>-2<"),
            ScheduleError::PeriodBackwards,
        ),
        (ok.replace("<sr:DeviceID>", "<sr:DeviceID><sr:X/>"), ScheduleError::Structure),
        (
            ok.replace("DSPRetrieveImportDailyReadLog", "DSPSomethingElse"),
            ScheduleError::Structure,
        ),
        (create(""), ScheduleError::Structure),
    ];
    for (body, want) in cases {
        assert_eq!(parse_create_schedule(body.as_bytes()), Err(want), "{body}");
    }
    // A data read carries no period.
    let data = ok.replace(">4.6<", ">4.12<").replace(">4.6.1<", ">4.12.1<");
    let start = data.find("<sr:DSPRetrieveImportDailyReadLog>").unwrap();
    let data = format!(
        "{}<sr:DSPReadMaximumDemandImportRegisters/></sr:CreateSchedule>",
        &data[..start]
    );
    assert_eq!(
        parse_create_schedule(data.as_bytes()).map(|s| s.read),
        Ok(ScheduledRead::Data)
    );
}

#[test]
fn selectors_are_one_id_or_one_device() {
    let sel = |inner: &str| {
        parse_schedule_selector(
            format!("<sr:DeleteSchedule xmlns:sr=\"x\">{inner}</sr:DeleteSchedule>").as_bytes(),
        )
    };
    assert_eq!(
        sel("<sr:DSPScheduleID>+0007</sr:DSPScheduleID>"),
        Ok(ScheduleSelector::Id(ScheduleId::try_from(7).unwrap()))
    );
    assert_eq!(
        sel(&format!("<sr:DeviceID>{ESME}</sr:DeviceID>")),
        Ok(ScheduleSelector::Device(ESME.parse().unwrap()))
    );
    assert_eq!(
        sel("<sr:DSPScheduleID>1000000000001</sr:DSPScheduleID>"),
        Err(ScheduleError::ScheduleId)
    );
    assert_eq!(sel(""), Err(ScheduleError::Structure));
    assert_eq!(
        sel("<sr:DSPScheduleID>1</sr:DSPScheduleID><sr:DSPScheduleID>2</sr:DSPScheduleID>"),
        Err(ScheduleError::Structure)
    );
}

#[test]
fn xs_dates_and_times_read_as_the_schema_writes_them() {
    assert_eq!(xs_date("2024-02-29"), Some(date!(2024 - 02 - 29)));
    assert_eq!(xs_date("2024-02-29Z"), Some(date!(2024 - 02 - 29)));
    assert_eq!(xs_date("2024-02-29+01:00"), Some(date!(2024 - 02 - 29)));
    for bad in [
        "2023-02-29",
        "0000-01-01",
        "24-02-29",
        "2024-2-29",
        "2024-02-29+15:00",
        "",
    ] {
        assert_eq!(xs_date(bad), None, "{bad}");
    }
    let t = xs_time("23:59:58.1234-05:30").unwrap();
    assert_eq!(t.time, time!(23:59:58.123));
    assert_eq!(t.offset, Some(UtcOffset::from_hms(-5, -30, 0).unwrap()));
    assert_eq!(xs_time("07:00:00").map(|t| t.offset), Some(None));
    for bad in ["24:00:00", "7:00:00", "07:00", "07:00:00.", "07:00:00+1:00"] {
        assert_eq!(xs_time(bad), None, "{bad}");
    }
}

#[test]
fn executions_follow_the_frequency_from_the_start_date() {
    let day = 86_400;
    let daily = spec(
        Frequency::Daily,
        date!(2026 - 01 - 30),
        Some(date!(2026 - 02 - 02)),
    );
    let first = datetime!(2026-01-30 06:30 UTC).unix_timestamp();
    let times: Vec<_> = (0..5).map(|k| daily.execution_time(k, day)).collect();
    assert_eq!(
        times,
        [
            Some(first),
            Some(first + day),
            Some(first + 2 * day),
            Some(first + 3 * day),
            None
        ]
    );
    // Monthly on the 31st: the month's last day when it is shorter.
    let monthly = spec(Frequency::Monthly, date!(2026 - 01 - 31), None);
    let dates: Vec<_> = (0..4).map(|k| monthly.execution_date(k).unwrap()).collect();
    assert_eq!(
        dates,
        [
            date!(2026 - 01 - 31),
            date!(2026 - 02 - 28),
            date!(2026 - 03 - 31),
            date!(2026 - 04 - 30)
        ]
    );
    let yearly = spec(Frequency::Yearly, date!(2024 - 02 - 29), None);
    assert_eq!(yearly.execution_date(1), Some(date!(2025 - 02 - 28)));
    let half = spec(Frequency::HalfYearly, date!(2026 - 08 - 31), None);
    assert_eq!(half.execution_date(1), Some(date!(2027 - 02 - 28)));
    let quarterly = spec(Frequency::Quarterly, date!(2026 - 11 - 15), None);
    assert_eq!(quarterly.execution_date(2), Some(date!(2027 - 05 - 15)));
    let weekly = spec(Frequency::Weekly, date!(2026 - 01 - 01), None);
    assert_eq!(weekly.execution_date(2), Some(date!(2026 - 01 - 15)));
    assert_eq!(weekly.execution_date(MAX_EXECUTIONS), None);
}

#[test]
fn the_first_execution_from_a_time_is_the_earliest_not_before_it() {
    for frequency in [
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Quarterly,
        Frequency::HalfYearly,
        Frequency::Yearly,
    ] {
        let s = spec(frequency, date!(2015 - 01 - 31), None);
        for day_secs in [86_400, 2] {
            let t0 = s.execution_time(0, day_secs).unwrap();
            assert_eq!(s.first_execution_from(t0 - 100, day_secs), Some(0));
            assert_eq!(s.first_execution_from(t0, day_secs), Some(0));
            for t in [t0 + 1, t0 + 1_000, t0 + 4_630 * day_secs + 7] {
                let k = s.first_execution_from(t, day_secs).unwrap();
                assert!(s.execution_time(k, day_secs).unwrap() >= t, "{frequency:?}");
                assert!(
                    s.execution_time(k - 1, day_secs).unwrap() < t,
                    "{frequency:?}"
                );
            }
        }
    }
    // Nothing left after the end date.
    let ended = spec(
        Frequency::Daily,
        date!(2015 - 01 - 31),
        Some(date!(2015 - 02 - 01)),
    );
    let late = datetime!(2015-02-02 00:00 UTC).unix_timestamp();
    assert_eq!(ended.first_execution_from(late, 86_400), None);
}

#[test]
fn an_executions_request_counts_its_period_back_from_the_execution_date() {
    let ok = daily_read_log(
        "<sr:ScheduleExecutionStartTime>01:00:00+01:00</sr:ScheduleExecutionStartTime>\
         <sr:KAPublicSecurityCredential>AAEC</sr:KAPublicSecurityCredential>",
    );
    let spec = parse_create_schedule(ok.as_bytes()).unwrap();
    // 01:00+01:00 is midnight UTC.
    assert_eq!(
        spec.execution_time(0, 86_400),
        Some(datetime!(2015-01-02 00:00 UTC).unix_timestamp())
    );
    let id: RequestId = format!("90-B3-D5-1F-30-01-00-00:{ESME}:9223372036854775809")
        .parse()
        .unwrap();
    let xml = scheduled_request(&spec, &id, date!(2026 - 03 - 01));
    assert!(xml.contains(
        "<sr:ReadLogPeriod><sr:StartDateTime>2026-02-28T00:00:00.000Z</sr:StartDateTime>\
         <sr:EndDateTime>2026-03-01T00:00:00.000Z</sr:EndDateTime></sr:ReadLogPeriod>\
         <sr:KAPublicSecurityCredentials>AAEC</sr:KAPublicSecurityCredentials>"
    ));
    // The one request parser reads it as the scheduled variant's request.
    let parsed = parse_request(xml.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed.header.request_id, id);
    assert_eq!(parsed.header.srv, spec.srv);
    assert_eq!(parsed.header.command_variant.get(), 1);
    assert!(parsed.signature.is_none());
}

#[test]
fn the_table_names_what_the_catalogue_and_the_schema_name() {
    let catalogue = Catalogue::builtin();
    for row in DSP_REQUESTS {
        let srv = row.srv.parse().unwrap();
        let entry = catalogue.get(&srv).unwrap();
        assert_eq!(entry.body_element, row.body_element, "{}", row.srv);
        assert!(!entry.non_device && entry.command_variants.iter().any(|c| c.get() == 1));
        assert_eq!(dsp_request_for(srv), Some(&row));
    }
    let Some(anchors) = crate::testing::anchors() else {
        return;
    };
    let xsd =
        std::fs::read_to_string(anchors.join("schemas/duis-5.4/DUIS Schema V5.4.xsd")).unwrap();
    for row in DSP_REQUESTS {
        assert!(
            xsd.contains(&format!("name=\"{}\"", row.dsp_element)),
            "{}",
            row.dsp_element
        );
        assert!(xsd.contains(&format!("<xs:enumeration value=\"{}\"/>", row.srv)));
    }
}

/// Every document the writers make about schedules, each a whole `sr:Request` or `sr:Response`.
fn written() -> Vec<String> {
    let now = datetime!(2026-03-01 06:30:00.250 UTC);
    let log = parse_create_schedule(
        daily_read_log(
            "<sr:ScheduleEndDate>2027-01-01</sr:ScheduleEndDate>\
             <sr:ScheduleExecutionStartTime>01:00:00.5-05:00</sr:ScheduleExecutionStartTime>\
             <sr:KAPublicSecurityCredential>AAEC</sr:KAPublicSecurityCredential>",
        )
        .as_bytes(),
    )
    .unwrap();
    let data = spec(Frequency::Weekly, date!(2026 - 01 - 01), None);
    let (a, b) = (
        ScheduleId::try_from(1).unwrap(),
        ScheduleId::try_from(ScheduleId::MAX).unwrap(),
    );
    let id: RequestId = format!("90-B3-D5-1F-30-01-00-00:{ESME}:9223372036854775809")
        .parse()
        .unwrap();
    let response = |srv: &str, payload: ResponsePayload| {
        let header = crate::duis::ResponseHeaderOut {
            request_id: Some(id),
            response_id: None,
            code: crate::domain::ResponseCode::I0,
            date_time: now,
        };
        let srv: crate::domain::Srv = srv.parse().unwrap();
        crate::duis::write_response(&header, srv.service_reference(), srv, &payload)
    };
    let mut docs = vec![
        response("5.1", ResponsePayload::Raw(write_schedule_id(b))),
        response(
            "5.2",
            ResponsePayload::Raw(write_schedules_read(&[(a, &log), (b, &data)])),
        ),
        write_scheduled_message(&id, log.srv, a, &[0xDF, 0x09, 0], now),
    ];
    for row in DSP_REQUESTS {
        let mut s = if matches!(row.kind, BodyKind::Data) {
            data.clone()
        } else {
            log.clone()
        };
        s.srv = row.srv.parse().unwrap();
        docs.push(scheduled_request(&s, &id, date!(2026 - 03 - 01)));
        docs.push(response(
            "5.2",
            ResponsePayload::Raw(write_schedules_read(&[(a, &s)])),
        ));
    }
    docs
}

#[test]
fn what_is_written_about_schedules_is_valid_duis() {
    let Some(xsd) = DuisXsd::prepare() else {
        return;
    };
    let docs = written();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    if let Err(report) = xsd.validate_all(&refs) {
        panic!("xmllint refused a written message:\n{report}");
    }
    // The oracle is live: a schedule ID above the schema's bound is refused.
    let bad = docs[0].replace(">1000000000000<", ">1000000000001<");
    assert!(xsd.validate(&bad).is_err());
}

#[test]
fn a_read_schedule_gives_back_what_was_created() {
    let body = daily_read_log(
        "<sr:ScheduleEndDate>2027-01-01</sr:ScheduleEndDate>\
         <sr:ScheduleExecutionStartTime>01:00:00.5-05:00</sr:ScheduleExecutionStartTime>",
    );
    let spec = parse_create_schedule(body.as_bytes()).unwrap();
    let read = write_schedules_read(&[(ScheduleId::try_from(5).unwrap(), &spec)]);
    let details = read
        .split("<sr:DSPScheduleDetails>")
        .nth(1)
        .unwrap()
        .split("</sr:DSPScheduleDetails>")
        .next()
        .unwrap();
    let again = parse_create_schedule(create(details).as_bytes()).unwrap();
    assert_eq!(again, spec);
    let stored = write_create_schedule(&spec);
    assert_eq!(parse_create_schedule(stored.as_bytes()), Ok(spec));
}

#[test]
fn an_executions_request_id_names_its_schedule_and_number() {
    let owner: crate::domain::UserId = "90-B3-D5-1F-30-01-00-00".parse().unwrap();
    let device = ESME.parse().unwrap();
    for (id, k) in [(0, 0), (1, 2), (ScheduleId::MAX, (1 << 22) - 1)] {
        let id = ScheduleId::try_from(id).unwrap();
        let rid = execution_request_id(owner, device, id, k);
        assert_eq!((rid.originator, rid.target), (owner, device));
        assert_eq!(execution_of(&rid), Some((id, k)));
    }
    // A User's own counter (milliseconds since 1970, say) names none.
    let own: RequestId = format!("90-B3-D5-1F-30-01-00-00:{ESME}:1767225600000")
        .parse()
        .unwrap();
    assert_eq!(execution_of(&own), None);
    // A top-bit counter past the largest schedule ID names none either.
    let past = RequestId {
        counter: u64::MAX,
        ..own
    };
    assert_eq!(execution_of(&past), None);
}
