//! The relay against the real server on port 0, with real WebSocket clients.

mod support;

use serde_json::json;
use support::{http_get, refused_handshake, spawn_app, Player};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

const ORIGINAL_TYPING: &str = r#"{"type":"typing","clientId":"k3j9x","ts":1700000000123}"#;

#[tokio::test]
async fn both_members_receive_each_frame_the_sender_included() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;

    alice.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    for player in [&mut alice, &mut bob] {
        let frame = player.next().await;
        assert_eq!(frame["action"], "RUNNING");
    }
    bob.send(r#"{"type":"typing"}"#).await;
    for player in [&mut alice, &mut bob] {
        let frame = player.next().await;
        assert_eq!(frame["type"], "typing");
    }
}

#[tokio::test]
async fn the_original_scripts_frames_are_relayed_intact_with_from_and_seq_added() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;

    alice.send(ORIGINAL_TYPING).await;
    alice
        .send(r#"{"type":"action","clientId":"k3j9x","action":"FAILED_TC12","ts":1700000000456}"#)
        .await;

    let typing = bob.next().await;
    assert_eq!(
        typing,
        json!({"type": "typing", "clientId": "k3j9x", "ts": 1_700_000_000_123_u64,
               "from": alice.me, "seq": 3})
    );
    let action = bob.next().await;
    assert_eq!(
        action,
        json!({"type": "action", "clientId": "k3j9x", "action": "FAILED_TC12",
               "ts": 1_700_000_000_456_u64, "from": alice.me, "seq": 4})
    );
    assert_ne!(alice.me, bob.me, "every connection gets its own member id");
}

