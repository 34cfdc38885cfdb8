//! What the server logs. The only test of its binary, with the process's
//! global subscriber: `tracing` caches whether a log line is wanted once,
//! for the whole process, from the thread that first reaches it, so a test
//! running beside it without a subscriber could silence the lines this
//! test reads (seen once in a full run, tests/hostile.rs, where it was).

mod support;

use std::sync::{Arc, Mutex};

use battle_status::server::token::Secret;
use support::{handshake, player_token, refused, spawn_app_with, Player};

const SECRET: &str = "a secret of at least sixteen bytes";

/// The log, as written.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_appear_in_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server =
        spawn_app_with(|config| config.token_secret = Some(Secret::new(SECRET).unwrap())).await;
    let good = player_token(SECRET, "duel", "host-app-player-0042", None);
    let elsewhere = player_token(SECRET, "elsewhere", "host-app-player-0042", None);
    let player = Player::join_path(&server, &format!("/ws/battle/duel/?token={good}")).await;
    let refused_status = refused(handshake(
        &server,
        &format!("/ws/battle/duel/?token={elsewhere}"),
        &[],
    ))
    .await;
    assert_eq!(refused_status, 403);
    player.close(1000).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("joined"), "the capture works: {logs}");
    for token in [&good, &elsewhere] {
        let signature = token.split_once('.').unwrap().1;
        assert!(!logs.contains(signature), "a token was logged: {logs}");
    }
}
