//! Where things live in Redis: each room's hash and channel, each
//! instance's liveness key, and the hash fields beside the roster.

use crate::protocol::RoomName;

/// Prefix of every room's key and channel.
pub const ROOM_PREFIX: &str = "battle:room:";

/// The key (a hash) and the channel of `room`: `battle:room:<id>`.
pub fn room_key(room: &RoomName) -> String {
    format!("{ROOM_PREFIX}{}", room.as_str())
}

/// The key of `room`'s history (a stream of its events, by `seq`):
/// `battle:room:<id>:log`.
pub fn log_key(room: &RoomName) -> String {
    format!("{ROOM_PREFIX}{}:log", room.as_str())
}

/// The room a channel is for, if it is a room's.
pub fn room_of_channel(channel: &str) -> Option<RoomName> {
    RoomName::parse(channel.strip_prefix(ROOM_PREFIX)?).ok()
}

/// The key that says instance `node` is alive: `battle:node:<id>`.
pub fn node_key(node: &str) -> String {
    format!("battle:node:{node}")
}

/// The field naming the instance that connection `conn` is on.
pub fn owner_field(conn: &str) -> String {
    format!("n:{conn}")
}

/// The field holding member `id`'s last action.
pub fn action_field(id: &str) -> String {
    format!("a:{id}")
}

/// The field holding when member `id` last typed (ms since the epoch).
pub fn typing_field(id: &str) -> String {
    format!("t:{id}")
}

/// The field holding since when member `id`'s tab is hidden (ms since the
/// epoch; `0` once it is visible again).
pub fn away_field(id: &str) -> String {
    format!("w:{id}")
}

/// The field holding member `id`'s display name, once they changed it.
pub fn name_field(id: &str) -> String {
    format!("name:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_channel_names_its_room_and_nothing_else_does() {
        let room = RoomName::parse("duel-42").unwrap();
        assert_eq!(room_key(&room), "battle:room:duel-42");
        assert_eq!(room_of_channel(&room_key(&room)), Some(room.clone()));
        assert_eq!(room_of_channel("battle:node:x"), None);
        assert_eq!(log_key(&room), "battle:room:duel-42:log");
        assert_eq!(room_of_channel(&log_key(&room)), None, "not a channel");
        assert_eq!(room_of_channel("battle:room:bad room"), None);
    }
}
