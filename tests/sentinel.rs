//! Instances that find Redis through Sentinel follow a failover to the new
//! master by themselves.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{spawn_app_with, wait_for_readiness, Player, SentinelGroup, TestServer};

const ALICE_KEY: &str = "alice-tab-key-0001";
const BOB_KEY: &str = "bob-tab-key-000002";

async fn through_sentinels(group: &SentinelGroup) -> TestServer {
    let sentinels = group.addresses();
    let server = spawn_app_with(|config| {
        config.redis_sentinel = sentinels;
        config.rates.actions_per_sec = 1_000.try_into().unwrap();
        config.rates.actions_burst = 1_000.try_into().unwrap();
    })
    .await;
    wait_for_readiness(&server, 200).await;
    server
}

/// The next action frame within `patience`, skipping anything else.
async fn next_action_within(player: &mut Player, patience: Duration) -> Option<Value> {
    tokio::time::timeout(patience, async {
        loop {
            let frame = player.next().await;
            if frame["type"] == "action" {
                return frame;
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_follow_a_sentinel_failover_and_keep_sharing_rooms() {
    let group = SentinelGroup::start().await;
    let (a, b) = (
        through_sentinels(&group).await,
        through_sentinels(&group).await,
    );
    let mut alice = Player::join_path(&a, &format!("/ws/battle/duel/?player={ALICE_KEY}")).await;
    let mut bob = Player::join_path(&b, &format!("/ws/battle/duel/?player={BOB_KEY}")).await;
    alice.expect_presence("join", &bob.me).await;
    bob.send(r#"{"type":"action","action":"RUNNING"}"#).await;
    let before = next_action_within(&mut alice, Duration::from_secs(2)).await;
    assert_eq!(before.unwrap()["action"], "RUNNING");

    group.fail_over().await;
    // Until both instances are on the new master, a frame may reach only
    // its own instance's members; then cross-instance delivery resumes.
    let resumed = async {
        for n in 1.. {
            bob.send(&format!(r#"{{"type":"action","action":"FAILED_TC{n}"}}"#))
                .await;
            if let Some(frame) = next_action_within(&mut alice, Duration::from_millis(500)).await {
                return frame;
            }
        }
        unreachable!()
    };
    tokio::time::timeout(Duration::from_secs(20), resumed)
        .await
        .expect("cross-instance frames flow again after the failover");
    wait_for_readiness(&a, 200).await;
    wait_for_readiness(&b, 200).await;

    // Drain what is in flight, then frames flow in order, once.
    while next_action_within(&mut alice, Duration::from_millis(300))
        .await
        .is_some()
    {}
    for n in 1..=10 {
        bob.send(&format!(
            r#"{{"type":"action","action":"FAILED_TC{}"}}"#,
            100 + n
        ))
        .await;
    }
    let mut got = Vec::new();
    while let Some(frame) = next_action_within(&mut alice, Duration::from_secs(3)).await {
        got.push(frame["action"].as_str().unwrap().to_owned());
        if got.len() == 10 {
            break;
        }
    }
    let expected: Vec<String> = (101..=110).map(|n| format!("FAILED_TC{n}")).collect();
    assert_eq!(got, expected);
}
