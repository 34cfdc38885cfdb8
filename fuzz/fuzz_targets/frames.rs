//! Frame parsing and validation on arbitrary input: never panics, every
//! accepted frame is written back in a shape that parses to the same frame
//! (server frames byte for byte as serde_json writes them, and renumbered
//! in place as if read and written again), and a client frame is decided
//! alike by both of its readers.

#![no_main]

use battle_status::{
    app::parse_battle_ref,
    protocol::{
        parse_client_frame, restamp, typing_sender, Action, PlayerKey, PlayerName, Role, RoomName,
        ServerFrame, Since, MAX_NAME_CHARS,
    },
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = parse_client_frame(text) {
        assert_eq!(parse_client_frame(&frame.to_json()), Ok(frame));
    }
    // A space after the opening brace means the same JSON, and sends the
    // text to serde_json rather than to the reader of the pages' own shape:
    // the two decide every object alike.
    if let Some(rest) = text.strip_prefix('{') {
        assert_eq!(parse_client_frame(text), parse_client_frame(&format!("{{ {rest}")));
    }
    if let Some(frame) = ServerFrame::parse(text) {
        let written = frame.to_json();
        assert_eq!(written, serde_json::to_string(&frame).unwrap(), "same bytes as serde");
        // Renumbered in place as if read and written again.
        let stamped = matches!(
            frame,
            ServerFrame::Typing(_) | ServerFrame::Action(_) | ServerFrame::Away(_) | ServerFrame::Name(_)
        );
        let numbered = stamped.then(|| frame.clone().with_seq(7).to_json());
        assert_eq!(restamp(&written, 7), numbered);
        if let Some(from) = typing_sender(&written) {
            assert!(matches!(&frame, ServerFrame::Typing(s) if &*s.from == from));
        }
        assert_eq!(ServerFrame::parse(&written), Some(frame));
    }
    let _ = (restamp(text, 7), typing_sender(text));
    if let Ok(action) = Action::parse(text) {
        assert_eq!(action.code(), text, "accepted codes are canonical");
    }
    if let Ok(room) = RoomName::parse(text) {
        assert_eq!(room.as_str(), text);
    }
    if let Ok(name) = PlayerName::parse(text) {
        let kept = name.as_str();
        assert!(!kept.is_empty() && kept.chars().count() <= MAX_NAME_CHARS);
        assert!(!kept.chars().any(char::is_control), "{kept:?}");
        assert_eq!(PlayerName::parse(kept), Ok(name.clone()), "names are kept trimmed");
    }
    let _ = parse_battle_ref(text);
    let _ = PlayerKey::parse(text);
    let _ = Role::parse(text);
    if let Since::Seq(seq) = Since::parse(Some(text)) {
        assert_eq!(text.trim_start_matches('+').parse(), Ok(seq));
    }
});
