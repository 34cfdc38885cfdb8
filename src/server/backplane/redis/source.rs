//! Where the Redis server is (a URL, or Sentinels that name the master),
//! and the deadlines of every call to it.

use std::time::Duration;

use redis::{sentinel::Sentinel, Client, RedisError};

/// Deadlines of the link to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Longest wait for any one Redis call (a command, a script, a
    /// subscription): past it the call fails, and the link counts as down.
    pub command: Duration,
    /// Longest silence of the pub/sub connection (pinged every second)
    /// before the link counts as down.
    pub liveness: Duration,
}

/// Where the Redis server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSource {
    /// At this URL (`redis://host:port/`).
    Url(String),
    /// Wherever these Sentinels (`host:port`) say the master named `master`
    /// is now: asked again on every reconnection, so the instance follows
    /// a failover by itself.
    Sentinel {
        /// The Sentinels' addresses.
        sentinels: Vec<String>,
        /// The master's name in their configuration.
        master: String,
    },
}

/// How the instance finds the Redis master.
pub(super) enum Source {
    Direct(Client),
    Sentinel {
        // Held across the Sentinels' answer, by the link task only.
        sentinel: tokio::sync::Mutex<Sentinel>,
        master: String,
    },
}

impl Source {
    pub(super) fn new(source: &RedisSource) -> Result<Self, RedisError> {
        Ok(match source {
            RedisSource::Url(url) => Self::Direct(Client::open(url.as_str())?),
            RedisSource::Sentinel { sentinels, master } => {
                let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://{s}/")).collect();
                Self::Sentinel {
                    sentinel: tokio::sync::Mutex::new(Sentinel::build(urls)?),
                    master: master.clone(),
                }
            }
        })
    }

    /// A client for the master now.
    pub(super) async fn master(&self) -> Result<Client, RedisError> {
        match self {
            Self::Direct(client) => Ok(client.clone()),
            Self::Sentinel { sentinel, master } => {
                sentinel.lock().await.async_master_for(master, None).await
            }
        }
    }
}
