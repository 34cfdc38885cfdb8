//! Where things live in Redis: each room's hash and channel, each
//! instance's liveness key, and the hash fields beside the roster.

use std::fmt;

use redis::{RedisWrite, ToRedisArgs, ToSingleRedisArg};

use crate::protocol::RoomName;

/// Prefix of every room's key and channel.
pub const ROOM_PREFIX: &str = "battle:room:";

/// Prefix of every instance's liveness key.
pub const NODE_PREFIX: &str = "battle:node:";

/// The key (a hash) and the channel of a room: `battle:room:<id>`. As a
/// command's argument, written straight into the command's buffer.
pub struct RoomKey<'a>(pub &'a RoomName);

/// The key of a room's history (a stream of its events, by `seq`):
/// `battle:room:<id>:log`. As a command's argument, written straight into
/// the command's buffer.
pub struct LogKey<'a>(pub &'a RoomName);

impl fmt::Display for RoomKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROOM_PREFIX}{}", self.0.as_str())
    }
}

impl fmt::Display for LogKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ROOM_PREFIX}{}:log", self.0.as_str())
    }
}

/// Each of `$key` is one argument of a command, its text written straight
/// into the command's buffer.
macro_rules! one_argument {
    ($($key:ident),*) => {$(
        impl ToRedisArgs for $key<'_> {
            fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
                out.write_arg_fmt(self);
            }
        }

        impl ToSingleRedisArg for $key<'_> {}
    )*};
}

one_argument!(RoomKey, LogKey);

/// The key that says instance `node` is alive: `battle:node:<id>`.
pub fn node_key(node: &str) -> String {
    format!("{NODE_PREFIX}{node}")
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
    fn a_rooms_key_and_channel_and_its_history_have_their_own_names() {
        let room = RoomName::parse("duel-42").unwrap();
        assert_eq!(RoomKey(&room).to_string(), "battle:room:duel-42");
        assert_eq!(LogKey(&room).to_string(), "battle:room:duel-42:log");
        assert_eq!(node_key("a"), "battle:node:a");
    }

    #[test]
    fn keys_written_into_a_command_are_the_keys() {
        let room = RoomName::parse("duel-42").unwrap();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(RoomKey(&room)).arg(LogKey(&room));
        let mut expected = redis::cmd("EVALSHA");
        expected
            .arg("battle:room:duel-42")
            .arg("battle:room:duel-42:log");
        assert_eq!(cmd.get_packed_command(), expected.get_packed_command());
    }
}
