//! The wire form of a stamped frame (`typing`, `action`, `away`, `name`),
//! written field by field: the one frame written for every relayed ping.
//! serde's path for a tagged enum escapes each key as it writes it (eight
//! of them here); this writes the keys as they are and escapes only the
//! values that need it. The bytes are serde_json's exactly (the tests,
//! and the fuzz target, hold it).

use super::Stamped;
use crate::protocol::json_text::{count, number, string};

/// How the texts of the kinds [`stamped_json`] writes begin: typing first.
const STAMPED_HEADS: [&str; 4] = [
    "{\"type\":\"typing\"",
    "{\"type\":\"action\"",
    "{\"type\":\"away\"",
    "{\"type\":\"name\"",
];

/// A stamped frame's text as [`stamped_json`] writes it, numbered `seq`
/// instead, without reading the rest: how an instance numbers a frame
/// that another instance wrote. `None` for any other text.
///
/// The field is read from the end, where [`stamped_json`] writes it: the
/// last field, or the last before `"judge":true`. A search from the start
/// for `,"seq":` cost a fleet instance 2 % of its instructions
/// (docs/performance.md).
pub fn restamp(json: &str, seq: u64) -> Option<String> {
    const KEY: &str = ",\"seq\":";
    const JUDGE: &str = ",\"judge\":true}";
    if !STAMPED_HEADS.iter().any(|head| json.starts_with(head)) {
        return None;
    }
    let rest = if json.ends_with(JUDGE) { JUDGE } else { "}" };
    let numbered = json.strip_suffix(rest)?;
    let digits = numbered
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .count();
    let at = numbered.len() - digits;
    if digits == 0 || !numbered[..at].ends_with(KEY) {
        return None;
    }
    let mut out = String::with_capacity(json.len() + 20);
    out.push_str(&json[..at]);
    count(&mut out, seq);
    out.push_str(rest);
    Some(out)
}

/// The sender of a typing ping whose text [`stamped_json`] wrote, if its
/// id is written as it is (ids are; anything escaped is `None`).
pub fn typing_sender(json: &str) -> Option<&str> {
    const KEY: &str = ",\"from\":\"";
    let fields = json.strip_prefix(STAMPED_HEADS[0])?;
    let from = &fields[fields.find(KEY)? + KEY.len()..];
    let id = &from[..from.find('"')?];
    (!id.contains('\\')).then_some(id)
}

/// `{"type":"<kind>", ...the stamped fields}` as serde_json writes them.
pub(super) fn stamped_json(kind: &str, stamped: &Stamped) -> String {
    let Stamped {
        client_id,
        action,
        away,
        ts,
        from,
        name,
        seq,
        judge,
    } = stamped;
    let text_len = client_id.as_ref().map_or(0, String::len)
        + from.len()
        + name.as_ref().map_or(0, |name| name.as_str().len());
    let mut out = String::with_capacity(96 + text_len);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(client_id) = client_id {
        out.push_str(",\"clientId\":");
        string(&mut out, client_id);
    }
    if let Some(action) = action {
        out.push_str(",\"action\":");
        string(&mut out, &action.code());
    }
    if let Some(away) = away {
        out.push_str(if *away {
            ",\"away\":true"
        } else {
            ",\"away\":false"
        });
    }
    if let Some(ts) = ts {
        out.push_str(",\"ts\":");
        number(&mut out, ts);
    }
    out.push_str(",\"from\":");
    string(&mut out, from);
    if let Some(name) = name {
        out.push_str(",\"name\":");
        string(&mut out, name.as_str());
    }
    out.push_str(",\"seq\":");
    count(&mut out, *seq);
    if *judge {
        out.push_str(",\"judge\":true");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Number;

    use super::{restamp, typing_sender};
    use crate::protocol::{
        Action, MemberRef, PlayerName, Presence, PresenceEvent, Role, ServerFrame, Stamped,
    };

    const TEXTS: [&str; 5] = [
        "c-1",
        "quote \" back \\ slash",
        "tab\tnul\u{0}\u{1f} del\u{7f} \u{8}\u{c}\n\r",
        "é 漢 🦀 </script>",
        ",\"seq\":1,\"from\":\"x",
    ];

    #[test]
    fn a_stamped_frame_is_written_as_serde_json_writes_it() {
        let numbers = [
            Number::from(1_733_000_000_000_u64),
            Number::from(-5_i64),
            Number::from_f64(1.5).unwrap(),
            Number::from_f64(1e300).unwrap(),
            Number::from_f64(-0.0).unwrap(),
        ];
        let mut written = 0;
        for client_id in [None].into_iter().chain(TEXTS.map(Some)) {
            for action in [None, Some(Action::Running), Some(Action::FailedTest(7))] {
                for away in [None, Some(true), Some(false)] {
                    for ts in [None].into_iter().chain(numbers.iter().map(Some)) {
                        for (from, name) in [
                            ("m1", None),
                            (TEXTS[1], Some(TEXTS[3])),
                            (TEXTS[3], Some(TEXTS[1])),
                        ] {
                            for (seq, judge) in [(0, false), (u64::MAX, true)] {
                                let stamped = Stamped {
                                    client_id: client_id.map(str::to_owned),
                                    action,
                                    away,
                                    ts: ts.cloned(),
                                    from: from.into(),
                                    name: name.map(|name| PlayerName::parse(name).unwrap()),
                                    seq,
                                    judge,
                                };
                                for frame in [
                                    ServerFrame::Typing(stamped.clone()),
                                    ServerFrame::Action(stamped.clone()),
                                    ServerFrame::Away(stamped.clone()),
                                    ServerFrame::Name(stamped),
                                ] {
                                    let json = frame.to_json();
                                    assert_eq!(json, serde_json::to_string(&frame).unwrap());
                                    let numbered = frame.clone().with_seq(42).to_json();
                                    assert_eq!(restamp(&json, 42), Some(numbered));
                                    let sender = matches!(frame, ServerFrame::Typing(_))
                                        && !from.contains(['"', '\\']);
                                    assert_eq!(typing_sender(&json), sender.then_some(from));
                                    written += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(written, 6 * 3 * 3 * 6 * 3 * 2 * 4);
    }

    #[test]
    fn only_a_stamped_frame_is_renumbered_in_place() {
        let presence = ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: MemberRef::new("m1", Role::Player),
            seq: 0,
        });
        for json in [
            presence.to_json(),
            ServerFrame::Heartbeat.to_json(),
            r#"{"type":"typing","from":"m1"}"#.into(),
            r#"{"type":"typing","from":"m1","seq":}"#.into(),
            r#"{"type":"typing","from":"m1","seq":1,"x":2}"#.into(),
            r#"{"type":"typingx","from":"m1","seq":1}"#.into(),
            String::new(),
        ] {
            assert_eq!(restamp(&json, 42), None, "{json}");
        }
        assert_eq!(typing_sender(&presence.to_json()), None);
        assert_eq!(typing_sender(r#"{"type":"typing","from":"m1"#), None);
    }
}
