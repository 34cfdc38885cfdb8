//! Hostile clients, one test per case: each asserts the documented answer,
//! and that a well-behaved pair in another room keeps exchanging every
//! frame during the attack.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use battle_status::{
    protocol::{PlayerKey, Role, RoomName},
    server::token::{self, Claims, Secret},
};
use futures_util::SinkExt;
use support::{handshake, http_request, refused, spawn_app_with, Player, TestServer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_tungstenite::{
    client_async, connect_async,
    tungstenite::{protocol::frame::coding::CloseCode, Message},
};

const SECRET: &str = "a secret of at least sixteen bytes";

/// A well-behaved pair in its own room.
struct Calm {
    alice: Player,
    bob: Player,
}

impl Calm {
    async fn new(server: &TestServer) -> Self {
        let (alice, bob) = Player::pair(server, "calm").await;
        Self { alice, bob }
    }

    /// Each player sends `rounds` actions, one after the other's; every one
    /// must arrive, in order, to both.
    async fn exchange(&mut self, rounds: u16) {
        for n in 1..=rounds {
            Self::one_way(&mut self.alice, &mut self.bob, n).await;
            Self::one_way(&mut self.bob, &mut self.alice, n).await;
        }
    }
}

impl Calm {
    async fn one_way(sender: &mut Player, receiver: &mut Player, n: u16) {
        let expected = format!("FAILED_TC{n}");
        sender
            .send(&format!(r#"{{"type":"action","action":"{expected}"}}"#))
            .await;
        assert_eq!(sender.next().await["action"], expected.as_str());
        assert_eq!(receiver.next().await["action"], expected.as_str());
    }
}

/// A server that lets the tests' many sockets from 127.0.0.1 in.
async fn server(configure: impl FnOnce(&mut battle_status::server::config::Config)) -> TestServer {
    spawn_app_with(|config| {
        config.rates.max_connections_per_ip = 1_000;
        config.rates.connections_per_ip_burst = 1_000.try_into().unwrap();
        configure(config);
    })
    .await
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let evil = handshake(
        &server,
        "/ws/battle/calm/",
        &[("origin", "https://evil.example")],
    );
    let (status, ()) = tokio::join!(refused(evil), calm.exchange(3));
    assert_eq!(status, 403);
    assert_eq!(server.stats.snapshot().refused_handshakes, 1);
}

#[tokio::test]
async fn a_client_without_origin_is_refused_unless_allowed() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let bare = handshake(&server, "/ws/battle/calm/", &[("origin", "")]);
    let (status, ()) = tokio::join!(refused(bare), calm.exchange(3));
    assert_eq!(status, 403);

    let open = server_allowing_missing_origin().await;
    let bare = handshake(&open, "/ws/battle/duel/", &[("origin", "")]);
    assert!(connect_async(bare).await.is_ok());
}

async fn server_allowing_missing_origin() -> TestServer {
    server(|config| config.allow_missing_origin = true).await
}

#[tokio::test]
async fn an_allow_listed_origin_may_connect_and_others_not() {
    let server = server(|config| config.allowed_origins = vec!["https://app.example".into()]).await;
    let listed = handshake(
        &server,
        "/ws/battle/duel/",
        &[("origin", "https://app.example")],
    );
    assert!(connect_async(listed).await.is_ok());
    assert_eq!(
        refused(handshake(&server, "/ws/battle/duel/", &[])).await,
        403
    );
}

#[tokio::test]
async fn forged_identity_fields_are_never_relayed() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let (mut mallory, mut victim) = Player::pair(&server, "duel").await;
    let attack = async {
        mallory
            .send(&format!(
                r#"{{"type":"action","action":"AC","from":"{}","seq":1,"role":"judge","you":"x"}}"#,
                victim.me
            ))
            .await;
        victim.next().await
    };
    let (relayed, ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(
        relayed["from"],
        mallory.me.as_str(),
        "stamped with the real sender"
    );
    assert_eq!(relayed["seq"], 3);
    assert!(relayed.get("role").is_none() && relayed.get("you").is_none());
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let mut mallory = Player::join(&server, "duel").await;
    let mut huge = Player::join(&server, "duel").await;
    let attack = async {
        mallory.send(&"x".repeat(10_000)).await;
        huge.send(&"x".repeat(1_000_000)).await;
        (
            mallory.closed().await.expect("a close frame").code,
            huge.closed().await.expect("a close frame").code,
        )
    };
    let (codes, ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(codes, (CloseCode::Size, CloseCode::Size));
    assert_eq!(server.stats.snapshot().oversized, 2);
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let url = handshake(&server, "/ws/battle/duel/", &[]);
    let (mut raw, _) = connect_async(url).await.unwrap();
    let attack = async {
        // A text frame whose payload is not UTF-8, written by hand: the
        // client library refuses to send one.
        let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            vec![0xff, 0xfe, 0x80],
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        );
        raw.send(Message::Frame(frame)).await.unwrap();
        let mut player_like = raw;
        loop {
            match futures_util::StreamExt::next(&mut player_like).await {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    };
    let (code, ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(code, CloseCode::Invalid);
}

#[tokio::test]
async fn invalid_frames_are_answered_then_a_client_that_keeps_on_is_closed_with_4508() {
    let server = server(|config| config.rates.invalid_burst = 5.try_into().unwrap()).await;
    let mut calm = Calm::new(&server).await;
    let mut mallory = Player::join(&server, "duel").await;
    let attack = async {
        let mut answers = Vec::new();
        for n in 0..6 {
            if n % 2 == 0 {
                mallory.send("{not json").await;
            } else {
                mallory.send_message(Message::binary(vec![1, 2, 3])).await;
            }
        }
        for _ in 0..5 {
            answers.push(mallory.next().await["code"].as_str().unwrap().to_owned());
        }
        (answers, mallory.closed().await.expect("a close frame").code)
    };
    let ((answers, code), ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(
        answers,
        [
            "invalid_json",
            "binary_frame",
            "invalid_json",
            "binary_frame",
            "invalid_json"
        ]
    );
    assert_eq!(u16::from(code), 4508);
    assert_eq!(server.stats.snapshot().abusers_closed, 1);
}

#[tokio::test]
async fn a_typing_flood_is_dropped_and_counted_then_closed_with_4509() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let (mut mallory, mut watcher) = Player::pair(&server, "duel").await;
    let attack = async {
        for _ in 0..200 {
            mallory.send(r#"{"type":"typing"}"#).await;
        }
        mallory.closed().await.expect("a close frame").code
    };
    let (code, ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(u16::from(code), 4509);
    let mut relayed = 0;
    loop {
        let frame = watcher.next().await;
        if frame["type"] == "presence" {
            break;
        }
        relayed += 1;
    }
    assert!(
        relayed <= 8 + 2,
        "at most the burst and its refill got through: {relayed}"
    );
    let stats = server.stats.snapshot();
    assert!(stats.rate_limited >= 30, "{stats:?}");
    assert_eq!(stats.abusers_closed, 1);
}

#[tokio::test]
async fn actions_over_the_rate_are_refused_then_a_flood_is_closed_with_4509() {
    let server = server(|_| {}).await;
    let mut calm = Calm::new(&server).await;
    let mut mallory = Player::join(&server, "duel").await;
    let attack = async {
        let mut refusals = 0;
        for _ in 0..100 {
            mallory
                .send(r#"{"type":"action","action":"SUBMITTED"}"#)
                .await;
        }
        loop {
            match mallory.next_message().await {
                Message::Text(text) if text.contains("rate_limited") => refusals += 1,
                Message::Text(_) => {}
                Message::Close(frame) => return (refusals, frame.expect("a close frame").code),
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let ((refusals, code), ()) = tokio::join!(attack, calm.exchange(3));
    assert!(refusals >= 20, "{refusals} refusals");
    assert_eq!(u16::from(code), 4509);
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_handshake_is_refused_with_400_and_spends_no_admission() {
    let server = spawn_app_with(|config| {
        config.rates.connections_per_ip_burst = 2.try_into().unwrap();
        config.rates.connections_per_ip_per_sec = 1.try_into().unwrap();
    })
    .await;
    let origin = format!("http://{}", server.addr);
    for _ in 0..5 {
        let (status, response) = http_request(
            &server,
            "GET",
            "/ws/battle/duel/",
            &[("origin", &origin)],
            "",
        )
        .await;
        assert_eq!(status, 400);
        assert!(response.contains("not a WebSocket handshake"), "{response}");
    }
    let old_version = handshake(
        &server,
        "/ws/battle/duel/",
        &[("sec-websocket-version", "8")],
    );
    assert_eq!(refused(old_version).await, 400);
    assert_eq!(server.stats.snapshot().refused_handshakes, 6);
    // The address's burst (two sockets) is still whole.
    Calm::new(&server).await.exchange(1).await;
}

#[tokio::test]
async fn an_address_with_too_many_open_sockets_is_refused_with_429() {
    let server = spawn_app_with(|config| config.rates.max_connections_per_ip = 4).await;
    let mut calm = Calm::new(&server).await;
    let _first = Player::join(&server, "duel").await;
    let _second = Player::join(&server, "duel").await;
    let attack = refused(handshake(&server, "/ws/battle/duel/?role=spectator", &[]));
    let (status, ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(status, 429);
}

#[tokio::test]
async fn an_address_opening_sockets_too_fast_is_refused_with_429() {
    let server = spawn_app_with(|config| {
        config.rates.connections_per_ip_burst = 5.try_into().unwrap();
        config.rates.connections_per_ip_per_sec = 1.try_into().unwrap();
    })
    .await;
    let mut calm = Calm::new(&server).await;
    let attack = async {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let request = handshake(&server, "/ws/battle/duel/?role=spectator", &[]);
            statuses.push(match connect_async(request).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    response.status().as_u16()
                }
                Err(other) => panic!("{other}"),
            });
        }
        statuses
    };
    let (statuses, ()) = tokio::join!(attack, calm.exchange(3));
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.starts_with(&[101]),
        "the burst lets a few in: {statuses:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_memory_stays_bounded() {
    let server = server(|config| {
        config.queue_capacity = 8;
        config.rates.actions_per_sec = 100_000.try_into().unwrap();
        config.rates.actions_burst = 100_000.try_into().unwrap();
    })
    .await;
    let mut calm = Calm::new(&server).await;
    let mut flooder = Player::join(&server, "duel").await;
    // A reader with a tiny receive window that never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let (_stuck, _) = client_async(handshake(&server, "/ws/battle/duel/", &[]), tcp)
        .await
        .unwrap();
    flooder.next_presence().await;

    let attack = async {
        let frame = format!(
            r#"{{"type":"action","action":"RUNNING","clientId":"{}"}}"#,
            "p".repeat(100)
        );
        let mut sent = 0;
        while server.stats.snapshot().slow_consumers == 0 {
            for _ in 0..100 {
                flooder.send(&frame).await;
                sent += 1;
            }
            // The flooder reads its own echoes, so it is not the slow one.
            while flooder.next().await["type"] != "presence" {
                if server.stats.snapshot().slow_consumers > 0 {
                    break;
                }
            }
            assert!(sent < 200_000, "the slow reader was never cut off");
        }
    };
    let ((), ()) = tokio::join!(attack, calm.exchange(3));
    assert_eq!(server.stats.snapshot().slow_consumers, 1);
}

#[tokio::test]
async fn a_slow_http_handshake_is_dropped() {
    let server = server(|config| config.handshake_timeout_ms = 200).await;
    let mut calm = Calm::new(&server).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /ws/battle/duel/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let attack = async {
        let mut rest = Vec::new();
        // Ends with the server hanging up (EOF or reset), or times out.
        tokio::time::timeout(support::PATIENCE, slow.read_to_end(&mut rest))
            .await
            .is_ok()
    };
    let (hung_up, ()) = tokio::join!(attack, calm.exchange(3));
    assert!(hung_up, "the server dropped the unfinished handshake");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(room: &str, role: Role, exp: u64) -> Claims {
    Claims {
        room: RoomName::parse(room).unwrap(),
        player: PlayerKey::parse("host-app-player-0042").unwrap(),
        role,
        name: None,
        exp,
    }
}

fn mint(claims: &Claims) -> String {
    token::mint(&Secret::new(SECRET).unwrap(), claims)
}

async fn server_with_tokens() -> TestServer {
    server(|config| config.token_secret = Some(Secret::new(SECRET).unwrap())).await
}

#[tokio::test]
async fn with_a_secret_missing_or_bad_tokens_are_refused_with_401() {
    let server = server_with_tokens().await;
    let later = unix_now() + 600;
    let other_secret = token::mint(
        &Secret::new("some other secret, also long").unwrap(),
        &claims("duel", Role::Player, later),
    );
    let expired = mint(&claims("duel", Role::Player, unix_now() - 1));
    for (query, what) in [
        (String::new(), "missing"),
        ("?token=garbage".into(), "malformed"),
        (format!("?token={other_secret}"), "forged"),
        (format!("?token={expired}"), "expired"),
    ] {
        let request = handshake(&server, &format!("/ws/battle/duel/{query}"), &[]);
        assert_eq!(refused(request).await, 401, "{what}");
    }
}

#[tokio::test]
async fn a_token_for_another_room_or_role_is_refused_with_403() {
    let server = server_with_tokens().await;
    let later = unix_now() + 600;
    let elsewhere = mint(&claims("other-room", Role::Player, later));
    let watching = mint(&claims("duel", Role::Spectator, later));
    for path in [
        format!("/ws/battle/duel/?token={elsewhere}"),
        format!("/ws/battle/duel/?role=player&token={watching}"),
    ] {
        assert_eq!(refused(handshake(&server, &path, &[])).await, 403, "{path}");
    }
}

#[tokio::test]
async fn a_valid_token_joins_as_its_role_and_seat_by_query_or_subprotocol() {
    let server = server_with_tokens().await;
    let later = unix_now() + 600;
    let token = mint(&claims("duel", Role::Spectator, later));
    let watcher = Player::join_path(&server, &format!("/ws/battle/duel/?token={token}")).await;
    assert_eq!(watcher.welcome["role"], "spectator");

    let token = mint(&claims("duel", Role::Player, later));
    let protocols = format!("battle-status, token.{token}");
    let request = handshake(
        &server,
        "/ws/battle/duel/",
        &[("sec-websocket-protocol", &protocols)],
    );
    let (_player, response) = connect_async(request).await.expect("admitted");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "battle-status"
    );

    let again = Player::join_path(&server, &format!("/ws/battle/duel/?token={token}")).await;
    assert_eq!(
        again.welcome["resumed"], true,
        "the token's player id is the seat key"
    );
}

#[tokio::test]
async fn the_cli_mints_tokens_the_server_accepts() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_battle-status"))
        .args([
            "token",
            "--room",
            "duel",
            "--player",
            "cli-minted-player-1",
            "--ttl-secs",
            "60",
        ])
        .env("BATTLE_TOKEN_SECRET", SECRET)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = token::verify(&Secret::new(SECRET).unwrap(), token.trim(), unix_now()).unwrap();
    assert_eq!(claims.room.as_str(), "duel");
    assert_eq!(claims.role, Role::Player);

    let server = server_with_tokens().await;
    Player::join_path(&server, &format!("/ws/battle/duel/?token={}", token.trim())).await;
}

#[tokio::test]
async fn a_human_typing_and_clicking_at_the_original_scripts_pace_never_hits_a_limit() {
    let server = spawn_app_with(|_| {}).await;
    let (mut alice, mut bob) = Player::pair(&server, "duel").await;
    // Typing pings as fast as the page's throttle lets them out (one per
    // 800 ms), compressed: a burst the limits must allow anyway.
    for n in 0..8 {
        alice
            .send(r#"{"type":"typing","clientId":"k3j9x","ts":1}"#)
            .await;
        assert_eq!(bob.next().await["type"], "typing", "ping {n}");
    }
    for action in [
        "RUNNING",
        "RUN_COMPLETE",
        "SUBMITTED",
        "WA",
        "SUBMITTED",
        "AC",
    ] {
        alice
            .send(&format!(
                r#"{{"type":"action","clientId":"k3j9x","action":"{action}","ts":2}}"#
            ))
            .await;
        assert_eq!(bob.next().await["action"], action);
    }
    assert_eq!(server.stats.snapshot().rate_limited, 0);
}

#[tokio::test]
async fn a_page_can_ask_whether_its_token_is_the_problem() {
    let guarded = server_with_tokens().await;
    let later = unix_now() + 600;
    let good = mint(&claims("duel", Role::Player, later));
    let expired = mint(&claims("duel", Role::Player, unix_now() - 1));
    let elsewhere = mint(&claims("elsewhere", Role::Player, later));
    for (token, role, expected) in [
        (good.as_str(), "player", 204),
        (good.as_str(), "spectator", 403),
        (expired.as_str(), "player", 401),
        (elsewhere.as_str(), "player", 403),
        ("", "player", 401),
    ] {
        let path = format!("/ws/battle/duel/token?role={role}&token={token}");
        let (status, body) = support::http_get(&guarded, &path).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    let open = server(|_| {}).await;
    let (status, _) =
        support::http_get(&open, &format!("/ws/battle/duel/token?token={good}")).await;
    assert_eq!(status, 404, "tokens are off");
}

/// A handshake that says, in `X-Forwarded-For`, it comes from `client`.
fn forwarded_from(
    server: &TestServer,
    client: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    handshake(
        server,
        "/ws/battle/duel/?role=spectator",
        &[("x-forwarded-for", client)],
    )
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limits() {
    let server = spawn_app_with(|config| {
        config.rates.max_connections_per_ip = 1;
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |client| forwarded_from(&server, client);
    let (_first, _) = connect_async(from("203.0.113.1"))
        .await
        .expect("a first client");
    let (_second, _) = connect_async(from("203.0.113.2"))
        .await
        .expect("another client");
    assert_eq!(
        refused(from("203.0.113.1")).await,
        429,
        "the first one again"
    );
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_changes_nothing() {
    let server = spawn_app_with(|config| config.rates.max_connections_per_ip = 1).await;
    let from = |client| forwarded_from(&server, client);
    let (_first, _) = connect_async(from("203.0.113.1"))
        .await
        .expect("a first client");
    assert_eq!(refused(from("203.0.113.2")).await, 429, "the same peer");
}
