//! Micro-benchmarks of the relay's hot paths: reading a client frame,
//! stamping and serialising it, and fanning it out to a room.
//! `cargo bench --features ssr`; figures in docs/performance.md.

use std::sync::Arc;

use battle_status::{
    protocol::{
        parse_client_frame, ClientEvent, ClientFrame, MemberRef, Role, RoomName, ServerFrame,
    },
    server::{
        backplane::{Limits, MemoryBus},
        clock::Clock,
        hub::Hub,
        room::{JoinRequest, HISTORY_LEN},
        stats::Stats,
    },
};
use divan::{black_box, Bencher};
use tokio::time::Instant;

fn main() {
    divan::main();
}

const TYPING: &str = r#"{"type":"typing","clientId":"k3j9x","ts":1700000000123}"#;
const ACTION: &str =
    r#"{"type":"action","clientId":"k3j9x","action":"FAILED_TC12","ts":1700000000456}"#;

#[divan::bench(args = [TYPING, ACTION])]
fn parse_and_validate(frame: &str) -> ClientFrame {
    parse_client_frame(black_box(frame)).expect("a valid frame")
}

#[divan::bench(args = [TYPING, ACTION])]
fn stamp_and_serialise(bencher: Bencher, frame: &str) {
    let frame = parse_client_frame(frame).expect("a valid frame");
    let from = MemberRef::new("0b6f1c2d9e8a4b7f", Role::Player);
    bencher.bench(|| ServerFrame::relayed(black_box(frame.clone()), &from, 42).to_json());
}

/// The same frames written by serde_json's derived path: the reference of
/// the stamped frames' own writer, measured in the same run.
#[divan::bench(args = [TYPING, ACTION])]
fn stamp_and_serialise_with_serde(bencher: Bencher, frame: &str) {
    let frame = parse_client_frame(frame).expect("a valid frame");
    let from = MemberRef::new("0b6f1c2d9e8a4b7f", Role::Player);
    bencher.bench(|| {
        serde_json::to_string(&ServerFrame::relayed(black_box(frame.clone()), &from, 42))
    });
}

/// One action published to a room of `members` connections on one node:
/// stamping, serialising once, and queueing it for every member.
#[divan::bench(args = [2, 16])]
fn room_fan_out(bencher: Bencher, members: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _entered = runtime.enter();
    let limits = Limits {
        max_spectators: members,
        grace_ms: 10_000,
        history_len: HISTORY_LEN,
    };
    let hub = Hub::new(
        Arc::new(MemoryBus::new().node(limits)),
        Arc::new(Stats::default()),
        64,
        Clock::new(),
        tokio_util::task::TaskTracker::new(),
    );
    let room = RoomName::parse("bench").expect("a room");
    let memberships: Vec<_> = (0..members)
        .map(|n| {
            let request = JoinRequest {
                conn: format!("c{n}"),
                role: if n < 2 { Role::Player } else { Role::Spectator },
                key: None,
                new_id: format!("m{n}"),
                name: None,
            };
            runtime
                .block_on(hub.join(&room, request))
                .expect("a seat")
                .0
        })
        .collect();
    let frame = ClientFrame::new(ClientEvent::Typing).with_client_id("k3j9x");
    let from = MemberRef::new("m0", Role::Player);
    bencher.bench_local(|| {
        runtime
            .block_on(memberships[0].publish(&from, black_box(frame.clone()), Instant::now()))
            .expect("published");
        // Keep the mailboxes from filling: take the frame back out.
        for membership in &memberships {
            assert!(membership.outbound.try_recv().is_ready());
        }
    });
}
