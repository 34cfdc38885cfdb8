//! The wire format, version 1 (see `docs/protocol.md`): names, actions,
//! the frames clients send and the frames the server sends, limits, shared
//! timings and close codes.
//!
//! Pure: no I/O, no clock. Both the server (to validate what clients send and
//! to stamp what it relays) and the browser (to read what the server sends)
//! use these types. What a player reads (labels) belongs to `status`.

mod action;
mod client_frame;
pub mod close;
mod json_text;
mod names;
mod server_frame;

pub use self::{
    action::{Action, UnknownAction},
    client_frame::{parse_client_frame, ClientEvent, ClientFrame, FrameError},
    close::Close,
    names::{
        PlayerKey, PlayerName, PlayerNameError, Role, RoomName, RoomNameError, Since,
        MIN_PLAYER_KEY_CHARS,
    },
    server_frame::{
        restamp, typing_sender, Connection, HistoryEntry, JsonTree, MemberRef, MemberState,
        Presence, PresenceEvent, ServerFrame, Snapshot, Stamped, Welcome,
    },
};

/// Version of the wire format announced in the welcome frame.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest text frame a client may send, in bytes. Larger frames close the
/// connection with [`Close::Oversized`] before any parsing.
pub const MAX_FRAME_BYTES: usize = 4096;
/// Longest `clientId` accepted, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Longest room name accepted, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest player display name, in characters, once trimmed.
pub const MAX_NAME_CHARS: usize = 32;
/// Highest test number in a `FAILED_TC<n>` action.
pub const MAX_FAILED_TEST: u16 = 9999;
/// A member shows as typing for this long after their last typing ping, in
/// ms: the page's rule, which the server's snapshots follow too.
pub const TYPING_TIMEOUT_MS: u64 = 2500;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Number;

    use super::*;

    /// Every file of the fuzz target's seeds and corpus, as text.
    pub(crate) fn corpus() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        ["seeds/frames", "corpus/frames"]
            .iter()
            .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
            .flatten()
            .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
            .filter_map(|bytes| String::from_utf8(bytes).ok())
            .collect()
    }

    #[test]
    fn every_known_action_round_trips() {
        for code in [
            "RUNNING",
            "SUBMITTED",
            "RUN_COMPLETE",
            "AC",
            "WA",
            "TLE",
            "MLE",
            "FAILED_TC1",
            "FAILED_TC42",
            "FAILED_TC9999",
        ] {
            assert_eq!(Action::parse(code).unwrap().code(), code);
        }
    }

    #[test]
    fn failed_test_numbers_outside_1_to_9999_or_not_canonical_are_refused() {
        for code in [
            "FAILED_TC",
            "FAILED_TC0",
            "FAILED_TC10000",
            "FAILED_TC01",
            "FAILED_TC+1",
            "FAILED_TC-1",
            "FAILED_TC1a",
            "FAILED_TC 1",
            "FAILED_TC99999999999",
        ] {
            assert_eq!(
                Action::parse(code),
                Err(UnknownAction(code.into())),
                "{code}"
            );
        }
    }

    #[test]
    fn action_codes_are_case_sensitive_and_any_other_string_is_refused() {
        for code in ["running", "Ac", "", "DROP TABLE", "ACCEPTED"] {
            assert!(Action::parse(code).is_err(), "{code}");
        }
    }

    #[test]
    fn room_names_of_1_to_64_safe_characters_are_accepted() {
        for name in ["a", "Room_1-x", "550e8400-e29b-41d4-a716-446655440000"] {
            assert_eq!(RoomName::parse(name).unwrap().as_str(), name);
        }
        assert!(RoomName::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn a_room_name_longer_than_64_chars_is_rejected() {
        assert_eq!(
            RoomName::parse(&"x".repeat(65)),
            Err(RoomNameError::TooLong(65))
        );
    }

    #[test]
    fn room_names_with_unsafe_characters_or_empty_are_rejected() {
        assert_eq!(RoomName::parse(""), Err(RoomNameError::Empty));
        for (name, bad) in [
            ("a b", ' '),
            ("a/b", '/'),
            ("a.b", '.'),
            ("é", 'é'),
            ("a%2F", '%'),
        ] {
            assert_eq!(RoomName::parse(name), Err(RoomNameError::InvalidChar(bad)));
        }
    }

    #[test]
    fn the_original_scripts_frames_parse_with_their_fields() {
        let typing =
            parse_client_frame(r#"{"type":"typing","clientId":"c-1","ts":1700000000123}"#).unwrap();
        assert_eq!(typing.event, ClientEvent::Typing);
        assert_eq!(typing.client_id.as_deref(), Some("c-1"));
        assert_eq!(typing.ts, Some(Number::from(1_700_000_000_123_u64)));

        let action = parse_client_frame(
            r#"{"type":"action","clientId":"c-1","action":"FAILED_TC7","ts":5}"#,
        )
        .unwrap();
        assert_eq!(action.event, ClientEvent::Action(Action::FailedTest(7)));
    }

    #[test]
    fn a_timestamp_of_any_size_survives_the_relay_unchanged() {
        // Found by the fuzzer: a long mantissa with an exponent used to be
        // rounded differently on the way in and on the way back.
        for ts in [
            "170000000012300574e0123",
            "1.5",
            "-0.0",
            "1e308",
            "12345678901234567890",
        ] {
            let text = format!(r#"{{"type":"typing","ts":{ts}}}"#);
            let frame = parse_client_frame(&text).unwrap();
            assert_eq!(parse_client_frame(&frame.to_json()), Ok(frame), "{ts}");
        }
    }

    #[test]
    fn client_id_and_ts_are_optional() {
        let frame = parse_client_frame(r#"{"type":"action","action":"AC"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::new(ClientEvent::Action(Action::Accepted))
        );
    }

    #[test]
    fn each_kind_of_invalid_frame_gets_its_own_error() {
        let cases = [
            ("not json", "invalid_json"),
            ("", "invalid_json"),
            ("[1,2]", "not_an_object"),
            ("\"typing\"", "not_an_object"),
            ("{}", "unknown_type"),
            (r#"{"type":"chat"}"#, "unknown_type"),
            (r#"{"type":7}"#, "unknown_type"),
            (r#"{"type":"action"}"#, "unknown_action"),
            (r#"{"type":"action","action":"HACKED"}"#, "unknown_action"),
            (r#"{"type":"action","action":1}"#, "unknown_action"),
            (r#"{"type":"typing","clientId":5}"#, "invalid_field"),
            (r#"{"type":"typing","ts":"now"}"#, "invalid_field"),
        ];
        for (text, code) in cases {
            assert_eq!(parse_client_frame(text).unwrap_err().code(), code, "{text}");
        }
        let long_id = format!(r#"{{"type":"typing","clientId":"{}"}}"#, "x".repeat(129));
        assert_eq!(
            parse_client_frame(&long_id).unwrap_err().code(),
            "invalid_field"
        );
    }

    #[test]
    fn a_relayed_frame_keeps_the_clients_fields_and_drops_unknown_ones() {
        let frame = parse_client_frame(
            r#"{"ts":1.5,"action":"RUNNING","type":"action","clientId":"me","from":"forged","seq":99,"extra":{"a":1}}"#,
        )
        .unwrap();
        let relayed = ServerFrame::relayed(frame, &MemberRef::new("m-1", Role::Player), 3);
        assert_eq!(
            relayed.to_json(),
            r#"{"type":"action","clientId":"me","action":"RUNNING","ts":1.5,"from":"m-1","seq":3}"#
        );
    }

    #[test]
    fn server_frames_round_trip_and_unknown_types_are_tolerated() {
        let frames = [
            ServerFrame::Welcome(Welcome {
                protocol: PROTOCOL_VERSION,
                room: RoomName::parse("r1").unwrap(),
                you: "m-1".into(),
                role: Role::Spectator,
                resumed: true,
                name_locked: false,
                seq: 7,
                heartbeat_ms: 15_000,
                members: vec![MemberState {
                    id: "m-2".into(),
                    role: Role::Player,
                    state: Connection::Reconnecting,
                    last_action: Some(Action::FailedTest(3)),
                    typing_ms: 1_200,
                    name: None,
                    away_ms: None,
                }],
                history: vec![],
                recovered: None,
            }),
            ServerFrame::relayed(
                ClientFrame::new(ClientEvent::Typing)
                    .with_client_id("c")
                    .with_ts(12),
                &MemberRef::new("m-2", Role::Player),
                1,
            ),
            ServerFrame::Presence(Presence {
                event: PresenceEvent::Reconnecting,
                member: MemberRef {
                    id: "m-2".into(),
                    role: Role::Player,
                    name: None,
                },
                seq: 8,
            }),
            ServerFrame::Heartbeat,
            ServerFrame::error(&FrameError::InvalidJson),
        ];
        for frame in frames {
            assert_eq!(ServerFrame::parse(&frame.to_json()), Some(frame));
        }
        assert_eq!(
            ServerFrame::parse(r#"{"type":"confetti","colour":"red"}"#),
            Some(ServerFrame::Unknown)
        );
        assert_eq!(ServerFrame::parse("[]"), None);
        assert_eq!(
            ServerFrame::parse(r#"{"type":"action","action":"NOPE","from":"x","seq":1}"#),
            None
        );
    }

    #[test]
    fn the_welcome_and_presence_frames_have_the_documented_shape() {
        let welcome = ServerFrame::Welcome(Welcome {
            protocol: 1,
            room: RoomName::parse("duel").unwrap(),
            you: "a".into(),
            role: Role::Player,
            resumed: false,
            name_locked: false,
            seq: 0,
            heartbeat_ms: 15_000,
            members: vec![MemberState {
                id: "a".into(),
                role: Role::Player,
                state: Connection::Online,
                last_action: None,
                typing_ms: 0,
                name: None,
                away_ms: None,
            }],
            history: vec![],
            recovered: None,
        });
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","protocol":1,"room":"duel","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[{"id":"a","role":"player","state":"online","lastAction":null,"typingMs":0}]}"#
        );
        let presence = ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: MemberRef {
                id: "b".into(),
                role: Role::Spectator,
                name: None,
            },
            seq: 4,
        });
        assert_eq!(
            presence.to_json(),
            r#"{"type":"presence","event":"join","member":{"id":"b","role":"spectator"},"seq":4}"#
        );
        assert_eq!(ServerFrame::Heartbeat.to_json(), r#"{"type":"heartbeat"}"#);
    }

    #[test]
    fn a_judges_verdict_is_marked_and_clients_cannot_mark_their_own() {
        let verdict =
            ServerFrame::verdict(Action::Accepted, &MemberRef::new("m-1", Role::Player), 9);
        assert_eq!(
            verdict.to_json(),
            r#"{"type":"action","action":"AC","from":"m-1","seq":9,"judge":true}"#
        );
        assert_eq!(ServerFrame::parse(&verdict.to_json()), Some(verdict));
        let forged = parse_client_frame(r#"{"type":"action","action":"AC","judge":true}"#).unwrap();
        let relayed =
            ServerFrame::relayed(forged, &MemberRef::new("m-2", Role::Player), 10).to_json();
        assert!(!relayed.contains("judge"), "{relayed}");
    }

    #[test]
    fn names_of_1_to_32_characters_are_trimmed_and_kept_as_given() {
        for (given, kept) in [
            ("Ada", "Ada"),
            ("  Grace Hopper ", "Grace Hopper"),
            ("<b>Zoë</b> 🦀", "<b>Zoë</b> 🦀"),
            ("李小龍", "李小龍"),
        ] {
            assert_eq!(PlayerName::parse(given).unwrap().as_str(), kept);
        }
        assert!(PlayerName::parse(&"é".repeat(32)).is_ok());
        assert_eq!(
            PlayerName::parse(&"é".repeat(33)),
            Err(PlayerNameError::TooLong(33))
        );
        assert_eq!(PlayerName::parse("   "), Err(PlayerNameError::Empty));
        for bad in [
            "a\nb",
            "tab\there",
            "nul\0",
            "\u{202e}evil",
            "a\u{2066}b",
            "\u{7f}",
        ] {
            assert_eq!(
                PlayerName::parse(bad),
                Err(PlayerNameError::ControlChar),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn away_and_name_frames_parse_and_bad_ones_get_their_errors() {
        let away = parse_client_frame(r#"{"type":"away","away":true,"clientId":"c"}"#).unwrap();
        assert_eq!(away.event, ClientEvent::Away(true));
        assert_eq!(parse_client_frame(&away.to_json()), Ok(away));
        let name = parse_client_frame(r#"{"type":"name","name":" Ada "}"#).unwrap();
        assert_eq!(
            name.event,
            ClientEvent::Name(PlayerName::parse("Ada").unwrap())
        );
        assert_eq!(name.to_json(), r#"{"type":"name","name":"Ada"}"#);
        for (text, code) in [
            (r#"{"type":"away"}"#, "invalid_field"),
            (r#"{"type":"away","away":"yes"}"#, "invalid_field"),
            (r#"{"type":"name"}"#, "invalid_field"),
            (r#"{"type":"name","name":7}"#, "invalid_field"),
            (r#"{"type":"name","name":""}"#, "invalid_name"),
            (r#"{"type":"name","name":"a\u0007b"}"#, "invalid_name"),
        ] {
            assert_eq!(parse_client_frame(text).unwrap_err().code(), code, "{text}");
        }
    }

    #[test]
    fn the_server_stamps_the_senders_name_and_a_forged_one_is_not_relayed() {
        let ada = MemberRef {
            name: Some(PlayerName::parse("Ada").unwrap()),
            ..MemberRef::new("m-1", Role::Player)
        };
        let forged =
            parse_client_frame(r#"{"type":"action","action":"WA","name":"Grace","from":"m-2"}"#)
                .unwrap();
        assert_eq!(
            ServerFrame::relayed(forged, &ada, 4).to_json(),
            r#"{"type":"action","action":"WA","from":"m-1","name":"Ada","seq":4}"#
        );
        let away = parse_client_frame(r#"{"type":"away","away":true}"#).unwrap();
        assert_eq!(
            ServerFrame::relayed(away, &ada, 5).to_json(),
            r#"{"type":"away","away":true,"from":"m-1","name":"Ada","seq":5}"#
        );
        let renamed = parse_client_frame(r#"{"type":"name","name":"Grace"}"#).unwrap();
        let frame = ServerFrame::relayed(renamed, &ada, 6);
        assert_eq!(
            frame.to_json(),
            r#"{"type":"name","from":"m-1","name":"Grace","seq":6}"#
        );
        assert_eq!(ServerFrame::parse(&frame.to_json()), Some(frame));
        assert_eq!(
            ServerFrame::parse(r#"{"type":"name","from":"m","name":"\u0000","seq":1}"#),
            None,
            "a name that breaks the rules is not read from the server either"
        );
    }

    #[test]
    fn roles_and_player_keys_are_validated() {
        assert_eq!(Role::parse("player"), Some(Role::Player));
        assert_eq!(Role::parse("spectator"), Some(Role::Spectator));
        assert_eq!(Role::parse("admin"), None);
        assert!(PlayerKey::parse("0123456789abcdef").is_some());
        assert!(PlayerKey::parse("short").is_none());
        assert!(PlayerKey::parse(&"k".repeat(65)).is_none());
        assert!(PlayerKey::parse("0123456789abcdef!").is_none());
    }

    #[test]
    fn a_client_frame_serialises_in_the_original_scripts_shape() {
        let frame = ClientFrame::new(ClientEvent::Action(Action::Submitted))
            .with_client_id("abc")
            .with_ts(10);
        assert_eq!(
            frame.to_json(),
            r#"{"type":"action","clientId":"abc","action":"SUBMITTED","ts":10}"#
        );
        assert_eq!(parse_client_frame(&frame.to_json()), Ok(frame));
    }
}
