//! The server's configuration: one struct, from flags and environment.

use std::net::SocketAddr;

use clap::Parser;

/// Live opponent status for coding battles: serves the lobby, the battle
/// page and the room relay at /ws/battle/<room>/.
#[derive(Debug, Clone, Parser)]
#[command(name = "battle-status", version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen address is logged).
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Frames queued for one connection before typing pings are dropped and
    /// a connection that also misses an action is closed as too slow.
    #[arg(long, env = "BATTLE_QUEUE_CAPACITY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub queue_capacity: u16,
}

impl Config {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self::parse_from(["battle-status", "--addr", &addr.to_string()])
    }
}
