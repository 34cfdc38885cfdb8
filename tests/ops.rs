//! Health, readiness, metrics and the judge's publish API, against the real
//! server on port 0.

mod support;

use battle_status::server::token::Secret;
use support::{
    http_get, http_request, post_verdict, spawn_app, spawn_app_with, Player, TestServer,
};

const JUDGE_SECRET: &str = "the judge's bearer secret";
const ALICE: &str = "host-app-alice-000001";

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let server = spawn_app().await;
    let (status, body) = http_get(&server, "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.ends_with("ok"));
    let (status, body) = http_get(&server, "/readyz").await;
    assert_eq!(status, 200);
    assert!(body.ends_with(r#"{"status":"ready"}"#), "{body}");
}

#[tokio::test]
async fn metrics_count_connections_frames_drops_and_fan_out_latency() {
    let server = spawn_app().await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    alice.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    bob.next().await;
    alice.next().await;
    alice.send("nonsense").await;
    alice.next().await;

    let (status, metrics) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics
        .to_lowercase()
        .contains("content-type: application/openmetrics-text"));
    for expected in [
        "battle_connections_total 2",
        "battle_connections_open 2",
        "battle_rooms 1",
        "battle_frames_received_total{kind=\"action\"} 1",
        "battle_frames_received_total{kind=\"invalid\"} 1",
        "battle_frames_published_total{kind=\"action\"} 1",
        "battle_frames_dropped_total{reason=\"invalid\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
    let deliveries = metrics
        .lines()
        .find_map(|line| line.strip_prefix("battle_fanout_latency_seconds_count "))
        .expect("a fan-out histogram");
    assert!(deliveries.parse::<u64>().unwrap() >= 3, "{deliveries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn metrics_give_the_runtimes_worker_threads() {
    let server = spawn_app().await;
    let (_, metrics) = http_get(&server, "/metrics").await;
    assert!(
        metrics.contains("battle_worker_threads 3"),
        "the worker threads in\n{metrics}"
    );
}

async fn with_judge() -> TestServer {
    spawn_app_with(|config| config.publish_secret = Some(Secret::new(JUDGE_SECRET).unwrap())).await
}

#[tokio::test]
async fn a_verdict_reaches_the_room_marked_as_the_judges() {
    let server = with_judge().await;
    let mut alice = Player::join_path(&server, &format!("/ws/battle/duel/?player={ALICE}")).await;
    let mut bob = Player::join(&server, "duel").await;
    alice.expect_presence("join", &bob.me).await;

    let body = format!(r#"{{"player":"{ALICE}","action":"FAILED_TC3"}}"#);
    let (status, response) = post_verdict(&server, "duel", JUDGE_SECRET, &body).await;
    assert_eq!(status, 202, "{response}");
    let alice_id = alice.me.clone();
    for player in [&mut alice, &mut bob] {
        let verdict = player.next().await;
        assert_eq!(verdict["action"], "FAILED_TC3");
        assert_eq!(verdict["from"], alice_id.as_str());
        assert_eq!(verdict["judge"], true);
    }
    let late = Player::join_path(&server, "/ws/battle/duel/?role=spectator").await;
    let members = late.welcome["members"].as_array().unwrap();
    assert_eq!(
        members[0]["lastAction"], "FAILED_TC3",
        "the snapshot has it"
    );
}

#[tokio::test]
async fn the_publish_api_answers_bad_requests_with_clear_errors() {
    let server = with_judge().await;
    let _alice = Player::join_path(&server, &format!("/ws/battle/duel/?player={ALICE}")).await;
    let good = format!(r#"{{"player":"{ALICE}","action":"AC"}}"#);
    let cases = [
        ("duel", "wrong secret, long enough", good.as_str(), 401),
        ("bad.room", JUDGE_SECRET, good.as_str(), 400),
        ("duel", JUDGE_SECRET, "{not json", 400),
        (
            "duel",
            JUDGE_SECRET,
            r#"{"player":"host-app-alice-000001"}"#,
            400,
        ),
        (
            "duel",
            JUDGE_SECRET,
            r#"{"player":"short","action":"AC"}"#,
            400,
        ),
        (
            "duel",
            JUDGE_SECRET,
            r#"{"player":"host-app-alice-000001","action":"PWNED"}"#,
            422,
        ),
        (
            "duel",
            JUDGE_SECRET,
            r#"{"player":"host-app-alice-000001","action":"SUBMITTED"}"#,
            422,
        ),
        (
            "duel",
            JUDGE_SECRET,
            r#"{"player":"host-app-nobody-00001","action":"AC"}"#,
            404,
        ),
        ("empty-room", JUDGE_SECRET, good.as_str(), 404),
    ];
    for (room, secret, body, expected) in cases {
        let (status, response) = post_verdict(&server, room, secret, body).await;
        assert_eq!(status, expected, "{room} {body}: {response}");
        assert!(response.contains(r#"{"error":"#), "{response}");
    }
    let (status, response) =
        http_request(&server, "POST", "/api/battles/duel/events", &[], &good).await;
    assert_eq!(status, 401);
    assert!(response.to_lowercase().contains("www-authenticate: bearer"));
}

#[tokio::test]
async fn without_a_publish_secret_the_api_is_off() {
    let server = spawn_app().await;
    let body = format!(r#"{{"player":"{ALICE}","action":"AC"}}"#);
    let (status, _) = post_verdict(&server, "duel", "anything at all here", &body).await;
    assert_eq!(status, 404);
}
