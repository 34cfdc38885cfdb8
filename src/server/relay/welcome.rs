//! The first frames of a connection that took its seat: the welcome, with
//! the room's history as far as the connection asked (`since`), and an error
//! when `since` made no sense.

use super::Relay;
use crate::{
    protocol::{Role, RoomName, ServerFrame, Since, Welcome, PROTOCOL_VERSION},
    server::{clock::millis, hub::Joined, room::recover, stats::Recovery},
};

/// The first frames of a connection that took its seat: the welcome, with
/// the history it asked for (`since`), and an error if `since` made no
/// sense. Counts the recovery.
pub fn greeting(
    relay: &Relay,
    room: &RoomName,
    role: Role,
    me: &str,
    name_locked: bool,
    joined: Joined,
    since: &Since,
) -> Vec<ServerFrame> {
    let recovery = recover(&joined.history, joined.history_floor, joined.seq, since);
    if *since != Since::Nothing {
        relay
            .stats
            .recovery(match (&recovery.problem, recovery.recovered) {
                (Some(_), _) => Recovery::Invalid,
                (None, Some(true)) => Recovery::Recovered,
                (None, _) => Recovery::NotRecovered,
            });
    }
    let welcome = ServerFrame::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        room: room.clone(),
        you: me.to_owned(),
        role,
        resumed: joined.seat.resumed,
        name_locked,
        seq: joined.seq,
        heartbeat_ms: millis(relay.heartbeat),
        members: joined.members,
        history: recovery.entries,
        recovered: recovery.recovered,
    });
    let problem = recovery.problem.map(|message| ServerFrame::Error {
        code: "invalid_since".into(),
        message,
    });
    std::iter::once(welcome).chain(problem).collect()
}
