//! A Redis that goes silent (a partition, a stuck failover, a long command):
//! the connections stay open and nothing comes back. Each instance reaches
//! Redis through a proxy of the test's that can freeze, delay and thaw.

mod support;

use std::time::{Duration, Instant};

use battle_status::server::{config::Config, token::Secret};
use serde_json::Value;
use support::{
    as_player, http_get, post_verdict, proxy::Proxy, spawn_app_with, wait_for_readiness, Player,
    RedisServer, TestServer,
};

const ALICE_KEY: &str = "alice-tab-key-0001";
const BOB_KEY: &str = "bob-tab-key-000002";

/// An instance whose Redis is reached through `proxy`, once ready.
async fn behind(proxy: &Proxy) -> TestServer {
    behind_with(proxy, |_| {}).await
}

/// As [`behind`], configured by `configure` too.
async fn behind_with(proxy: &Proxy, configure: impl FnOnce(&mut Config)) -> TestServer {
    let url = proxy.url();
    let server = spawn_app_with(|config| {
        config.redis_url = Some(url);
        config.rates.actions_per_sec = 1_000.try_into().unwrap();
        config.rates.actions_burst = 1_000.try_into().unwrap();
        configure(config);
    })
    .await;
    wait_for_readiness(&server, 200).await;
    server
}

/// A private Redis, and a proxy in front of it for each of two instances.
async fn redis_and_two_proxies() -> (RedisServer, Proxy, Proxy) {
    let redis = RedisServer::start().await;
    let (a, b) = (
        Proxy::start(redis.addr()).await,
        Proxy::start(redis.addr()).await,
    );
    (redis, a, b)
}

/// A room whose two players are on two instances, each instance behind a
/// proxy of its own to one Redis; the players have seen each other join.
struct Split {
    _redis: RedisServer,
    proxy_a: Proxy,
    proxy_b: Proxy,
    /// Alice's instance.
    a: TestServer,
    _b: TestServer,
    alice: Player,
    bob: Player,
}

impl Split {
    async fn start(room: &str) -> Self {
        let (redis, proxy_a, proxy_b) = redis_and_two_proxies().await;
        let (a, b) = (behind(&proxy_a).await, behind(&proxy_b).await);
        let mut alice = Player::join_path(&a, &as_player(room, ALICE_KEY)).await;
        let bob = Player::join_path(&b, &as_player(room, BOB_KEY)).await;
        alice.expect_presence("join", &bob.me).await;
        Self {
            _redis: redis,
            proxy_a,
            proxy_b,
            a,
            _b: b,
            alice,
            bob,
        }
    }
}

/// Member `id` in a welcome or snapshot frame's `members`.
fn member<'a>(frame: &'a Value, id: &str) -> &'a Value {
    frame["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
}

