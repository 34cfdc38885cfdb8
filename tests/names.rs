//! Names and away, against the real server: stamped by the server, kept in
//! the room's snapshot (in process and through Redis), refused when they
//! break the rules, cleared when a connection drops, and rate-limited.

mod support;

use battle_status::server::token::Secret;
use support::{
    as_player, metric, metrics, player_token, refused_handshake, spawn_app, spawn_app_with,
    spawn_on_redis, Player, RedisServer,
};

const SECRET: &str = "a secret of at least sixteen bytes";

fn named(room: &str, key: &str, name: &str) -> String {
    let name: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{}&name={name}", as_player(room, key))
}

/// The member `id` of the snapshot in `welcome`.
fn member<'a>(welcome: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    welcome["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {welcome}"))
}

#[tokio::test]
async fn names_are_stamped_by_the_server_in_presence_snapshots_and_frames() {
    let server = spawn_app().await;
    let mut alice = Player::join_path(
        &server,
        &named("duel", "alice-tab-key-0001", " Ada <b>L</b> "),
    )
    .await;
    assert_eq!(member(&alice.welcome, &alice.me)["name"], "Ada <b>L</b>");
    let mut bob = Player::join_path(&server, &named("duel", "bob-tab-key-00001", "Grace")).await;
    let joined = alice.next_presence().await;
    assert_eq!(joined["member"]["name"], "Grace", "{joined}");
    assert_eq!(member(&bob.welcome, &alice.me)["name"], "Ada <b>L</b>");

    bob.send(r#"{"type":"action","action":"RUNNING","name":"Ada <b>L</b>","from":"x"}"#)
        .await;
    let relayed = alice.next().await;
    assert_eq!(
        relayed["name"], "Grace",
        "the forged name is not relayed: {relayed}"
    );
    assert_eq!(relayed["from"], bob.me.as_str());
    assert_eq!(bob.next().await["name"], "Grace");

    bob.send(r#"{"type":"name","name":"Grace H."}"#).await;
    let renamed = alice.next().await;
    assert_eq!(renamed["type"], "name", "{renamed}");
    assert_eq!(renamed["name"], "Grace H.");
    assert_eq!(renamed["from"], bob.me.as_str());
    bob.next().await;
    bob.send(r#"{"type":"typing"}"#).await;
    assert_eq!(
        alice.next().await["name"],
        "Grace H.",
        "the new name from now on"
    );

    let watcher = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
    assert_eq!(member(&watcher.welcome, &bob.me)["name"], "Grace H.");
}

#[tokio::test]
async fn bad_names_are_refused_at_the_handshake_and_in_frames_and_counted() {
    let server = spawn_app().await;
    for name in ["", "%20%20", "a%0Ab", "%E2%80%AEevil", &"x".repeat(33)] {
        let path = format!("{}&name={name}", as_player("duel", "alice-tab-key-0001"));
        assert_eq!(refused_handshake(&server, &path).await, 400, "{name:?}");
    }
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    for frame in [
        r#"{"type":"name","name":""}"#,
        r#"{"type":"name","name":"bell\u0007"}"#,
        r#"{"type":"name","name":["Ada"]}"#,
    ] {
        bob.send(frame).await;
        let answer = bob.next().await;
        assert_eq!(answer["type"], "error", "{frame}: {answer}");
        assert!(
            matches!(
                answer["code"].as_str(),
                Some("invalid_name" | "invalid_field")
            ),
            "{answer}"
        );
    }
    bob.send(r#"{"type":"action","action":"AC"}"#).await;
    let next = alice.next().await;
    assert_eq!(
        next["action"], "AC",
        "no bad name was relayed first: {next}"
    );
    let text = metrics(&server).await;
    assert_eq!(
        metric(&text, r#"battle_frames_received_total{kind="invalid"}"#),
        Some(3)
    );
}

#[tokio::test]
async fn a_tokens_name_wins_over_the_pages_and_cannot_be_changed() {
    let server =
        spawn_app_with(|config| config.token_secret = Some(Secret::new(SECRET).unwrap())).await;
    let token = player_token(SECRET, "duel", "host-app-player-0001", Some("Ada Lovelace"));
    let mut alice = Player::join_path(
        &server,
        &format!("/ws/battle/duel/?token={token}&name=Mallory"),
    )
    .await;
    assert_eq!(member(&alice.welcome, &alice.me)["name"], "Ada Lovelace");
    assert_eq!(alice.welcome["nameLocked"], true);
    alice.send(r#"{"type":"name","name":"Mallory"}"#).await;
    let answer = alice.next().await;
    assert_eq!(answer["code"], "name_locked", "{answer}");

    let token = player_token(SECRET, "duel", "host-app-player-0002", None);
    let bob = Player::join_path(&server, &format!("/ws/battle/duel/?token={token}&name=Bob")).await;
    assert_eq!(
        member(&bob.welcome, &bob.me)["name"],
        "Bob",
        "no name in the token: the page's"
    );
    assert_eq!(bob.welcome.get("nameLocked"), None);
}

#[tokio::test]
async fn away_is_relayed_kept_in_the_snapshot_and_cleared_when_the_connection_drops() {
    let server = spawn_app_with(|config| config.grace_ms = 60_000).await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    bob.send(r#"{"type":"away","away":true}"#).await;
    let away = alice.next().await;
    assert_eq!(away["type"], "away", "{away}");
    assert_eq!(away["away"], true);
    assert_eq!(away["from"], bob.me.as_str());

    let watcher = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
    assert!(
        member(&watcher.welcome, &bob.me)["awayMs"].is_u64(),
        "{}",
        watcher.welcome
    );
    assert_eq!(member(&watcher.welcome, &alice.me).get("awayMs"), None);
    alice.expect_presence("join", &watcher.me).await;

    let bob_id = bob.me.clone();
    bob.send_close_less_drop().await;
    let dropped = alice.next_presence().await;
    assert_eq!(dropped["event"], "reconnecting");
    let late = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
    let bob_now = member(&late.welcome, &bob_id);
    assert_eq!(bob_now["state"], "reconnecting");
    assert_eq!(
        bob_now.get("awayMs"),
        None,
        "a dropped player is not away: {bob_now}"
    );
}

#[tokio::test]
async fn away_frames_past_their_burst_are_refused_and_actions_still_pass() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    let mut refused = 0;
    for at in 0..12 {
        let away = at % 2 == 0;
        bob.send(&format!(r#"{{"type":"away","away":{away}}}"#))
            .await;
    }
    for _ in 0..12 {
        let frame = bob.next().await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "rate_limited", "{frame}");
            refused += 1;
        }
    }
    assert!(refused > 0, "a flood of away frames is limited");
    bob.send(r#"{"type":"action","action":"SUBMITTED"}"#).await;
    let submitted = alice.next_of("action").await;
    assert_eq!(submitted["action"], "SUBMITTED");
}

#[tokio::test]
async fn names_and_away_survive_in_a_rooms_snapshot_across_instances_on_redis() {
    let redis = RedisServer::start().await;
    let (one, two) = (spawn_on_redis(&redis).await, spawn_on_redis(&redis).await);
    let mut alice = Player::join_path(&one, &named("duel", "alice-tab-key-0001", "Ada")).await;
    let mut bob = Player::join_path(&two, &named("duel", "bob-tab-key-00001", "Grace")).await;
    alice.next_presence().await;
    bob.send(r#"{"type":"away","away":true}"#).await;
    bob.send(r#"{"type":"name","name":"Grace H."}"#).await;
    assert_eq!(alice.next().await["type"], "away");
    assert_eq!(alice.next().await["name"], "Grace H.");

    let watcher = Player::join_path(&one, "/ws/battle/duel/?role=spectator").await;
    let grace = member(&watcher.welcome, &bob.me);
    assert_eq!(grace["name"], "Grace H.");
    assert!(grace["awayMs"].is_u64(), "{grace}");
    assert_eq!(member(&watcher.welcome, &alice.me)["name"], "Ada");
    alice.expect_presence("join", &watcher.me).await;

    bob.send(r#"{"type":"away","away":false}"#).await;
    assert_eq!(alice.next().await["away"], false);
    let late = Player::join_path(&two, "/ws/battle/duel/?role=spectator").await;
    assert_eq!(member(&late.welcome, &bob.me).get("awayMs"), None);
}
