//! Admission that fits real networks: a classroom behind one address gets
//! in with the defaults, a token vouches for a player wherever they are,
//! every refusal says when to come back, and the page's check agrees.

mod support;

use std::time::Duration;

use battle_status::server::token::Secret;
use futures_util::future::join_all;
use support::{
    bind_app, handshake, http_get, http_request, metric, metrics, player_token, refusal, spawn_app,
    spawn_app_with, Player, TestServer, PATIENCE,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const SECRET: &str = "a shared secret of the host application";

fn token_for(room: &str, player: &str) -> String {
    player_token(SECRET, room, player, None)
}

async fn refused_total(server: &TestServer, reason: &str) -> u64 {
    let series = format!("battle_handshakes_refused_total{{reason=\"{reason}\"}}");
    metric(&metrics(server).await, &series).unwrap_or(0)
}

/// A reconnect storm's connections that arrive faster than the server
/// accepts: more than the 128 that tokio's `bind` lets the kernel queue,
/// fewer than Linux's default cap (4096).
const STORM: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_waits_in_the_listen_queue_and_every_connection_is_served() {
    let server = bind_app().await;
    let addr = server.local_addr();
    // Nothing accepts yet: a connection the queue cannot hold has its SYN
    // dropped and never completes while the queue stays full.
    let queued = tokio::time::timeout(
        PATIENCE,
        join_all((0..STORM).map(|_| TcpStream::connect(addr))),
    )
    .await
    .expect("every connection of the storm is queued, none dropped");
    tokio::spawn(server.run(std::future::pending()));
    let answers = queued.into_iter().map(|stream| async move {
        let mut stream = stream.expect("the connection is made");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .expect("the request is sent");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("the answer is read");
        answer
    });
    let answers = tokio::time::timeout(PATIENCE, join_all(answers))
        .await
        .expect("the queued connections are served");
    let served = answers
        .iter()
        .filter(|answer| answer.starts_with("HTTP/1.1 200"))
        .count();
    assert_eq!(served, STORM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_of_200_behind_one_address_is_seated_with_the_defaults_and_plays() {
    let server = spawn_app().await;
    let students = (0..200).map(|n| {
        let server = &server;
        async move {
            let path = format!("/ws/battle/class-{}/", n / 2);
            Player::join_patiently(server, &path, Duration::from_secs(10)).await
        }
    });
    let mut seated = join_all(students).await;
    assert_eq!(seated.len(), 200);
    for pair in seated.chunks_mut(2) {
        let [first, second] = pair else {
            unreachable!()
        };
        first.send(r#"{"type":"action","action":"RUNNING"}"#).await;
        let echoed = loop {
            let frame = second.next().await;
            if frame["type"] == "action" {
                break frame;
            }
        };
        assert_eq!(echoed["from"], first.me.as_str());
    }
}

#[tokio::test]
async fn a_handshake_flood_without_tokens_is_refused_while_a_player_with_one_gets_in() {
    let server = spawn_app_with(|config| {
        config.token_secret = Some(Secret::new(SECRET).unwrap());
        // The default burst, refilled at one a second: however slowly this
        // test runs, the budget cannot refill much while it floods.
        config.rates.connections_per_ip_per_sec = 1.try_into().unwrap();
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..260 {
        let forged = format!("/ws/battle/duel/?token=forged.{n}");
        statuses.push(refusal(handshake(&server, &forged, &[])).await);
    }
    assert!(statuses[..200].iter().all(|(status, _)| *status == 401));
    // Past the burst, the budget refills at one a second: a slow run may
    // let a forged handshake through now and then, never most of them.
    let slowed: Vec<_> = statuses[200..]
        .iter()
        .filter(|(status, _)| *status == 429)
        .collect();
    assert!(slowed.len() > 50, "the forger is slowed down: {statuses:?}");
    assert!(slowed
        .iter()
        .all(|(_, retry_after)| retry_after.is_some_and(|secs| secs >= 1)));
    assert!(refused_total(&server, "address").await >= 1);

    let token = token_for("duel", "host-app-alice-00001");
    let alice = Player::join_path(&server, &format!("/ws/battle/duel/?token={token}")).await;
    assert_eq!(
        alice.welcome["role"], "player",
        "the same address, a valid token"
    );
}

#[tokio::test]
async fn a_player_with_a_token_may_have_a_few_tabs_and_no_more() {
    let server = spawn_app_with(|config| {
        config.token_secret = Some(Secret::new(SECRET).unwrap());
        config.rates.max_connections_per_player = 2;
    })
    .await;
    let token = token_for("duel", "host-app-bob-000002");
    let path = format!("/ws/battle/duel/?token={token}");
    let _tab = Player::connect(&server, &path).await;
    let _other_tab = Player::connect(&server, &path).await;
    let (status, retry_after) = refusal(handshake(&server, &path, &[])).await;
    assert_eq!((status, retry_after), (429, Some(5)));
    assert_eq!(refused_total(&server, "player").await, 1);
    let (status, response) =
        http_get(&server, &format!("/ws/battle/duel/admission?token={token}")).await;
    assert_eq!(status, 429, "the page's check agrees: {response}");
    let other = token_for("duel", "host-app-carol-00003");
    let (status, _) = http_get(&server, &format!("/ws/battle/duel/admission?token={other}")).await;
    assert_eq!(status, 204, "another player is not held back");
}

#[tokio::test]
async fn a_refusal_says_when_to_retry_and_the_admission_check_says_the_same_until_then() {
    let server = spawn_app_with(|config| {
        config.rates.connections_per_ip_burst = 1.try_into().unwrap();
        config.rates.connections_per_ip_per_sec = 1.try_into().unwrap();
    })
    .await;
    let (status, _) = http_get(&server, "/ws/battle/duel/admission").await;
    assert_eq!(status, 204, "nothing refused yet");
    let _first = Player::connect(&server, "/ws/battle/duel/").await;
    let (status, retry_after) = refusal(handshake(&server, "/ws/battle/duel/", &[])).await;
    assert_eq!((status, retry_after), (429, Some(1)));
    let (status, response) =
        http_request(&server, "GET", "/ws/battle/duel/admission", &[], "").await;
    assert_eq!(status, 429);
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    let late = Player::join_patiently(&server, "/ws/battle/duel/", Duration::from_secs(5)).await;
    assert_eq!(
        late.welcome["type"], "welcome",
        "honouring Retry-After gets in"
    );
}

#[tokio::test]
async fn a_shutdown_tells_each_socket_to_come_back_at_its_own_moment_within_the_window() {
    let mut server = spawn_app_with(|config| config.reconnect_window_ms = 60_000).await;
    let mut players = Vec::new();
    for n in 0..8 {
        players.push(Player::join(&server, &format!("window-{n}")).await);
    }
    server.shut_down().await;
    let mut hints = Vec::new();
    for mut player in players {
        let close = player.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
        let hint = battle_status::protocol::close::retry_hint(&close.reason)
            .unwrap_or_else(|| panic!("a retry hint in {:?}", close.reason));
        assert!(hint < 60_000);
        hints.push(hint);
    }
    hints.sort_unstable();
    hints.dedup();
    assert!(
        hints.len() > 1,
        "not everyone at the same moment: {hints:?}"
    );
}
