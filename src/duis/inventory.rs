//! Service Reference Variant 8.2 Read Inventory: the search a `sr:ReadInventory` body asks for,
//! and the `sr:DSPInventory` the DCC answers with (XSD `ReadInventory`, `DSPInventory`, `Device`).
//! Layer 0: the caller looks the devices up and hands them in.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::escape::escape;
use crate::domain::{DeviceId, DeviceStatus, DeviceType, Mpxn};

/// The most devices one `DSPInventory` holds (the schema's `maxOccurs`): a comms hub and the
/// sixteen devices its HAN device log can hold.
pub const MAX_INVENTORY_DEVICES: usize = 17;

/// What an 8.2 request searches by (the schema's choice of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryQuery {
    Device(DeviceId),
    Mpxn(Mpxn),
    /// A UPRN or a post code and address: the registration cache holds no addresses.
    Address,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("the ReadInventory body is not one DeviceID, MPxN, UPRN or PropertyFilter")]
    Structure,
    #[error("the ReadInventory DeviceID is not an EUI-64")]
    DeviceId,
    #[error("the ReadInventory MPxN is not an MPAN or MPRN")]
    Mpxn,
}

/// Reads the search from the `sr:ReadInventory` element (`body`: its bytes, start tag to end
/// tag, as the request parser located them — already bounded and free of DOCTYPEs and
/// entities). Children are matched by local name.
pub fn parse_read_inventory(body: &[u8]) -> Result<InventoryQuery, InventoryError> {
    let mut reader = Reader::from_reader(body);
    let mut depth = 0usize;
    let mut field: Option<Vec<u8>> = None;
    let mut text = String::new();
    let mut query = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let local = e.local_name().as_ref().to_vec();
                match depth {
                    1 if local == b"ReadInventory" => {}
                    2 if query.is_none() && field.is_none() => {
                        field = Some(local);
                        text.clear();
                    }
                    // Inside a PropertyFilter: its parts are not read.
                    3.. if field.as_deref() == Some(&b"PropertyFilter"[..]) => {}
                    _ => return Err(InventoryError::Structure),
                }
            }
            Ok(Event::Empty(_))
                if depth >= 2 && field.as_deref() == Some(&b"PropertyFilter"[..]) => {}
            Ok(Event::Empty(_)) => return Err(InventoryError::Structure),
            Ok(Event::Text(t)) if depth == 2 => {
                let part = t.unescape().map_err(|_| InventoryError::Structure)?;
                text.push_str(&part);
            }
            Ok(Event::End(_)) => {
                if depth == 2 {
                    let name = field.take().ok_or(InventoryError::Structure)?;
                    query = Some(read_field(&name, text.trim())?);
                }
                depth = depth.checked_sub(1).ok_or(InventoryError::Structure)?;
                if depth == 0 {
                    return query.ok_or(InventoryError::Structure);
                }
            }
            Ok(Event::Eof) | Err(_) => return Err(InventoryError::Structure),
            Ok(_) => {}
        }
    }
}

fn read_field(name: &[u8], text: &str) -> Result<InventoryQuery, InventoryError> {
    match name {
        b"DeviceID" => text
            .parse()
            .map(InventoryQuery::Device)
            .map_err(|_| InventoryError::DeviceId),
        b"MPxN" => text
            .parse()
            .map(InventoryQuery::Mpxn)
            .map_err(|_| InventoryError::Mpxn),
        b"UPRN" | b"PropertyFilter" => Ok(InventoryQuery::Address),
        _ => Err(InventoryError::Structure),
    }
}

/// One `sr:Device` of the answer.
#[derive(Clone, Copy, Debug)]
pub struct InventoryDevice<'a> {
    pub id: DeviceId,
    pub device_type: DeviceType,
    pub status: DeviceStatus,
    /// Empty when not known (the schema requires the element, not a value).
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub mpxn: Option<Mpxn>,
    /// The schema's `CSPRegion` value (`North`, `Central`, `South`).
    pub csp_region: Option<&'a str>,
}