/// Sends `FAILED_TC<n>` for each `n`, and what the other side received, in
/// order, with each frame's delay.
async fn exchange(
    from: &mut Player,
    to: &mut Player,
    tests: std::ops::Range<u16>,
) -> Vec<(u16, Duration)> {
    let mut got = Vec::new();
    for n in tests {
        let sent = Instant::now();
        from.send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
        let frame = to.next_of("action").await;
        let code = frame["action"]
            .as_str()
            .unwrap()
            .trim_start_matches("FAILED_TC");
        got.push((code.parse().unwrap(), sent.elapsed()));
        let echo = from.next_of("action").await;
        assert_eq!(
            echo["action"], frame["action"],
            "the sender's echo, in order"
        );
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_stops_nothing_in_a_room_that_lives_on_one_instance() {
    let redis = RedisServer::start().await;
    let proxy = Proxy::start(redis.addr()).await;
    let server = behind(&proxy).await;
    let mut alice = Player::join_path(&server, &as_player("local", ALICE_KEY)).await;
    let mut bob = Player::join_path(&server, &as_player("local", BOB_KEY)).await;
    assert_eq!(exchange(&mut alice, &mut bob, 1..3).await.len(), 2);

    proxy.freeze();
    let frozen_at = Instant::now();
    // Frames in flight when the hang began are delivered once the call
    // times out; then the instance goes offline and delivers at once.
    let during = exchange(&mut alice, &mut bob, 3..43).await;
    let codes: Vec<u16> = during.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        codes,
        (3..43).collect::<Vec<_>>(),
        "every frame, in order, once"
    );
    wait_for_readiness(&server, 503).await;
    assert!(
        frozen_at.elapsed() < Duration::from_secs(5),
        "degraded within 5 s"
    );
    let (_, ready) = http_get(&server, "/readyz").await;
    assert!(ready.contains("redis: no reply"), "{ready}");
    let (_, metrics) = http_get(&server, "/metrics").await;
    assert!(metrics.contains("battle_backplane_up 0"), "{metrics}");

    let after_detection = exchange(&mut alice, &mut bob, 43..83).await;
    let mut delays: Vec<Duration> = after_detection.iter().map(|(_, d)| *d).collect();
    delays.sort();
    assert!(
        delays[delays.len() * 95 / 100] < Duration::from_millis(200),
        "{delays:?}"
    );

    let started = Instant::now();
    let (status, _) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200);
    let _ = http_get(&server, "/metrics").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "operators' routes never wait on Redis"
    );

    let join = Instant::now();
    let mut refused = Player::connect(&server, "/ws/battle/another/").await;
    let close = Player::closed_stream(&mut refused).await;
    assert_eq!(u16::from(close.code), 1001, "come back later");
    assert!(
        join.elapsed() < Duration::from_secs(1),
        "a join is answered at once"
    );

    proxy.thaw();
    wait_for_readiness(&server, 200).await;
    let after = exchange(&mut alice, &mut bob, 83..93).await;
    assert_eq!(after.len(), 10);
    // Late copies of the frames that timed out are not delivered again.
    alice.send(r#"{"type":"action","action":"AC"}"#).await;
    let mut between = Vec::new();
    loop {
        let frame = bob.next().await;
        if frame["action"] == "AC" {
            break;
        }
        between.push(frame);
    }
    assert!(
        between.iter().all(|f| f["type"] != "action"),
        "nothing in between: {between:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_lives_on_one_instance_does_not_wait_on_redis_and_hands_over_to_a_second() {
    let (_redis, proxy_a, proxy_b) = redis_and_two_proxies().await;
    let patient = |config: &mut Config| {
        // Redis would have to be silent this long for the instance to give
        // up on it: a frame that waited on Redis would take it.
        config.redis_timeout_ms = 5_000;
        config.redis_liveness_ms = 10_000;
    };
    let a = behind_with(&proxy_a, patient).await;
    let mut alice = Player::join_path(&a, &as_player("solo", ALICE_KEY)).await;
    let mut bob = Player::join_path(&a, &as_player("solo", BOB_KEY)).await;
    alice.expect_presence("join", &bob.me).await;

    proxy_a.freeze();
    let frozen = exchange(&mut alice, &mut bob, 1..11).await;
    assert_eq!(frozen.len(), 10, "delivered at once, Redis frozen");
    assert_eq!(
        http_get(&a, "/readyz").await.0,
        200,
        "no frame waited on Redis long enough to find it silent"
    );
    proxy_a.thaw();

    // A spectator on another instance: the room is handed over, and what
    // was numbered on the first instance is in Redis, whole.
    let b = behind_with(&proxy_b, patient).await;
    let mut carol = Player::join_path(&b, "/ws/battle/solo/?role=spectator").await;
    assert_eq!(
        member(&carol.welcome, &alice.me)["lastAction"],
        "FAILED_TC10"
    );
    let history: Vec<&str> = carol.welcome["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["frame"]["action"].as_str())
        .collect();
    let expected: Vec<String> = (1..11).map(|n| format!("FAILED_TC{n}")).collect();
    assert_eq!(history, expected, "the battle so far, in order");
    let joined_at = carol.welcome["seq"].as_u64().unwrap();
    let joined = bob.next_of("presence").await;
    assert_eq!(joined["event"], "join");
    assert_eq!(
        joined["seq"].as_u64(),
        Some(joined_at),
        "numbered after them"
    );

    let mut seqs = Vec::new();
    for n in 11..21 {
        alice
            .send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
        let on_b = carol.next_of("action").await;
        let on_a = bob.next_of("action").await;
        assert_eq!(on_b["action"], format!("FAILED_TC{n}"));
        assert_eq!(on_a["seq"], on_b["seq"], "one numbering for both instances");
        seqs.push(on_b["seq"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (joined_at + 1..joined_at + 11).collect();
    assert_eq!(seqs, expected, "in order, once, none missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_rooms_only_instance_is_cut_off_another_numbers_nothing_in_it() {
    const JUDGE_SECRET: &str = "judge-secret-0123456789";
    let (_redis, proxy_a, proxy_b) = redis_and_two_proxies().await;
    let judge = |config: &mut Config| {
        config.publish_secret = Some(Secret::new(JUDGE_SECRET).unwrap());
    };
    let (a, b) = (
        behind_with(&proxy_a, judge).await,
        behind_with(&proxy_b, judge).await,
    );
    let mut alice = Player::join_path(&a, &as_player("island", ALICE_KEY)).await;
    let mut bob = Player::join_path(&a, &as_player("island", BOB_KEY)).await;
    alice.expect_presence("join", &bob.me).await;

    // The first instance still counts as alive (its key outlives the
    // freeze), so the second must not number the room's frames itself: it
    // would give numbers the first one gives too.
    proxy_a.freeze();
    let verdict = format!(r#"{{"player":"{ALICE_KEY}","action":"AC"}}"#);
    let (status, response) = post_verdict(&b, "island", JUDGE_SECRET, &verdict).await;
    assert_eq!(status, 503, "come back later: {response}");
    let mut carol = Player::connect(&b, "/ws/battle/island/?role=spectator").await;
    let close = Player::closed_stream(&mut carol).await;
    assert_eq!(u16::from(close.code), 1001, "come back later");

    let during = exchange(&mut alice, &mut bob, 1..6).await;
    assert_eq!(during.len(), 5, "the room goes on where it lives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_notices_a_silent_redis_within_5_s_and_is_ready_within_10_s_of_the_thaw() {
    let redis = RedisServer::start().await;
    let proxy = Proxy::start(redis.addr()).await;
    let server = behind(&proxy).await;
    let _alice = Player::join_path(&server, &as_player("idle", ALICE_KEY)).await;
    proxy.freeze();
    let frozen_at = Instant::now();
    wait_for_readiness(&server, 503).await;
    assert!(
        frozen_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        frozen_at.elapsed()
    );
    let (_, ready) = http_get(&server, "/readyz").await;
    assert!(
        ready.contains("redis: no reply for"),
        "the pings went unanswered: {ready}"
    );
    proxy.thaw();
    let thawed_at = Instant::now();
    wait_for_readiness(&server, 200).await;
    assert!(
        thawed_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        thawed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_freeze_the_other_instance_learns_what_happened_and_nothing_arrives_twice() {
    let mut split = Split::start("duel").await;

    split.proxy_a.freeze();
    wait_for_readiness(&split.a, 503).await;
    split
        .alice
        .send(r#"{"type":"action","action":"SUBMITTED"}"#)
        .await;
    assert_eq!(
        split.alice.next_of("action").await["action"],
        "SUBMITTED",
        "its own echo, at once"
    );
    split.proxy_a.thaw();
    wait_for_readiness(&split.a, 200).await;

    let snapshot = loop {
        let frame = split.bob.next().await;
        if frame["type"] == "snapshot" {
            break frame;
        }
    };
    assert_eq!(
        member(&snapshot, &split.alice.me)["lastAction"],
        "SUBMITTED",
        "what happened during the freeze"
    );

    let mut seen = Vec::new();
    for n in 1..=20 {
        split
            .bob
            .send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
    }
    while seen.len() < 20 {
        let frame = split.alice.next_of("action").await;
        seen.push(frame["seq"].as_u64().unwrap());
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 20, "nothing twice: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_150_ms_each_way_cross_instance_frames_all_arrive_in_order_once() {
    let mut split = Split::start("slow").await;
    for proxy in [&split.proxy_a, &split.proxy_b] {
        proxy.delay(Duration::from_millis(150));
    }
    for n in 1..=10 {
        split
            .alice
            .send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
            .await;
    }
    let mut codes = Vec::new();
    while codes.len() < 10 {
        codes.push(
            split.bob.next_of("action").await["action"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let expected: Vec<String> = (1..=10).map(|n| format!("FAILED_TC{n}")).collect();
    assert_eq!(codes, expected);
    assert_eq!(
        http_get(&split.a, "/readyz").await.0,
        200,
        "a slow Redis is not a down one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_redis_published_but_answered_late_reaches_each_member_once() {
    let mut split = Split::start("late").await;

    // Redis numbers and publishes the frame at once, and its copy comes
    // back to the first instance; the reply to the publish comes after the
    // call's deadline, so the instance delivers the frame itself too.
    split.proxy_a.slow_replies(Duration::from_millis(1_500));
    split
        .alice
        .send(r#"{"type":"action","action":"SUBMITTED"}"#)
        .await;
    assert_eq!(split.bob.next_of("action").await["action"], "SUBMITTED");
    wait_for_readiness(&split.a, 503).await;
    split.proxy_a.thaw();
    wait_for_readiness(&split.a, 200).await;

    split.alice.send(r#"{"type":"action","action":"AC"}"#).await;
    let mut echoes = Vec::new();
    loop {
        let frame = split.alice.next_of("action").await;
        if frame["action"] == "AC" {
            break;
        }
        echoes.push(frame["action"].clone());
    }
    assert_eq!(echoes, ["SUBMITTED"], "the sender's echo, once");
    assert_eq!(
        split.bob.next_of("action").await["action"],
        "AC",
        "nothing twice on the other instance"
    );
}
