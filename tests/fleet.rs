//! Several instances sharing rooms, through a private Redis server and
//! through one in-process bus: frames, presence and snapshots across
//! instances, a Redis outage, and the judge's verdicts. Every instance is
//! the real server on port 0.

mod support;

use std::num::NonZeroU32;

use battle_status::server::token::Secret;
use serde_json::Value;
use support::{
    as_player, http_get, metrics, post_verdict, spawn_app_with, spawn_isolated, spawn_on_redis,
    spawn_on_redis_with, wait_for_readiness, Fleet, Player, RedisServer,
};

const ALICE_KEY: &str = "alice-tab-key-0001";
const BOB_KEY: &str = "bob-tab-key-000002";

/// The action frames `player` receives until it has seen `last` from each
/// of `senders`.
async fn actions_until(player: &mut Player, senders: &[&str], last: &str) -> Vec<Value> {
    let mut frames: Vec<Value> = Vec::new();
    while !senders.iter().all(|sender| {
        frames
            .iter()
            .any(|f| f["from"] == *sender && f["action"] == last)
    }) {
        frames.push(player.next_of("action").await);
    }
    frames
}

const JUDGE_SECRET: &str = "judge-secret-0123456789";

/// The value of `name` in the metrics `text`; panics if it is not there.
fn metric(text: &str, name: &str) -> u64 {
    support::metric(text, name).unwrap_or_else(|| panic!("no {name} in the metrics"))
}

#[tokio::test]
async fn players_on_three_instances_share_a_room_over_redis() {
    players_on_three_instances_share_a_room(Fleet::redis().await).await;
}

#[tokio::test]
async fn players_on_three_instances_share_a_room_in_process() {
    players_on_three_instances_share_a_room(Fleet::in_process()).await;
}

