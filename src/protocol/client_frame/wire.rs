//! The wire form of a client frame, written field by field in the
//! original script's order: the bytes serde_json would write (the tests
//! hold it), without its serializer, which the page then does not carry.

use super::{ClientEvent, ClientFrame};
use crate::protocol::json_text;

impl ClientFrame {
    /// The frame as the client sends it, its fields in the original
    /// script's order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96 + self.client_id.as_ref().map_or(0, String::len));
        out.push_str("{\"type\":\"");
        out.push_str(self.event.kind());
        out.push('"');
        if let Some(client_id) = &self.client_id {
            out.push_str(",\"clientId\":");
            json_text::string(&mut out, client_id);
        }
        match &self.event {
            ClientEvent::Typing => {}
            ClientEvent::Action(action) => {
                out.push_str(",\"action\":");
                json_text::string(&mut out, &action.code());
            }
            ClientEvent::Away(away) => out.push_str(if *away {
                ",\"away\":true"
            } else {
                ",\"away\":false"
            }),
            ClientEvent::Name(name) => {
                out.push_str(",\"name\":");
                json_text::string(&mut out, name.as_str());
            }
        }
        if let Some(ts) = &self.ts {
            out.push_str(",\"ts\":");
            json_text::number(&mut out, ts);
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::Number;

    use super::*;
    use crate::protocol::{parse_client_frame, Action, PlayerName};

    #[test]
    fn a_client_frame_is_written_as_serde_json_writes_it() {
        /// The frame as serde would write it, in the original script's order.
        #[derive(Serialize)]
        struct Reference<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
            client_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            action: Option<Action>,
            #[serde(skip_serializing_if = "Option::is_none")]
            away: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            ts: Option<&'a Number>,
        }
        let texts = [
            "c-1",
            "quote \" back \\ slash",
            "tab\tnul\u{0}\u{1f} del\u{7f} \u{8}\u{c}\n\r",
            "é 漢 🦀 </script>",
        ];
        let numbers = [
            Number::from(1_733_000_000_000_u64),
            Number::from(-5_i64),
            Number::from_f64(1.5).unwrap(),
            Number::from_f64(-1e300).unwrap(),
        ];
        let name = PlayerName::parse(texts[1]).unwrap();
        let mut written = 0;
        for client_id in [None].into_iter().chain(texts.map(Some)) {
            for ts in [None].into_iter().chain(numbers.iter().map(Some)) {
                for event in [
                    ClientEvent::Typing,
                    ClientEvent::Action(Action::FailedTest(7)),
                    ClientEvent::Away(true),
                    ClientEvent::Away(false),
                    ClientEvent::Name(name.clone()),
                ] {
                    let mut frame = ClientFrame::new(event.clone());
                    frame.client_id = client_id.map(str::to_owned);
                    frame.ts = ts.cloned();
                    let reference = Reference {
                        kind: event.kind(),
                        client_id,
                        action: matches!(event, ClientEvent::Action(_))
                            .then_some(Action::FailedTest(7)),
                        away: match event {
                            ClientEvent::Away(away) => Some(away),
                            _ => None,
                        },
                        name: matches!(event, ClientEvent::Name(_)).then_some(name.as_str()),
                        ts,
                    };
                    let text = frame.to_json();
                    assert_eq!(text, serde_json::to_string(&reference).unwrap());
                    assert_eq!(parse_client_frame(&text), Ok(frame));
                    written += 1;
                }
            }
        }
        assert_eq!(written, 5 * 5 * 5);
    }
}