#[tokio::test]
async fn a_frame_sent_with_the_handshake_before_its_answer_is_relayed() {
    let server = spawn_app().await;
    let mut bob = Player::join(&server, "eager").await;
    let mut alice =
        Player::join_eagerly(&server, "eager", r#"{"type":"action","action":"RUNNING"}"#).await;

    let sender = alice.me.clone();
    for player in [&mut alice, &mut bob] {
        let frame = player.next_of("action").await;
        assert_eq!(frame["action"], "RUNNING", "{frame}");
        assert_eq!(frame["from"], sender.as_str(), "{frame}");
    }
}

#[tokio::test]
async fn unknown_fields_and_client_sent_server_fields_are_not_relayed() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;

    alice
        .send(
            r#"{"type":"typing","from":"someone-else","seq":999,"html":"<script>","clientId":"a"}"#,
        )
        .await;
    let frame = bob.next().await;
    assert_eq!(
        frame,
        json!({"type": "typing", "clientId": "a", "from": alice.me, "seq": 3})
    );
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = spawn_app().await;
    let mut alice = Player::join(&server, "room-a").await;
    let mut bob = Player::join(&server, "room-b").await;

    alice
        .send(r#"{"type":"action","action":"SUBMITTED"}"#)
        .await;
    assert_eq!(alice.next().await["action"], "SUBMITTED");
    bob.send(r#"{"type":"action","action":"AC"}"#).await;
    let first_for_bob = bob.next().await;
    assert_eq!(first_for_bob["action"], "AC", "bob saw {first_for_bob}");
    assert_eq!(
        first_for_bob["seq"], 2,
        "each room counts its own frames: bob's join, then this"
    );
}

#[tokio::test]
async fn each_kind_of_invalid_frame_is_answered_not_relayed_and_the_connection_stays_usable() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    let invalid = [
        (Message::text("hello"), "invalid_json"),
        (Message::text("[1,2,3]"), "not_an_object"),
        (
            Message::text(r#"{"type":"chat","text":"hi"}"#),
            "unknown_type",
        ),
        (Message::text(r#"{"clientId":"x"}"#), "unknown_type"),
        (
            Message::text(r#"{"type":"action","action":"PWNED"}"#),
            "unknown_action",
        ),
        (
            Message::text(r#"{"type":"action","action":"FAILED_TC0"}"#),
            "unknown_action",
        ),
        (
            Message::text(r#"{"type":"typing","ts":"yesterday"}"#),
            "invalid_field",
        ),
        (Message::binary(vec![0x7b, 0x7d]), "binary_frame"),
    ];
    let count = invalid.len() as u64;

    for (message, code) in invalid {
        alice.send_message(message).await;
        let answer = alice.next().await;
        assert_eq!(answer["type"], "error", "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));

        alice.send(r#"{"type":"action","action":"WA"}"#).await;
        assert_eq!(alice.next().await["action"], "WA");
        let relayed = bob.next().await;
        assert_eq!(
            relayed["action"], "WA",
            "bob got {relayed} after a {code} frame"
        );
    }
    assert_eq!(server.stats.snapshot().frames_invalid, count);
}

/// The server reads a few hundred bytes at a time: a frame several times
/// that (still under the limit) arrives whole, and so does the next one.
#[tokio::test]
async fn a_frame_larger_than_a_read_arrives_whole_and_so_does_the_next() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;

    // The longest id (128 characters, 4 bytes each), and JSON's spaces.
    let long_id = "\u{1F600}".repeat(128);
    let padding = " ".repeat(2500);
    let long = format!(r#"{{"type":"action",{padding}"clientId":"{long_id}","action":"AC"}}"#);
    alice.send(&long).await;
    alice
        .send(r#"{"type":"action","clientId":"b","action":"WA"}"#)
        .await;
    let first = bob.next().await;
    assert_eq!(first["clientId"], long_id.as_str());
    assert_eq!(first["action"], "AC");
    assert_eq!(bob.next().await["action"], "WA");
    assert_eq!(server.stats.snapshot().frames_invalid, 0);
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_the_connection_with_1009() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;

    let huge = format!(r#"{{"type":"typing","clientId":"{}"}}"#, "x".repeat(5000));
    alice.send(&huge).await;
    let close = alice.closed().await.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Size);
    bob.expect_presence("reconnecting", &alice.me).await;

    bob.send(r#"{"type":"action","action":"AC"}"#).await;
    assert_eq!(bob.next().await["action"], "AC", "the room goes on");
    assert_eq!(server.stats.snapshot().oversized, 1);
}

#[tokio::test]
async fn the_socket_path_works_with_and_without_the_trailing_slash() {
    let server = spawn_app().await;
    let mut alice = Player::join_path(&server, "/ws/battle/duel/").await;
    let mut bob = Player::join_path(&server, "/ws/battle/duel").await;
    alice.expect_presence("join", &bob.me).await;
    bob.send(ORIGINAL_TYPING).await;
    assert_eq!(alice.next().await["from"], bob.me.as_str());
}

#[tokio::test]
async fn bad_room_names_are_refused_at_the_handshake() {
    let server = spawn_app().await;
    let too_long = format!("/ws/battle/{}/", "x".repeat(65));
    for path in [
        too_long.as_str(),
        "/ws/battle/a.b/",
        "/ws/battle/a%20b/",
        "/ws/battle/%C3%A9/",
        "/ws/battle//",
        "/ws/battle/a/b/",
    ] {
        let status = refused_handshake(&server, path).await;
        assert!((400..500).contains(&status), "{path} got {status}");
    }
    let ok = format!("/ws/battle/{}/", "x".repeat(64));
    Player::join_path(&server, &ok).await;
}

#[tokio::test]
async fn start_a_battle_redirects_to_a_fresh_battle_page() {
    let server = spawn_app().await;
    let (status, response) = http_get(&server, "/new").await;
    assert_eq!(status, 303);
    let location = response
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .expect("a location header");
    let id = location.strip_prefix("/battle/").expect("a battle page");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let (_, again) = http_get(&server, "/new").await;
    assert!(!again.contains(location), "each battle gets a new id");
}

#[tokio::test]
async fn the_lobbys_join_form_works_before_the_page_hydrates() {
    let server = spawn_app().await;
    let location = |response: &str| {
        response
            .lines()
            .find_map(|line| line.strip_prefix("location: "))
            .map(str::to_owned)
    };
    let (status, response) = http_get(
        &server,
        "/join?battle=https%3A%2F%2Fhost%2Fbattle%2Fduel-42",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location(&response).as_deref(), Some("/battle/duel-42"));
    let (_, response) = http_get(&server, "/join?battle=duel-42&name=+Ada+L%C3%B6f+").await;
    assert_eq!(
        location(&response).as_deref(),
        Some("/battle/duel-42?name=Ada%20L%C3%B6f"),
        "the name typed goes along, trimmed"
    );
    let (_, response) = http_get(&server, "/join?battle=duel-42&name=%0A").await;
    assert_eq!(
        location(&response).as_deref(),
        Some("/battle/duel-42"),
        "a name that breaks the rules is left behind"
    );
    let (status, response) = http_get(&server, "/join?battle=not+a+battle%21").await;
    assert_eq!(status, 303);
    let back = location(&response).expect("back to the lobby");
    assert_eq!(back, "/?invalid=not%20a%20battle%21");
    let (_, lobby) = http_get(&server, &back).await;
    assert!(
        lobby.contains("That is not a battle id or a battle link"),
        "the lobby explains: {lobby}"
    );
}

#[tokio::test]
async fn the_battle_page_is_rendered_on_the_server_with_the_original_ids() {
    let server = spawn_app().await;
    let (status, page) = http_get(&server, "/battle/duel-42").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="battleId""#), "{page}");
    assert!(page.contains(r#"value="duel-42""#), "{page}");
    assert!(page.contains(r#"id="opponentStatus""#));
    assert!(page.contains(">Waiting for an opponent<"));
    assert!(page.contains("Connecting..."));
    assert!(page.contains(r#"id="watchLink""#));

    let (_, watching) = http_get(&server, "/battle/duel-42?role=spectator").await;
    assert!(watching.contains(r#"id="player1Status""#), "{watching}");
    assert!(watching.contains(r#"id="player2Status""#));
    assert!(watching.contains(">Waiting for a player<"));
    assert!(
        !watching.contains(r#"id="editor""#),
        "spectators get no editor"
    );

    let (_, bad) = http_get(&server, "/battle/not.valid").await;
    assert!(bad.contains("No such battle"));
    let (status, _) = http_get(&server, "/nowhere").await;
    assert_eq!(status, 404);
}
