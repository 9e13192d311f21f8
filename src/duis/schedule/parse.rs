//! Reading `sr:CreateSchedule`, `sr:ReadSchedule` and `sr:DeleteSchedule` bodies. The body span
//! comes from the request parser (bounded, free of DOCTYPEs and entities); here it is read once
//! into a small tree, itself bounded, and the tree into a checked [`ScheduleSpec`]. Children are
//! matched by local name, in the schema's order.

use quick_xml::events::Event;
use quick_xml::Reader;
use time::{Date, Month, Time, UtcOffset};

use super::{
    dsp_request_for, ClockTime, Frequency, ScheduleError, ScheduleSelector, ScheduleSpec,
    ScheduledRead, DSP_REQUESTS,
};
use crate::domain::{DeviceId, Srv};

/// Elements below the body element: `CreateSchedule` → `DSPRead…` → `StartDateOffset`.
const MAX_DEPTH: usize = 3;
/// Children of one element (a `DSPSchedule` has at most nine).
const MAX_CHILDREN: usize = 16;
/// Text of one element: a base64 key-agreement certificate is the longest.
const MAX_TEXT: usize = 8 * 1024;

/// One element of the body: its local name, its text, its children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    /// The text of the only child called `name`, if any.
    fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.trim())
    }
}

/// Reads the body element into a tree, within the bounds above.
fn read_tree(body: &[u8]) -> Result<Node, ScheduleError> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if stack.len() > MAX_DEPTH {
                    return Err(ScheduleError::Structure);
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Node {
                    name,
                    ..Node::default()
                });
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let node = Node {
                    name,
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => adopt(parent, node)?,
                    None => return Ok(node),
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|_| ScheduleError::Structure)?;
                let node = stack.last_mut().ok_or(ScheduleError::Structure)?;
                if node.text.len() + text.len() > MAX_TEXT {
                    return Err(ScheduleError::Structure);
                }
                node.text.push_str(&text);
            }
            Ok(Event::End(_)) => {
                let node = stack.pop().ok_or(ScheduleError::Structure)?;
                match stack.last_mut() {
                    Some(parent) => adopt(parent, node)?,
                    None => return Ok(node),
                }
            }
            Ok(Event::Eof) | Err(_) => return Err(ScheduleError::Structure),
            Ok(_) => {}
        }
    }
}

fn adopt(parent: &mut Node, child: Node) -> Result<(), ScheduleError> {
    if parent.children.len() >= MAX_CHILDREN {
        return Err(ScheduleError::Structure);
    }
    parent.children.push(child);
    Ok(())
}

/// Reads a `sr:ReadSchedule` or `sr:DeleteSchedule` body: one `DSPScheduleID` or `DeviceID`.
pub fn parse_schedule_selector(body: &[u8]) -> Result<ScheduleSelector, ScheduleError> {
    let tree = read_tree(body)?;
    let [only] = tree.children.as_slice() else {
        return Err(ScheduleError::Structure);
    };
    if !only.children.is_empty() {
        return Err(ScheduleError::Structure);
    }
    match only.name.as_str() {
        "DSPScheduleID" => only.text.trim().parse().map(ScheduleSelector::Id),
        "DeviceID" => only
            .text
            .trim()
            .parse()
            .map(ScheduleSelector::Device)
            .map_err(|_| ScheduleError::Field("DeviceID")),
        _ => Err(ScheduleError::Structure),
    }
}

/// The names a `DSPSchedule` may hold, in the schema's order (the `DSP…` choice is last).
const ORDER: [&str; 8] = [
    "ScheduleFrequency",
    "ScheduleStartDate",
    "ScheduleEndDate",
    "ScheduleExecutionStartTime",
    "KAPublicSecurityCredential",
    "DSPScheduledServiceReference",
    "DSPScheduledServiceReferenceVariant",
    "DeviceID",
];

/// Reads and checks a `sr:CreateSchedule` body.
pub fn parse_create_schedule(body: &[u8]) -> Result<ScheduleSpec, ScheduleError> {
    let tree = read_tree(body)?;
    let (last, fields) = tree.children.split_last().ok_or(ScheduleError::Structure)?;
    check_order(fields)?;
    let text = |name: &'static str| tree.child_text(name).ok_or(ScheduleError::Field(name));
    let frequency = Frequency::parse(text("ScheduleFrequency")?)
        .ok_or(ScheduleError::Field("ScheduleFrequency"))?;
    let start =
        xs_date(text("ScheduleStartDate")?).ok_or(ScheduleError::Field("ScheduleStartDate"))?;
    let end = optional(&tree, "ScheduleEndDate", xs_date)?;
    let time = optional(&tree, "ScheduleExecutionStartTime", xs_time)?;
    let ka_credential = optional(&tree, "KAPublicSecurityCredential", base64_text)?;
    let srv: Srv = text("DSPScheduledServiceReferenceVariant")?
        .parse()
        .map_err(|_| ScheduleError::Field("DSPScheduledServiceReferenceVariant"))?;
    let reference = text("DSPScheduledServiceReference")?;
    let request = dsp_request_for(srv).ok_or(ScheduleError::NotSchedulable)?;
    if reference != srv.service_reference().to_string() {
        return Err(ScheduleError::Field("DSPScheduledServiceReference"));
    }
    if last.name != request.dsp_element {
        let known = DSP_REQUESTS.iter().any(|r| r.dsp_element == last.name);
        return Err(if known {
            ScheduleError::RequestMismatch
        } else {
            ScheduleError::Structure
        });
    }
    let device: DeviceId = text("DeviceID")?
        .parse()
        .map_err(|_| ScheduleError::Field("DeviceID"))?;
    if end.is_some_and(|end| end < start) {
        return Err(ScheduleError::EndBeforeStart);
    }
    let read = scheduled_read(last, request.kind)?;
    Ok(ScheduleSpec {
        frequency,
        start,
        end,
        time,
        ka_credential,
        srv,
        device,
        read,
    })
}

