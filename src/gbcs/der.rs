//! ASN.1, the encoding the security use cases (CS02b and the other CS use cases) carry: the few
//! types their content uses, written as DER except for one rule the public samples follow
//! throughout: a length of 128 or more is always written in two octets (`82 00 C4`, where DER
//! would write `81 C4`).

/// Appends an ASN.1 length: one octet below 128, else `0x82` and two octets. Callers keep it
/// within `0xFFFF` (content is bounded by [`super::MAX_FRAME_LEN`]).
fn put_length(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len <= 0xFFFF);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn put_counted(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const ENUMERATED: u8 = 0x0A;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const SEQUENCE: u8 = 0x30;

/// A tag and its content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    put_counted(&mut out, content);
    out
}

/// A constructed value (a SEQUENCE, or a context tag `0xA0 | n`) of the encoded `parts`.
pub fn constructed(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let len = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(len + 4);
    out.push(tag);
    put_length(&mut out, len);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    constructed(SEQUENCE, parts)
}

/// The content octets of a non-negative INTEGER: big-endian, shortest, with a leading zero when
/// the top bit would read as a sign.
pub fn unsigned_content(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut out = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[first..]);
    out
}

/// An INTEGER (or, with another tag, an ENUMERATED or an implicitly tagged integer).
pub fn integer_with_tag(tag: u8, value: u64) -> Vec<u8> {
    tlv(tag, &unsigned_content(value))
}

pub fn integer(value: u64) -> Vec<u8> {
    integer_with_tag(INTEGER, value)
}

pub fn enumerated(value: u64) -> Vec<u8> {
    integer_with_tag(ENUMERATED, value)
}

pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, bytes)
}

pub fn null() -> Vec<u8> {
    vec![NULL, 0]
}

/// A named-bit BIT STRING of at most eight bits, `bits` with bit 0 as the top bit of the octet;
/// DER drops the trailing zero bits.
pub fn named_bits(bits: u8) -> Vec<u8> {
    if bits == 0 {
        return vec![BIT_STRING, 1, 0];
    }
    vec![BIT_STRING, 2, bits.trailing_zeros() as u8, bits]
}

/// A GeneralizedTime `YYYYMMDDHHMMSSZ` of a UTC instant (seconds; no fraction).
pub fn generalized_time(at: time::OffsetDateTime) -> Vec<u8> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        at.year().clamp(0, 9999),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    tlv(GENERALIZED_TIME, text.as_bytes())
}
