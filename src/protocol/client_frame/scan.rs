//! The frames pages and the original script send, read without serde_json:
//! one object, no whitespace, keys and strings without escapes, whole
//! numbers from 0 up to 19 digits, `true`, `false` and `null`. That is
//! every frame `JSON.stringify` and [`ClientFrame::to_json`] write, and a
//! tenth of what serde_json takes to read one. Anything else (whitespace,
//! an escape, a fraction, a nested value, anything wrong) is left to
//! serde_json, so this reader never decides a frame it could decide
//! differently (the tests and the fuzz target hold it).
//!
//! [`ClientFrame::to_json`]: super::ClientFrame::to_json

use std::borrow::Cow;

use serde_json::Number;

use super::{Field, Fields, Key};

/// The fields of `text`, or `None` if it is not in the shape read here.
pub(super) fn fields(text: &str) -> Option<Fields<'_>> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut fields = Fields::default();
    if bytes.get(1) == Some(&b'}') {
        return (bytes.len() == 2).then_some(fields);
    }
    let mut at = 1;
    loop {
        let key = string(text, &mut at)?;
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at += 1;
        let value = value(text, &mut at)?;
        if let Some(slot) = fields.slot(Key::of(key)) {
            *slot = Some(value);
        }
        match bytes.get(at)? {
            b',' => at += 1,
            b'}' => return (at + 1 == bytes.len()).then_some(fields),
            _ => return None,
        }
    }
}

/// The string at `at` (moved past it), if it has no escape and no control
/// character.
fn string<'a>(text: &'a str, at: &mut usize) -> Option<&'a str> {
    let bytes = text.as_bytes();
    if bytes.get(*at) != Some(&b'"') {
        return None;
    }
    let start = *at + 1;
    let end = start
        + bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if bytes[end] != b'"' {
        return None;
    }
    *at = end + 1;
    // Both ends are at an ASCII byte: character boundaries.
    Some(&text[start..end])
}

/// The value at `at` (moved past it), if it is one read here. What follows
/// it is the caller's to check: `1.5` is read as `1` followed by `.`, which
/// no object allows there.
fn value<'a>(text: &'a str, at: &mut usize) -> Option<Field<'a>> {
    let rest = &text.as_bytes()[*at..];
    let (field, len) = match rest.first()? {
        b'"' => return string(text, at).map(|s| Field::Str(Cow::Borrowed(s))),
        b't' if rest.starts_with(b"true") => (Field::Bool(true), 4),
        b'f' if rest.starts_with(b"false") => (Field::Bool(false), 5),
        b'n' if rest.starts_with(b"null") => (Field::Null, 4),
        b'0'..=b'9' => {
            let digits = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            // 19 digits always fit in a u64; JSON has no leading zeros.
            if digits > 19 || (digits > 1 && rest[0] == b'0') {
                return None;
            }
            let n = rest[..digits]
                .iter()
                .fold(0_u64, |n, digit| n * 10 + u64::from(digit - b'0'));
            (Field::Number(Number::from(n)), digits)
        }
        _ => return None,
    };
    *at += len;
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse_client_frame, tests::corpus, ClientEvent, ClientFrame};

    /// What serde_json reads from `text`, if it reads an object.
    fn by_serde(text: &str) -> Option<Fields<'_>> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn the_frames_pages_send_are_read_here() {
        for event in [ClientEvent::Typing, ClientEvent::Away(true)] {
            let text = ClientFrame::new(event)
                .with_client_id("k3j9x")
                .with_ts(1_700_000_000_123_u64)
                .to_json();
            assert!(fields(&text).is_some(), "{text}");
        }
        for text in [
            r#"{"type":"action","clientId":"é 漢 🦀","action":"FAILED_TC3","ts":0}"#,
            r#"{"type":"name","name":"Ada","x":null,"y":false,"type":"name"}"#,
            "{}",
        ] {
            assert!(fields(text).is_some(), "{text}");
        }
    }

    #[test]
    fn what_it_reads_it_reads_as_serde_json_does() {
        let mut texts = corpus();
        texts.extend(
            [
                r#"{"type":"typing","type":"action","action":"AC"}"#,
                r#"{"type":"typing","ts":9999999999999999999}"#,
                r#"{"type":"typing","ts":0,"clientId":null,"other":true}"#,
                r#"{"":"","away":false,"name":"\u007f"}"#,
            ]
            .map(str::to_owned),
        );
        let mut read = 0;
        for text in &texts {
            if let Some(fields) = fields(text) {
                assert_eq!(Some(&fields), by_serde(text).as_ref(), "{text:?}");
                read += 1;
            }
        }
        // The four above, and the seeds that are frames as pages send them.
        assert!(read > 4, "only {read} of {} read here", texts.len());
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            r#"{ "type":"typing"}"#,
            r#"{"type" :"typing"}"#,
            r#"{"type":"typing"} "#,
            r#"{"type":"typ\ning"}"#,
            r#"{"type":"typ\"ing"}"#,
            "{\"type\":\"typ\ting\"}",
            r#"{"type":"typing","ts":1.5}"#,
            r#"{"type":"typing","ts":1e3}"#,
            r#"{"type":"typing","ts":-1}"#,
            r#"{"type":"typing","ts":01}"#,
            r#"{"type":"typing","ts":12345678901234567890}"#,
            r#"{"type":"typing","x":[1]}"#,
            r#"{"type":"typing","x":{}}"#,
            r#"{"type":"typing","x":tru}"#,
            r#"{"type":"typing","x":truex}"#,
            r#"{"type":"typing",}"#,
            r#"{"type":"typing""#,
            r#"{"type":"typing"}x"#,
            r#"{"type":"typing"}}"#,
            r#"{"type"}"#,
            r#"{type:"typing"}"#,
            "{",
            "{}x",
            "[]",
            "",
        ] {
            assert!(fields(text).is_none(), "{text:?}");
        }
        assert_eq!(
            parse_client_frame(r#"{ "type":"typing","ts":1.5}"#),
            Ok(ClientFrame::new(ClientEvent::Typing).with_ts(Number::from_f64(1.5).unwrap()))
        );
    }
}
