//! Roles, seats, presence, snapshots, liveness and shutdown, against the
//! real server on port 0 with real WebSocket clients.

mod support;

use std::{num::NonZeroU32, time::Duration};

use support::{as_player, refused_handshake, spawn_app, spawn_app_with, Player};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

const TYPING: &str = r#"{"type":"typing"}"#;

const ALICE_KEY: &str = "alice-tab-key-0001";

fn as_spectator(room: &str) -> String {
    format!("/ws/battle/{room}/?role=spectator")
}

#[tokio::test]
async fn a_third_player_is_turned_away_with_4501_but_may_watch() {
    let server = spawn_app().await;
    let (_alice, _bob) = Player::pair(&server, "duel").await;

    let mut third = Player::connect(&server, "/ws/battle/duel/").await;
    let close = Player::closed_stream(&mut third).await;
    assert_eq!(u16::from(close.code), 4501);
    assert_eq!(close.reason.as_str(), "room full");

    let watcher = Player::join_path(&server, &as_spectator("duel")).await;
    assert_eq!(watcher.welcome["role"], "spectator");
    assert_eq!(watcher.welcome["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn spectators_are_capped_per_room() {
    let server = spawn_app_with(|config| config.max_spectators = 1).await;
    let _first = Player::join_path(&server, &as_spectator("duel")).await;
    let mut second = Player::connect(&server, &as_spectator("duel")).await;
    let close = Player::closed_stream(&mut second).await;
    assert_eq!(u16::from(close.code), 4502);
    Player::join(&server, "duel").await;
}

#[tokio::test]
async fn a_spectator_cannot_send_typing_or_actions() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    let mut watcher = Player::join_path(&server, &as_spectator("duel")).await;
    alice.expect_presence("join", &watcher.me).await;
    bob.expect_presence("join", &watcher.me).await;

    for frame in [r#"{"type":"typing"}"#, r#"{"type":"action","action":"AC"}"#] {
        watcher.send(frame).await;
        let answer = watcher.next().await;
        assert_eq!(answer["code"], "spectator", "{answer}");
    }
    alice.send(r#"{"type":"action","action":"WA"}"#).await;
    let next = bob.next().await;
    assert_eq!(
        next["action"], "WA",
        "nothing from the spectator came first: {next}"
    );
    assert_eq!(
        watcher.next().await["action"],
        "WA",
        "spectators see the players"
    );
}

#[tokio::test]
async fn a_clean_close_tells_the_room_the_player_left() {
    let server = spawn_app().await;
    let (mut alice, bob) = Player::pair(&server, "duel").await;
    let bob_id = bob.me.clone();
    bob.close(1000).await;
    alice.expect_presence("leave", &bob_id).await;
}

#[tokio::test]
async fn a_late_joiner_gets_the_last_actions_and_who_is_typing() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    alice
        .send(r#"{"type":"action","action":"FAILED_TC4"}"#)
        .await;
    bob.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    bob.send(r#"{"type":"typing"}"#).await;
    for _ in 0..3 {
        alice.next().await;
    }

    let watcher = Player::join_path(&server, &as_spectator("duel")).await;
    let members = watcher.welcome["members"].as_array().unwrap();
    let find = |id: &str| members.iter().find(|m| m["id"] == id).unwrap().clone();
    let (a, b) = (find(&alice.me), find(&bob.me));
    assert_eq!(a["role"], "player");
    assert_eq!(a["state"], "online");
    assert_eq!(a["lastAction"], "FAILED_TC4");
    assert_eq!(a["typingMs"], 0);
    assert_eq!(b["lastAction"], "RUNNING");
    let typing_ms = b["typingMs"].as_u64().unwrap();
    assert!(
        (1..=2500).contains(&typing_ms),
        "bob is typing: {typing_ms}"
    );
    assert_eq!(
        watcher.welcome["seq"], 6,
        "two joins, three frames and the watcher's own join"
    );
}

#[tokio::test]
async fn a_player_back_within_the_grace_period_is_the_same_player() {
    let server = spawn_app().await;
    let mut bob = Player::join(&server, "duel").await;
    let alice = Player::join_path(&server, &as_player("duel", ALICE_KEY)).await;
    let alice_id = alice.me.clone();
    bob.expect_presence("join", &alice_id).await;
    alice.send_close_less_drop().await;
    bob.expect_presence("reconnecting", &alice_id).await;

    let mut alice = Player::join_path(&server, &as_player("duel", ALICE_KEY)).await;
    assert_eq!(alice.me, alice_id);
    assert_eq!(alice.welcome["resumed"], true);
    bob.expect_presence("resume", &alice_id).await;
    alice.send(r#"{"type":"action","action":"AC"}"#).await;
    let next = bob.next().await;
    assert_eq!(next["action"], "AC", "no leave or join in between: {next}");
    assert_eq!(next["from"], alice_id.as_str());
}

#[tokio::test]
async fn a_player_not_back_within_the_grace_period_leaves() {
    let server = spawn_app_with(|config| config.grace_ms = 300).await;
    let (mut alice, bob) = Player::pair(&server, "duel").await;
    let bob_id = bob.me.clone();
    bob.send_close_less_drop().await;
    alice.expect_presence("reconnecting", &bob_id).await;
    alice.expect_presence("leave", &bob_id).await;
}

#[tokio::test]
async fn a_connection_that_stops_answering_pings_is_dropped() {
    let server = spawn_app_with(|config| {
        config.heartbeat_ms = 50;
        config.heartbeat_timeout_ms = 100;
    })
    .await;
    let mut alice = Player::join(&server, "duel").await;
    // A client that never reads never answers pings.
    let silent = Player::connect(&server, "/ws/battle/duel/").await;
    let presence = alice.next_presence().await;
    assert_eq!(presence["event"], "join");
    let silent_id = presence["member"]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.next_presence().await["event"], "reconnecting");
    assert_eq!(
        alice.last_presence_member(),
        silent_id,
        "the silent one was dropped, not alice, who answers"
    );
    drop(silent);
}

#[tokio::test]
async fn the_server_sends_heartbeats() {
    let server = spawn_app_with(|config| config.heartbeat_ms = 20).await;
    let mut alice = Player::join(&server, "duel").await;
    assert_eq!(alice.next_raw().await["type"], "heartbeat");
}

/// A battle in play keeps its sockets alive by itself: while both players
/// type, neither is sent a heartbeat frame or a ping; once the room goes
/// quiet, both get heartbeats again, and neither is dropped for silence
/// although their last pings were skipped.
#[tokio::test]
async fn players_in_play_get_no_heartbeats_or_pings_and_stay_connected_once_quiet() {
    let server = spawn_app_with(|config| {
        config.heartbeat_ms = 500;
        config.heartbeat_timeout_ms = 500;
        config.rates.typing_per_sec = NonZeroU32::new(1_000).unwrap();
        config.rates.typing_burst = NonZeroU32::new(1_000).unwrap();
    })
    .await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    // Three heartbeat periods of typing, a ping each 20 ms from both.
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..75 {
        pace.tick().await;
        alice.send(TYPING).await;
        bob.send(TYPING).await;
        for player in [&mut alice, &mut bob] {
            for _ in 0..2 {
                match player.next_any().await {
                    Message::Text(text) => assert!(text.contains(r#""type":"typing""#), "{text}"),
                    other => panic!("a socket in play was sent {other:?}"),
                }
            }
        }
    }
    // Both read at once: a socket not read answers no ping. Each player is
    // kept until both have read theirs: one that left first would be
    // announced to the other, whose heartbeats may come a little later.
    let heartbeats = |mut player: Player| async move {
        for _ in 0..3 {
            let frame = player.next_raw().await;
            assert_eq!(frame["type"], "heartbeat", "{frame}");
        }
        player
    };
    let _players = tokio::join!(heartbeats(alice), heartbeats(bob));
}

#[tokio::test]
async fn the_same_key_in_a_second_tab_takes_the_seat_and_closes_the_first_with_4503() {
    let server = spawn_app().await;
    let mut first = Player::join_path(&server, &as_player("duel", ALICE_KEY)).await;
    let second = Player::join_path(&server, &as_player("duel", ALICE_KEY)).await;
    assert_eq!(second.me, first.me);
    let close = first.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4503);
}

#[tokio::test]
async fn bad_roles_and_player_keys_are_refused_at_the_handshake() {
    let server = spawn_app().await;
    for path in [
        "/ws/battle/duel/?role=admin",
        "/ws/battle/duel/?player=short",
        "/ws/battle/duel/?player=has%20spaces%20in%20it%20here",
    ] {
        assert_eq!(refused_handshake(&server, path).await, 400, "{path}");
    }
}

#[tokio::test]
async fn shutting_down_closes_every_socket_with_1001() {
    let mut server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    let mut other = Player::join(&server, "elsewhere").await;
    let shutdown = async { server.shut_down().await };
    let closes = async {
        let mut codes = Vec::new();
        for player in [&mut alice, &mut bob, &mut other] {
            codes.push(player.closed().await.expect("a close frame").code);
        }
        codes
    };
    let ((), codes) = tokio::join!(shutdown, closes);
    assert_eq!(codes, [CloseCode::Away; 3]);
}