/// Writes `<sr:DSPInventory>` with the first [`MAX_INVENTORY_DEVICES`] of `devices`, in the
/// schema's element order, for `ResponsePayload::Raw`.
pub fn write_dsp_inventory(devices: &[InventoryDevice<'_>]) -> String {
    let mut out = String::with_capacity(64 + devices.len() * 320);
    out.push_str("<sr:DSPInventory>");
    for d in devices.iter().take(MAX_INVENTORY_DEVICES) {
        out.push_str("<sr:Device>");
        element(&mut out, "DeviceID", &d.id.to_string());
        element(&mut out, "DeviceType", d.device_type.as_str());
        element(&mut out, "DeviceStatus", d.status.as_str());
        element(&mut out, "DeviceManufacturer", d.manufacturer);
        element(&mut out, "DeviceModel", d.model);
        if let Some(m) = d.mpxn {
            element(&mut out, "ImportMPxN", &m.to_string());
        }
        if let Some(region) = d.csp_region {
            element(&mut out, "CSPRegion", region);
        }
        out.push_str("</sr:Device>");
    }
    out.push_str("</sr:DSPInventory>");
    out
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str("<sr:");
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</sr:");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(inner: &str) -> String {
        format!("<sr:ReadInventory>{inner}</sr:ReadInventory>")
    }

    #[test]
    fn reads_each_search() {
        let device: DeviceId = "00-DB-12-34-56-78-90-A2".parse().unwrap();
        let table: &[(&str, Result<InventoryQuery, InventoryError>)] = &[
            (
                "<sr:DeviceID>00-db-12-34-56-78-90-a2</sr:DeviceID>",
                Ok(InventoryQuery::Device(device)),
            ),
            (
                "\n  <sr:DeviceID> 00-DB-12-34-56-78-90-A2 </sr:DeviceID>\n",
                Ok(InventoryQuery::Device(device)),
            ),
            (
                "<sr:MPxN>1200023305967</sr:MPxN>",
                Ok(InventoryQuery::Mpxn(Mpxn::Mpan(1_200_023_305_967))),
            ),
            (
                "<sr:MPxN>3453612</sr:MPxN>",
                Ok(InventoryQuery::Mpxn(Mpxn::Mprn(3_453_612))),
            ),
            ("<sr:UPRN>123456</sr:UPRN>", Ok(InventoryQuery::Address)),
            (
                "<sr:PropertyFilter><sr:PostCode>AB1 2CD</sr:PostCode>\
                 <sr:AddressIdentifier>1</sr:AddressIdentifier></sr:PropertyFilter>",
                Ok(InventoryQuery::Address),
            ),
            (
                "<sr:DeviceID>00-DB-12</sr:DeviceID>",
                Err(InventoryError::DeviceId),
            ),
            ("<sr:MPxN>12345</sr:MPxN>", Err(InventoryError::Mpxn)),
            ("", Err(InventoryError::Structure)),
            ("<sr:DeviceID/>", Err(InventoryError::Structure)),
            ("<sr:Other>1</sr:Other>", Err(InventoryError::Structure)),
            (
                "<sr:MPxN>3453612</sr:MPxN><sr:MPxN>3453612</sr:MPxN>",
                Err(InventoryError::Structure),
            ),
            (
                "<sr:DeviceID><sr:x/>00-DB-12-34-56-78-90-A2</sr:DeviceID>",
                Err(InventoryError::Structure),
            ),
        ];
        for (inner, want) in table {
            assert_eq!(
                parse_read_inventory(body(inner).as_bytes()),
                *want,
                "{inner}"
            );
        }
        assert_eq!(
            parse_read_inventory(b"<sr:ReadInventory/>"),
            Err(InventoryError::Structure)
        );
        assert_eq!(
            parse_read_inventory(b"<sr:Other><sr:UPRN>1</sr:UPRN></sr:Other>"),
            Err(InventoryError::Structure)
        );
    }

    fn device(id: &str, manufacturer: &'static str) -> InventoryDevice<'static> {
        InventoryDevice {
            id: id.parse().unwrap(),
            device_type: DeviceType::Esme,
            status: DeviceStatus::Commissioned,
            manufacturer,
            model: "M<1>",
            mpxn: Some(Mpxn::Mpan(1_200_023_305_967)),
            csp_region: Some("North"),
        }
    }

    #[test]
    fn writes_devices_in_schema_order_escaped_and_bounded() {
        let xml = write_dsp_inventory(&[device("00-DB-12-34-56-78-90-A0", "A & B")]);
        assert_eq!(
            xml,
            "<sr:DSPInventory><sr:Device><sr:DeviceID>00-DB-12-34-56-78-90-A0</sr:DeviceID>\
             <sr:DeviceType>ESME</sr:DeviceType><sr:DeviceStatus>Commissioned</sr:DeviceStatus>\
             <sr:DeviceManufacturer>A &amp; B</sr:DeviceManufacturer>\
             <sr:DeviceModel>M&lt;1&gt;</sr:DeviceModel><sr:ImportMPxN>1200023305967</sr:ImportMPxN>\
             <sr:CSPRegion>North</sr:CSPRegion></sr:Device></sr:DSPInventory>"
        );
        let many = vec![device("00-DB-12-34-56-78-90-A0", ""); 20];
        let xml = write_dsp_inventory(&many);
        assert_eq!(xml.matches("<sr:Device>").count(), MAX_INVENTORY_DEVICES);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(inner in ".{0,200}") {
            let _ = parse_read_inventory(body(&inner).as_bytes());
            let _ = parse_read_inventory(inner.as_bytes());
        }
    }
}