async fn players_on_three_instances_share_a_room(fleet: Fleet) {
    let (a, b, c) = (
        fleet.spawn().await,
        fleet.spawn().await,
        fleet.spawn().await,
    );
    let mut alice = Player::join_path(&a, &as_player("duel", ALICE_KEY)).await;
    let mut bob = Player::join_path(&b, &as_player("duel", BOB_KEY)).await;
    alice.expect_presence("join", &bob.me).await;
    assert_eq!(bob.welcome["members"].as_array().unwrap().len(), 2);

    bob.send(r#"{"type":"typing","clientId":"b"}"#).await;
    let typing = alice.next().await;
    assert_eq!(typing["type"], "typing", "{typing}");
    assert_eq!(typing["from"], bob.me.as_str());
    alice
        .send(r#"{"type":"action","action":"WA","clientId":"a","ts":17}"#)
        .await;
    assert_eq!(bob.next_of("action").await["action"], "WA");
    let echo = alice.next_of("action").await;
    assert_eq!(
        echo["from"],
        alice.me.as_str(),
        "the sender sees its own frame"
    );

    let mut watcher = Player::join_path(&c, "/ws/battle/duel/?role=spectator").await;
    let members = watcher.welcome["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 3, "{members:?}");
    assert_eq!(members[0]["id"], alice.me.as_str());
    assert_eq!(members[0]["lastAction"], "WA");
    assert!(members[1]["typingMs"].as_u64().unwrap() > 0, "{members:?}");
    alice.expect_presence("join", &watcher.me).await;

    let bob_id = bob.me.clone();
    bob.send_close_less_drop().await;
    alice.expect_presence("reconnecting", &bob_id).await;
    watcher.expect_presence("reconnecting", &bob_id).await;
    let mut bob = Player::join_path(&c, &as_player("duel", BOB_KEY)).await;
    assert_eq!(bob.me, bob_id, "the same member, on another instance");
    assert_eq!(bob.welcome["resumed"], true);
    alice.expect_presence("resume", &bob_id).await;

    bob.send(r#"{"type":"action","action":"AC"}"#).await;
    let action = alice.next_of("action").await;
    assert_eq!(
        (action["from"].as_str(), action["action"].as_str()),
        (Some(bob_id.as_str()), Some("AC"))
    );
    bob.close(1000).await;
    alice.expect_presence("leave", &bob_id).await;
}

#[tokio::test]
async fn over_redis_no_frame_arrives_twice_and_each_senders_order_is_kept() {
    no_frame_arrives_twice_and_each_senders_order_is_kept(Fleet::redis().await).await;
}

#[tokio::test]
async fn in_process_no_frame_arrives_twice_and_each_senders_order_is_kept() {
    no_frame_arrives_twice_and_each_senders_order_is_kept(Fleet::in_process()).await;
}

async fn no_frame_arrives_twice_and_each_senders_order_is_kept(fleet: Fleet) {
    let fast = |config: &mut battle_status::server::config::Config| {
        config.rates.actions_per_sec = NonZeroU32::new(1_000).unwrap();
        config.rates.actions_burst = NonZeroU32::new(1_000).unwrap();
    };
    let a = fleet.spawn_with(fast).await;
    let b = fleet.spawn_with(fast).await;
    let mut alice = Player::join(&a, "order").await;
    let mut bob = Player::join(&b, "order").await;
    alice.expect_presence("join", &bob.me).await;

    for n in 1..=40 {
        alice
            .send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
        bob.send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
    }
    let (alice_id, bob_id) = (alice.me.clone(), bob.me.clone());
    let expected: Vec<String> = (1..=40).map(|n| format!("FAILED_TC{n}")).collect();
    for reader in [&mut alice, &mut bob] {
        let frames = actions_until(reader, &[&alice_id, &bob_id], "FAILED_TC40").await;
        let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in seq order, none twice: {seqs:?}"
        );
        for sender in [&alice_id, &bob_id] {
            let sent: Vec<&str> = frames
                .iter()
                .filter(|f| f["from"] == sender.as_str())
                .map(|f| f["action"].as_str().unwrap())
                .collect();
            assert_eq!(sent, expected, "every frame of {sender}, once, in order");
        }
    }
}

#[tokio::test]
async fn a_redis_outage_keeps_single_instance_rooms_working_and_cross_instance_rooms_resume() {
    let mut redis = RedisServer::start().await;
    let a = spawn_on_redis(&redis).await;
    let b = spawn_on_redis(&redis).await;
    let (mut alice, mut bob) = Player::pair(&a, "solo").await;
    let mut carol = Player::join(&a, "split").await;
    let mut dave = Player::join(&b, "split").await;
    carol.expect_presence("join", &dave.me).await;

    redis.kill().await;
    wait_for_readiness(&a, 503).await;
    wait_for_readiness(&b, 503).await;
    let (status, body) = http_get(&a, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("degraded"), "{body}");

    bob.send(r#"{"type":"typing"}"#).await;
    assert_eq!(alice.next_of("typing").await["from"], bob.me.as_str());
    alice.send(r#"{"type":"action","action":"TLE"}"#).await;
    let during = bob.next_of("action").await;
    assert_eq!(during["action"], "TLE", "the room on one instance works");
    carol.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    assert_eq!(carol.next_of("action").await["action"], "RUNNING");
    assert!(metric(&metrics(&a).await, "battle_backplane_publish_errors_total") >= 3);
    assert_eq!(metric(&metrics(&a).await, "battle_backplane_up"), 0);

    redis.restart().await;
    wait_for_readiness(&a, 200).await;
    wait_for_readiness(&b, 200).await;
    let text = metrics(&a).await;
    assert_eq!(metric(&text, "battle_backplane_reconnects_total"), 1);
    assert_eq!(metric(&text, "battle_backplane_up"), 1);

    let snapshot = bob.next_of("snapshot").await;
    assert!(snapshot["seq"].as_u64().unwrap() > during["seq"].as_u64().unwrap());
    let alice_state = snapshot["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == alice.me.as_str())
        .cloned()
        .expect("alice is still in the room");
    assert_eq!(
        alice_state["lastAction"], "TLE",
        "what happened in the outage"
    );

    loop {
        let snapshot = dave.next_of("snapshot").await;
        let members = snapshot["members"].as_array().unwrap();
        if members
            .iter()
            .any(|m| m["id"] == carol.me.as_str() && m["lastAction"] == "RUNNING")
        {
            break;
        }
    }
    carol.send(r#"{"type":"action","action":"MLE"}"#).await;
    let across = dave.next_of("action").await;
    assert_eq!(across["action"], "MLE", "delivery across instances resumed");
    assert_eq!(across["from"], carol.me.as_str());
    dave.send(r#"{"type":"action","action":"AC"}"#).await;
    let frames = actions_until(&mut carol, &[&dave.me], "AC").await;
    let mines: Vec<&Value> = frames
        .iter()
        .filter(|f| f["from"] == carol.me.as_str())
        .collect();
    assert_eq!(
        mines.len(),
        1,
        "carol's own action came back once: {frames:?}"
    );
    let late = Player::join_path(&b, "/ws/battle/split/?role=spectator").await;
    assert_eq!(
        late.welcome["members"].as_array().unwrap().len(),
        3,
        "both players were seated again in the restarted redis: {}",
        late.welcome
    );
}

#[tokio::test]
async fn frames_cross_instances_after_redis_forgets_its_scripts() {
    let redis = RedisServer::start().await;
    let a = spawn_on_redis(&redis).await;
    let b = spawn_on_redis(&redis).await;
    let mut carol = Player::join(&a, "split").await;
    let mut dave = Player::join(&b, "split").await;
    carol.expect_presence("join", &dave.me).await;
    carol.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    assert_eq!(dave.next_of("action").await["action"], "RUNNING");

    // What a failover to a replica, or an operator's flush, leaves.
    redis.query(&["SCRIPT", "FLUSH"]).await;
    carol.send(r#"{"type":"action","action":"MLE"}"#).await;
    let across = dave.next_of("action").await;
    assert_eq!(across["action"], "MLE", "the script is loaded again");
    assert_eq!(across["from"], carol.me.as_str());
    assert_eq!(
        metric(&metrics(&a).await, "battle_backplane_publish_errors_total"),
        0
    );
}

#[tokio::test]
async fn an_instance_started_before_redis_is_degraded_until_redis_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let server = spawn_app_with(|config| {
        config.redis_url = Some(url);
        config.publish_secret = Some(Secret::new(JUDGE_SECRET).unwrap());
    })
    .await;
    let (status, body) = http_get(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let mut refused = Player::connect(&server, "/ws/battle/early/").await;
    let close = Player::closed_stream(&mut refused).await;
    assert_eq!(u16::from(close.code), 1001, "try again later");
    let verdict = format!(r#"{{"player":"{ALICE_KEY}","action":"AC"}}"#);
    let (status, response) = post_verdict(&server, "early", JUDGE_SECRET, &verdict).await;
    assert_eq!(status, 503, "the judge should retry: {response}");

    let _redis = RedisServer::start_on(port).await;
    wait_for_readiness(&server, 200).await;
    Player::pair(&server, "early").await;
}

#[tokio::test]
async fn over_redis_a_judges_verdict_reaches_pages_on_every_instance() {
    a_judges_verdict_reaches_pages_on_every_instance(Fleet::redis().await).await;
}

#[tokio::test]
async fn in_process_a_judges_verdict_reaches_pages_on_every_instance() {
    a_judges_verdict_reaches_pages_on_every_instance(Fleet::in_process()).await;
}

async fn a_judges_verdict_reaches_pages_on_every_instance(fleet: Fleet) {
    let judge = |config: &mut battle_status::server::config::Config| {
        config.publish_secret = Some(Secret::new(JUDGE_SECRET).unwrap());
    };
    let a = fleet.spawn_with(judge).await;
    let b = fleet.spawn_with(judge).await;
    let mut alice = Player::join_path(&a, &as_player("duel", ALICE_KEY)).await;
    let mut bob = Player::join(&b, "duel").await;
    alice.expect_presence("join", &bob.me).await;

    let unknown = format!(r#"{{"player":"{BOB_KEY}","action":"AC"}}"#);
    let (status, response) = post_verdict(&b, "duel", JUDGE_SECRET, &unknown).await;
    assert_eq!(status, 404, "nobody holds that key: {response}");
    let verdict = format!(r#"{{"player":"{ALICE_KEY}","action":"FAILED_TC7"}}"#);
    let (status, response) = post_verdict(&b, "duel", JUDGE_SECRET, &verdict).await;
    assert_eq!(status, 202, "{response}");
    let alice_id = alice.me.clone();
    for player in [&mut alice, &mut bob] {
        let verdict = player.next_of("action").await;
        assert_eq!(verdict["action"], "FAILED_TC7");
        assert_eq!(verdict["from"], alice_id.as_str());
        assert_eq!(verdict["judge"], true);
    }

    // Through an instance that serves nobody in the room: over Redis, the
    // room's only instance numbers its frames itself and hands it over.
    let mut ada = Player::join_path(&a, &as_player("solo", ALICE_KEY)).await;
    let mut grace = Player::join_path(&a, &as_player("solo", BOB_KEY)).await;
    ada.expect_presence("join", &grace.me).await;
    grace.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    let running = ada.next_of("action").await;
    assert_eq!(grace.next_of("action").await["seq"], running["seq"]);
    let verdict = format!(r#"{{"player":"{ALICE_KEY}","action":"AC"}}"#);
    let (status, response) = post_verdict(&b, "solo", JUDGE_SECRET, &verdict).await;
    assert_eq!(status, 202, "{response}");
    let ada_id = ada.me.clone();
    for player in [&mut ada, &mut grace] {
        let accepted = player.next_of("action").await;
        assert_eq!(accepted["action"], "AC");
        assert_eq!(accepted["from"], ada_id.as_str());
        assert_eq!(
            accepted["seq"].as_u64(),
            running["seq"].as_u64().map(|seq| seq + 1),
            "numbered after the room's last frame"
        );
    }
}

#[tokio::test]
async fn the_seat_of_a_player_whose_instance_shut_down_is_freed_by_another_instance() {
    let redis = RedisServer::start().await;
    // Longer than instance b takes to shut down, so that its own timer dies
    // with it.
    let short_grace = |config: &mut battle_status::server::config::Config| config.grace_ms = 1_500;
    let a = spawn_on_redis_with(&redis, short_grace).await;
    let url = redis.url();
    let mut b = spawn_isolated(|config| {
        short_grace(config);
        config.redis_url = Some(url);
    })
    .await;
    wait_for_readiness(&b, 200).await;
    let mut alice = Player::join(&a, "deploy").await;
    let mut bob = Player::join(&b, "deploy").await;
    alice.expect_presence("join", &bob.me).await;

    let ((), close) = tokio::join!(b.shut_down(), bob.closed_and_answered());
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    alice.expect_presence("reconnecting", &bob.me).await;
    alice.expect_presence("leave", &bob.me).await;
}

/// The rooms some instance is subscribed to, sorted.
async fn subscribed_rooms(redis: &RedisServer) -> Vec<String> {
    let channels: Vec<String> =
        redis::from_redis_value(redis.query(&["PUBSUB", "CHANNELS"]).await).unwrap();
    let mut rooms: Vec<String> = channels
        .into_iter()
        .filter_map(|c| c.strip_prefix("battle:room:").map(str::to_owned))
        .collect();
    rooms.sort();
    rooms
}

/// Nothing a shared room keeps in Redis outlives it: its hash and its
/// history expire once no instance serves the room (frames write to the
/// hash without giving it its TTL again: the seats' commits do).
#[tokio::test]
async fn every_key_of_a_shared_room_in_redis_has_a_ttl() {
    let redis = RedisServer::start().await;
    let (a, b) = (spawn_on_redis(&redis).await, spawn_on_redis(&redis).await);
    let mut alice = Player::join_path(&a, &as_player("ttl", ALICE_KEY)).await;
    let mut bob = Player::join_path(&b, &as_player("ttl", BOB_KEY)).await;
    alice.expect_presence("join", &bob.me).await;
    bob.send(r#"{"type":"typing"}"#).await;
    alice.next_of("typing").await;
    alice.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    bob.next_of("action").await;

    for key in ["battle:room:ttl", "battle:room:ttl:log"] {
        let ttl: i64 = redis::from_redis_value(redis.query(&["PTTL", key]).await).unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn each_instance_has_one_subscriber_connection_for_the_rooms_it_serves() {
    let redis = RedisServer::start().await;
    let a = spawn_on_redis(&redis).await;
    let b = spawn_on_redis(&redis).await;
    let mut players = Vec::new();
    for room in ["r1", "r2", "r3"] {
        players.push(Player::join(&a, room).await);
    }
    let on_b = Player::join(&b, "r1").await;
    assert_eq!(subscribed_rooms(&redis).await, ["r1", "r2", "r3"]);
    let clients: String = redis::from_redis_value(redis.query(&["CLIENT", "LIST"]).await).unwrap();
    let subscribers: Vec<&str> = clients
        .lines()
        .filter(|line| !line.contains(" sub=0 "))
        .collect();
    assert_eq!(subscribers.len(), 2, "one per instance: {clients}");
    assert!(
        subscribers.iter().any(|line| line.contains(" sub=3 ")),
        "{clients}"
    );

    players.remove(1).close(1000).await;
    on_b.close(1000).await;
    let r1_subscribers = || async {
        let answer = redis.query(&["PUBSUB", "NUMSUB", "battle:room:r1"]).await;
        let (_, count): (String, u64) = redis::from_redis_value(answer).unwrap();
        count
    };
    let unsubscribed =
        || async { subscribed_rooms(&redis).await == ["r1", "r3"] && r1_subscribers().await == 1 };
    let what = "an instance unsubscribes from a room once nobody is in it there";
    support::until(support::PATIENCE, unsubscribed, what).await;
}

#[tokio::test]
async fn the_players_of_a_crashed_instance_show_as_reconnecting_then_leave() {
    let redis = RedisServer::start().await;
    let quick = |config: &mut battle_status::server::config::Config| {
        config.grace_ms = 300;
        config.instance_ttl_ms = 600;
    };
    let a = spawn_on_redis_with(&redis, quick).await;
    let url = redis.url();
    let mut b = spawn_isolated(|config| {
        quick(config);
        config.redis_url = Some(url);
    })
    .await;
    wait_for_readiness(&b, 200).await;
    let mut alice = Player::join(&a, "crash").await;
    let bob = Player::join(&b, "crash").await;
    alice.expect_presence("join", &bob.me).await;

    b.crash().await;
    alice.expect_presence("reconnecting", &bob.me).await;
    alice.expect_presence("leave", &bob.me).await;
    let seats = Player::join_path(&a, "/ws/battle/crash/?role=spectator").await;
    assert_eq!(
        seats.welcome["members"].as_array().unwrap().len(),
        2,
        "bob's seat is free"
    );
}
