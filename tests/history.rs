//! A room's history, on both backplanes: a late joiner sees the battle so
//! far, a page that comes back with `since` gets exactly what it missed,
//! once, in order, and is told when the history cannot reach back.

mod support;

use serde_json::Value;
use support::{as_player, metric, metrics, Fleet, Player, RedisServer, TestServer, PATIENCE};

const ALICE_KEY: &str = "alice-tab-key-0001";
const BOB_KEY: &str = "bob-tab-key-000002";

/// The frames of a welcome's history.
fn history(welcome: &Value) -> Vec<Value> {
    welcome["history"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["frame"].clone()).collect())
        .unwrap_or_default()
}

/// The actions among `frames`, as their codes.
fn actions(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "action")
        .map(|f| f["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn act(player: &mut Player, action: &str) {
    player
        .send(&format!(r#"{{"type":"action","action":"{action}"}}"#))
        .await;
}

/// Sends `action` and waits until it comes back numbered; the other
/// player's frames still on their way are passed over.
async fn act_and_wait(player: &mut Player, action: &str) {
    act(player, action).await;
    while player.next_of("action").await["action"] != action {}
}

async fn recoveries(server: &TestServer, outcome: &str) -> u64 {
    let series = format!("battle_recoveries_total{{outcome=\"{outcome}\"}}");
    metric(&metrics(server).await, &series).unwrap_or(0)
}

#[tokio::test]
async fn in_process_a_late_spectator_sees_the_battle_so_far_in_order() {
    a_late_spectator_sees_the_battle_so_far_in_order(Fleet::in_process()).await;
}

#[tokio::test]
async fn over_redis_a_late_spectator_sees_the_battle_so_far_in_order() {
    a_late_spectator_sees_the_battle_so_far_in_order(Fleet::redis().await).await;
}

async fn a_late_spectator_sees_the_battle_so_far_in_order(fleet: Fleet) {
    let (a, b, c) = (
        fleet.spawn().await,
        fleet.spawn().await,
        fleet.spawn().await,
    );
    let mut alice = Player::join_path(&a, &as_player("duel", ALICE_KEY)).await;
    let mut bob = Player::join_path(&b, &as_player("duel", BOB_KEY)).await;
    act_and_wait(&mut alice, "RUNNING").await;
    act_and_wait(&mut bob, "FAILED_TC3").await;
    act_and_wait(&mut alice, "AC").await;
    bob.send(r#"{"type":"typing"}"#).await;
    let watcher = Player::join_path(&c, "/ws/battle/duel/?role=spectator").await;
    let frames = history(&watcher.welcome);
    assert_eq!(
        actions(&frames),
        ["RUNNING", "FAILED_TC3", "AC"],
        "{frames:?}"
    );
    assert!(
        frames.iter().all(|f| f["type"] != "typing"),
        "no typing pings"
    );
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert!(
        seqs.iter()
            .all(|s| *s <= watcher.welcome["seq"].as_u64().unwrap()),
        "nothing after the snapshot"
    );
    assert_eq!(frames[0]["event"], "join", "presence is history too");
    assert!(watcher.welcome["history"][0]["at"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(watcher.welcome.get("recovered"), None, "nothing was asked");
}

#[tokio::test]
async fn in_process_a_returning_player_gets_exactly_what_it_missed_once_in_order() {
    a_returning_player_gets_exactly_what_it_missed_once_in_order(Fleet::in_process()).await;
}

#[tokio::test]
async fn over_redis_a_returning_player_gets_exactly_what_it_missed_once_in_order() {
    a_returning_player_gets_exactly_what_it_missed_once_in_order(Fleet::redis().await).await;
}

async fn a_returning_player_gets_exactly_what_it_missed_once_in_order(fleet: Fleet) {
    let (a, b) = (fleet.spawn().await, fleet.spawn().await);
    let mut alice = Player::join_path(&a, &as_player("duel", ALICE_KEY)).await;
    let mut bob = Player::join_path(&b, &as_player("duel", BOB_KEY)).await;
    act(&mut bob, "RUNNING").await;
    let seen = alice.next_of("action").await["seq"].as_u64().unwrap();
    alice.send_close_less_drop().await;
    let missed = ["FAILED_TC3", "TLE", "WA"];
    for action in missed {
        act_and_wait(&mut bob, action).await;
    }
    // The opponent keeps acting while the page comes back.
    let during = async {
        for action in ["AC", "RUN_COMPLETE"] {
            act(&mut bob, action).await;
        }
    };
    let path = format!("{}&since={seen}", as_player("duel", ALICE_KEY));
    let (alice, ()) = tokio::join!(Player::join_path(&b, &path), during);
    let mut alice = alice;
    assert_eq!(alice.welcome["recovered"], true, "{}", alice.welcome);
    let recovered = history(&alice.welcome);
    assert!(recovered.iter().all(|f| f["seq"].as_u64().unwrap() > seen));
    let mut got = actions(&recovered);
    while got.len() < missed.len() + 2 {
        got.push(
            alice.next_of("action").await["action"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        got,
        ["FAILED_TC3", "TLE", "WA", "AC", "RUN_COMPLETE"],
        "once each, in order"
    );
    act(&mut bob, "SUBMITTED").await;
    assert_eq!(
        alice.next_of("action").await["action"],
        "SUBMITTED",
        "then live, nothing else"
    );
    assert_eq!(recoveries(&b, "recovered").await, 1);
}

/// A server whose rooms keep three events, and Bob playing in "duel".
async fn bob_in_a_history_of_three(fleet: &Fleet) -> (TestServer, Player) {
    let short = |config: &mut battle_status::server::config::Config| config.history_len = 3;
    let server = fleet.spawn_with(short).await;
    let bob = Player::join_path(&server, &as_player("duel", BOB_KEY)).await;
    (server, bob)
}

#[tokio::test]
async fn in_process_an_audience_coming_and_going_leaves_the_battle_in_the_history() {
    an_audience_coming_and_going_leaves_the_battle_in_the_history(Fleet::in_process()).await;
}

#[tokio::test]
async fn over_redis_an_audience_coming_and_going_leaves_the_battle_in_the_history() {
    an_audience_coming_and_going_leaves_the_battle_in_the_history(Fleet::redis().await).await;
}

/// Watchers come and go more often than a history of three events holds.
async fn an_audience_coming_and_going_leaves_the_battle_in_the_history(fleet: Fleet) {
    let (server, mut bob) = bob_in_a_history_of_three(&fleet).await;
    act_and_wait(&mut bob, "RUNNING").await;
    for _ in 0..3 {
        let watcher = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
        let id = watcher.me.clone();
        bob.expect_presence("join", &id).await;
        watcher.close(1000).await;
        bob.expect_presence("leave", &id).await;
    }
    let late = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
    let kept = history(&late.welcome);
    assert_eq!(kept.len(), 2, "bob's join and his action: {kept:?}");
    assert_eq!(
        (&kept[0]["event"], &kept[0]["member"]["id"]),
        (&"join".into(), &bob.me.as_str().into())
    );
    assert_eq!(actions(&kept), ["RUNNING"]);
    let since = kept[1]["seq"].as_u64().unwrap();
    let back = Player::join_path(
        &server,
        &format!("/ws/battle/duel/?role=spectator&since={since}"),
    )
    .await;
    assert_eq!(back.welcome["recovered"], true, "{}", back.welcome);
    assert!(
        history(&back.welcome).is_empty(),
        "nothing of the battle since"
    );
}

#[tokio::test]
async fn in_process_a_since_the_history_cannot_reach_is_said_so_with_the_snapshot() {
    a_since_the_history_cannot_reach_is_said_so_with_the_snapshot(Fleet::in_process()).await;
}

#[tokio::test]
async fn over_redis_a_since_the_history_cannot_reach_is_said_so_with_the_snapshot() {
    a_since_the_history_cannot_reach_is_said_so_with_the_snapshot(Fleet::redis().await).await;
}

async fn a_since_the_history_cannot_reach_is_said_so_with_the_snapshot(fleet: Fleet) {
    let (server, mut bob) = bob_in_a_history_of_three(&fleet).await;
    for action in ["RUNNING", "FAILED_TC1", "FAILED_TC2", "TLE", "AC"] {
        act_and_wait(&mut bob, action).await;
    }
    let late = Player::join_path(&server, "/ws/battle/duel/?role=spectator&since=1").await;
    assert_eq!(late.welcome["recovered"], false, "{}", late.welcome);
    let kept = history(&late.welcome);
    assert_eq!(
        actions(&kept),
        ["FAILED_TC2", "TLE", "AC"],
        "the last three events (a spectator's join is not one)"
    );
    assert_eq!(
        late.welcome["members"][0]["lastAction"], "AC",
        "the snapshot is the truth"
    );
    assert_eq!(recoveries(&server, "not_recovered").await, 1);

    for (since, why) in [
        ("banana", "not a sequence number"),
        ("-4", "not a sequence number"),
        ("999", "after"),
    ] {
        let mut page = Player::join_path(
            &server,
            &format!("/ws/battle/duel/?role=spectator&since={since}"),
        )
        .await;
        assert_eq!(page.welcome["recovered"], false, "{since}");
        let error = page.next().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], "invalid_since");
        assert!(error["message"].as_str().unwrap().contains(why), "{error}");
    }
    assert_eq!(recoveries(&server, "invalid").await, 3);
}

#[tokio::test]
async fn a_rooms_history_goes_with_the_room() {
    let redis = RedisServer::start().await;
    let fleet_server = support::spawn_on_redis(&redis).await;
    let mut alice = Player::join_path(&fleet_server, &as_player("gone", ALICE_KEY)).await;
    act_and_wait(&mut alice, "RUNNING").await;
    alice.close(1000).await;
    // The server answers the close at once and lets the room go after.
    let no_key_left = || async {
        let answer = redis
            .query(&["EXISTS", "battle:room:gone:log", "battle:room:gone"])
            .await;
        redis::from_redis_value::<u64>(answer).unwrap() == 0
    };
    support::until(PATIENCE, no_key_left, "no key is left of an empty room").await;

    let in_process = support::spawn_app().await;
    let mut alice = Player::join_path(&in_process, &as_player("gone", ALICE_KEY)).await;
    act_and_wait(&mut alice, "RUNNING").await;
    alice.close(1000).await;
    // Until the server has heard her leave, a spectator still finds her.
    let alone = async {
        loop {
            let page = Player::join_path(&in_process, "/ws/battle/gone/?role=spectator").await;
            if page.welcome["members"].as_array().map(Vec::len) == Some(1) {
                return page;
            }
            page.close(1000).await;
        }
    };
    let again = tokio::time::timeout(PATIENCE, alone)
        .await
        .expect("the room empties once she left");
    assert_eq!(
        (history(&again.welcome).len(), &again.welcome["seq"]),
        (0, &1.into()),
        "a room that starts again, its own join its first frame: {}",
        again.welcome
    );
}
