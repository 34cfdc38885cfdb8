//! JSON text for the frames written field by field (the relayed frames on
//! the server, the client's frames in the page): strings and numbers
//! exactly as serde_json writes them (the tests and the fuzz target hold
//! it), without its serializer, which the page then does not carry.

use serde_json::Number;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `text` as a JSON string, escaped as serde_json escapes it: `"`, `\`
/// and control characters; everything else as it is.
pub(super) fn string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    // Most strings (ids, codes, names) have nothing to escape: one pass
    // over all their bytes (no early exit, so it runs many at a time)
    // tells, and they are copied whole.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped is ASCII: `at` is a character boundary.
        out.push_str(&text[start..at]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = at + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// A whole number from 0 up.
pub(super) fn count(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Any number, as it was read: whole numbers as digits, others as
/// serde_json writes them (its `Display`).
pub(super) fn number(out: &mut String, n: &Number) {
    if let Some(n) = n.as_u64() {
        count(out, n);
    } else if let Some(n) = n.as_i64() {
        out.push_str(itoa::Buffer::new().format(n));
    } else {
        out.push_str(&n.to_string());
    }
}
