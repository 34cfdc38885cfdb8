//! The load generator against the real server: its retry mode honours the
//! server's `Retry-After`, as pages do. Needs the `loadgen` feature (the
//! test command enables it).
#![cfg(feature = "loadgen")]

mod support;

use serde_json::Value;
use support::{spawn_app_with, TestServer};

/// Runs the load generator against `server` with `extra` flags (and no idle
/// time unless they give one); its summary.
async fn loadgen(server: &TestServer, extra: &[&str]) -> Value {
    let idle = if extra.contains(&"--idle") {
        &[][..]
    } else {
        &["--idle", "0"][..]
    };
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &server.addr.to_string()])
        .args(["--rooms", "20", "--per-room", "2", "--rate", "2", "--json"])
        .args(idle)
        .args(extra)
        .output()
        .await
        .expect("the load generator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().expect("a summary line");
    serde_json::from_str(summary).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generators_retry_mode_honours_retry_after_and_seats_everyone() {
    let slow_address = |config: &mut battle_status::server::config::Config| {
        config.rates.connections_per_ip_burst = 5.try_into().unwrap();
        config.rates.connections_per_ip_per_sec = 20.try_into().unwrap();
    };
    let server = spawn_app_with(slow_address).await;
    let patient = loadgen(&server, &["--duration", "1", "--retry"]).await;
    assert_eq!(patient["connections"], 40, "{patient}");
    assert_eq!(patient["failed"], 0, "{patient}");
    assert!(
        patient["busy"].as_u64().unwrap() > 0,
        "it was refused first: {patient}"
    );
    assert_eq!(patient["loss_percent"], 0.0, "{patient}");

    let impatient = loadgen(&spawn_app_with(slow_address).await, &["--duration", "1"]).await;
    assert!(impatient["failed"].as_u64().unwrap() > 0, "{impatient}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_s_latency_is_reported_apart_and_its_frames_still_count() {
    let server = spawn_app_with(|_| {}).await;
    let summary = loadgen(&server, &["--duration", "2", "--warmup", "1"]).await;
    assert_eq!(summary["loss_percent"], 0.0, "{summary}");
    assert_eq!(summary["received"], summary["expected"], "{summary}");
    assert!(summary["expected"].as_u64().unwrap() > 0, "{summary}");
    for figure in ["max_ms", "warmup_max_ms"] {
        assert!(
            summary[figure].as_f64().unwrap() > 0.0,
            "frames were measured in both parts ({figure}): {summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_wait_for_the_others_answer_the_servers_pings_and_stay_open() {
    let server = spawn_app_with(|config| {
        config.heartbeat_ms = 200;
        config.heartbeat_timeout_ms = 300;
    })
    .await;
    // Two seconds between connecting and sending: four silence limits.
    let summary = loadgen(&server, &["--duration", "1", "--idle", "2"]).await;
    assert_eq!(summary["connections"], 40, "{summary}");
    // 40 players, 2 frames each in the second, each to both of its room.
    assert_eq!(summary["expected"], 160, "every player sent: {summary}");
    assert_eq!(summary["received"], 160, "{summary}");
}
