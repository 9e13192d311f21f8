//! XML character and entity references: the strict reading the parser allows (the five predefined
//! entities and character references, nothing else) and the escaping the writer uses.

use std::borrow::Cow;

/// Why a `&` in a text node or attribute value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefError {
    /// `&name;` with a name other than `lt`, `gt`, `amp`, `apos`, `quot`.
    Entity,
    /// A bare `&`, or a character reference to something that is not an XML character.
    Malformed,
}

/// Replaces the references in `raw` by the characters they stand for; refuses any other entity.
pub(super) fn unescape(raw: &str) -> Result<Cow<'_, str>, RefError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let (c, used) = reference(after.as_bytes())?;
        out.push(c);
        // `used` ends just after an ASCII `;`, so it is a character boundary.
        rest = after.get(used..).ok_or(RefError::Malformed)?;
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Reads one reference after its `&`: the character, and the bytes used including the `;`.
fn reference(after: &[u8]) -> Result<(char, usize), RefError> {
    if let Some(num) = after.strip_prefix(b"#") {
        let (digits, radix) = match num.strip_prefix(b"x") {
            Some(hex) => (hex, 16),
            None => (num, 10),
        };
        let len = digits
            .iter()
            .take_while(|b| (**b as char).is_digit(radix))
            .count();
        if len == 0 || digits.get(len) != Some(&b';') {
            return Err(RefError::Malformed);
        }
        let mut value: u32 = 0;
        for d in &digits[..len] {
            let digit = (*d as char).to_digit(radix).ok_or(RefError::Malformed)?;
            value = value
                .checked_mul(radix)
                .and_then(|v| v.checked_add(digit))
                .ok_or(RefError::Malformed)?;
        }
        let c = char::from_u32(value)
            .filter(|c| is_xml_char(*c))
            .ok_or(RefError::Malformed)?;
        let prefix = after.len() - digits.len();
        return Ok((c, prefix + len + 1));
    }
    let len = after.iter().take_while(|b| is_name_byte(**b)).count();
    if len == 0 || after.get(len) != Some(&b';') {
        return Err(RefError::Malformed);
    }
    let c = match &after[..len] {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        _ => return Err(RefError::Entity),
    };
    Ok((c, len + 1))
}

/// A byte that can be part of an XML name (non-ASCII bytes are let through as name bytes).
pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// The XML 1.0 `Char` production.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes text for element content or a double-quoted attribute value.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['<', '>', '&', '"', '\'', '\r']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A literal CR would be normalised away by the reader; keep it as a reference.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn predefined_and_character_references() {
        let cases: [(&str, Result<&str, RefError>); 14] = [
            ("plain", Ok("plain")),
            ("a&lt;b&gt;c&amp;d&apos;e&quot;", Ok("a<b>c&d'e\"")),
            ("&#65;&#x42;&#x10FFFF;", Ok("AB\u{10FFFF}")),
            ("line&#13;", Ok("line\r")),
            ("&xxe;", Err(RefError::Entity)),
            ("&LT;", Err(RefError::Entity)),
            ("a & b", Err(RefError::Malformed)),
            ("&amp", Err(RefError::Malformed)),
            ("&#0;", Err(RefError::Malformed)),
            ("&#xD800;", Err(RefError::Malformed)),
            ("&#x110000;", Err(RefError::Malformed)),
            ("&#99999999999999999999;", Err(RefError::Malformed)),
            ("&#x;", Err(RefError::Malformed)),
            ("&#12a;", Err(RefError::Malformed)),
        ];
        for (raw, want) in cases {
            assert_eq!(unescape(raw).as_deref().map_err(|e| *e), want, "{raw}");
        }
    }

    proptest! {
        #[test]
        fn escape_round_trips(s in "\\PC{0,40}") {
            let escaped = escape(&s);
            prop_assert_eq!(unescape(&escaped).unwrap(), s.as_str());
        }

        #[test]
        fn unescape_never_panics(s in "[&#;xa-z0-9\\PC]{0,40}") {
            let _ = unescape(&s);
        }
    }
}