/// The schedule's fields appear at most once each, in the schema's order, the required ones
/// included.
fn check_order(fields: &[Node]) -> Result<(), ScheduleError> {
    let mut next = 0;
    for f in fields {
        let at = ORDER[next..]
            .iter()
            .position(|n| *n == f.name)
            .ok_or(ScheduleError::Structure)?;
        next += at + 1;
        if !f.children.is_empty() {
            return Err(ScheduleError::Structure);
        }
    }
    let required = [ORDER[0], ORDER[1], ORDER[5], ORDER[6], ORDER[7]];
    if required.iter().all(|r| fields.iter().any(|f| f.name == *r)) {
        Ok(())
    } else {
        Err(ScheduleError::Structure)
    }
}

fn optional<T>(
    tree: &Node,
    name: &'static str,
    read: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ScheduleError> {
    tree.child_text(name)
        .map(|t| read(t).ok_or(ScheduleError::Field(name)))
        .transpose()
}

/// The `DSP…` element's content: a `ReadLogPeriodOffset`, or nothing.
fn scheduled_read(node: &Node, kind: super::BodyKind) -> Result<ScheduledRead, ScheduleError> {
    if matches!(kind, super::BodyKind::Data) {
        return if node.children.is_empty() && node.text.trim().is_empty() {
            Ok(ScheduledRead::Data)
        } else {
            Err(ScheduleError::Structure)
        };
    }
    let names: Vec<&str> = node.children.iter().map(|c| c.name.as_str()).collect();
    if names != ["StartDateOffset", "StartTime", "EndDateOffset", "EndTime"] {
        return Err(ScheduleError::Structure);
    }
    let text = |name: &'static str| node.child_text(name).ok_or(ScheduleError::Field(name));
    let offset = |name: &'static str| {
        text(name)?
            .parse::<i16>()
            .ok()
            .filter(|d| (-400..=0).contains(d))
            .ok_or(ScheduleError::Field(name))
    };
    let clock = |name: &'static str| xs_time(text(name)?).ok_or(ScheduleError::Field(name));
    let (start_offset, start_time) = (offset("StartDateOffset")?, clock("StartTime")?);
    let (end_offset, end_time) = (offset("EndDateOffset")?, clock("EndTime")?);
    let at = |days: i16, t: ClockTime| {
        let utc = t.offset.map_or(0, |o| i64::from(o.whole_seconds()));
        i64::from(days) * 86_400
            + i64::from(t.time.hour()) * 3600
            + i64::from(t.time.minute()) * 60
            + i64::from(t.time.second())
            - utc
    };
    if at(end_offset, end_time) < at(start_offset, start_time) {
        return Err(ScheduleError::PeriodBackwards);
    }
    Ok(ScheduledRead::Log {
        start_offset,
        start_time,
        end_offset,
        end_time,
    })
}

/// An `xs:date` of years 1 to 9999: `2015-01-02`, with an optional zone that is not kept.
pub(super) fn xs_date(s: &str) -> Option<Date> {
    let (date, _zone) = split_zone(s, 10)?;
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = digits(&date[0..4])?.try_into().ok()?;
    let month = Month::try_from(u8::try_from(digits(&date[5..7])?).ok()?).ok()?;
    let day = u8::try_from(digits(&date[8..10])?).ok()?;
    if year == 0 {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

/// An `xs:time`: `hh:mm:ss`, an optional fraction (whole milliseconds are kept), an optional
/// zone (`Z` or `±hh:mm`).
pub(super) fn xs_time(s: &str) -> Option<ClockTime> {
    let (clock, offset) = split_zone(s, 8)?;
    let b = clock.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = u8::try_from(digits(&clock[0..2])?).ok()?;
    let m = u8::try_from(digits(&clock[3..5])?).ok()?;
    let sec = u8::try_from(digits(&clock[6..8])?).ok()?;
    let millis = match &clock[8..] {
        "" => 0,
        f => {
            let frac = f.strip_prefix('.')?;
            if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{frac:0<3}");
            padded[..3].parse::<u16>().ok()?
        }
    };
    let time = Time::from_hms_milli(h, m, sec, millis).ok()?;
    Some(ClockTime { time, offset })
}

/// Splits a trailing zone (`Z`, `+hh:mm`, `-hh:mm`) off `s`, whose zone-less part is at least
/// `min` characters long.
fn split_zone(s: &str, min: usize) -> Option<(&str, Option<UtcOffset>)> {
    if !s.is_ascii() {
        return None;
    }
    if let Some(rest) = s.strip_suffix('Z') {
        return Some((rest, Some(UtcOffset::UTC)));
    }
    if s.len() >= min + 6 {
        let (rest, zone) = s.split_at(s.len() - 6);
        let z = zone.as_bytes();
        if (z[0] == b'+' || z[0] == b'-') && z[3] == b':' {
            let h = i8::try_from(digits(&zone[1..3])?).ok()?;
            let m = i8::try_from(digits(&zone[4..6])?).ok()?;
            let sign = if z[0] == b'-' { -1 } else { 1 };
            if h > 14 || m > 59 {
                return None;
            }
            let offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
            return Some((rest, Some(offset)));
        }
    }
    Some((s, None))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Base64 text (whitespace allowed between characters), kept as sent without the whitespace.
fn base64_text(s: &str) -> Option<String> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .ok()
        .filter(|bytes| !bytes.is_empty())
        .map(|_| compact)
}
