//! While the link is up: keeps the rooms served here from expiring, says
//! this instance is alive, counts as dropped the players of instances that
//! stopped saying so, and frees the seats whose grace period ran out in
//! case the instance that started it is gone. A failure is logged; the link
//! itself notices when Redis is gone.

use std::{collections::HashMap, sync::Arc, time::Duration};

use redis::AsyncCommands;
use tracing::warn;

use super::{codec::StoredRoom, keys, lock, Instance};
use crate::{
    protocol::RoomName,
    server::{backplane::BackplaneError, clock::millis},
};

/// How long after a grace period ran out an instance other than the one
/// that started it frees the seat (if that one is gone).
const GRACE_SLACK: Duration = Duration::from_secs(1);
/// How many rooms one pipelined read of the crash sweep takes.
const SWEEP_BATCH: usize = 256;

impl Instance {
    /// Runs the upkeep until the link drops it.
    pub(super) async fn upkeep(self: Arc<Self>) {
        tokio::select! {
            () = self.maintain() => {}
            () = self.grace.run(|room, now| self.grace_ran_out(room, now)) => {}
        }
    }

    async fn maintain(&self) {
        let mut refresh = tokio::time::interval(Duration::from_millis(self.room_ttl_ms / 3));
        let mut heartbeat = tokio::time::interval(Duration::from_millis(self.instance_ttl_ms / 3));
        heartbeat.tick().await;
        loop {
            // A failure was logged where it happened; the next round retries.
            let _ = tokio::select! {
                _ = refresh.tick() => self.refresh().await,
                _ = heartbeat.tick() => match self.beat().await {
                    Ok(()) => self.sweep().await,
                    Err(error) => Err(error),
                },
            };
        }
    }

    /// Says this instance is alive.
    pub(super) async fn beat(&self) -> Result<(), BackplaneError> {
        redis::cmd("SET")
            .arg(keys::node_key(&self.node))
            .arg(1)
            .arg("PX")
            .arg(self.instance_ttl_ms)
            .query_async::<()>(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))
    }

    /// Keeps the state of the rooms served here from expiring.
    async fn refresh(&self) -> Result<(), BackplaneError> {
        let rooms: Vec<RoomName> = lock(&self.rooms).keys().cloned().collect();
        if rooms.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let ttl = i64::try_from(self.room_ttl_ms).unwrap_or(i64::MAX);
        for room in &rooms {
            pipe.pexpire(keys::RoomKey(room), ttl).ignore();
            pipe.pexpire(keys::LogKey(room), ttl).ignore();
        }
        pipe.query_async::<()>(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))
    }

    /// Counts as dropped the connections, in the rooms served here, of
    /// instances that stopped saying they are alive: they crashed, and
    /// could not tell their rooms. Their seats then go through the grace
    /// period like any dropped connection's.
    async fn sweep(&self) -> Result<(), BackplaneError> {
        let rooms: Vec<RoomName> = lock(&self.rooms).keys().cloned().collect();
        let mut alive: HashMap<String, bool> = HashMap::new();
        for (room, stored) in self.load_all(&rooms).await? {
            let mut dead = Vec::new();
            for conn in stored.roster.connected() {
                let Some(node) = stored.owners.get(conn).filter(|node| **node != self.node) else {
                    continue;
                };
                if !alive.contains_key(node) {
                    let exists: bool = self
                        .commands()?
                        .exists(keys::node_key(node))
                        .await
                        .map_err(|e| self.failed(&e))?;
                    alive.insert(node.clone(), exists);
                }
                if !alive[node] {
                    dead.push(conn.to_owned());
                }
            }
            if dead.is_empty() {
                continue;
            }
            warn!(%room, connections = dead.len(), "seats of an instance that stopped answering");
            let now = self.clock.now();
            self.update(room, 0, |roster, commit| {
                for conn in &dead {
                    commit
                        .change
                        .give_up_seat(roster, conn, false, &self.limits, now);
                }
                Ok::<_, BackplaneError>(())
            })
            .await?;
        }
        Ok(())
    }

    /// Reads the hashes of `rooms` in pipelined batches.
    async fn load_all<'r>(
        &self,
        rooms: &'r [RoomName],
    ) -> Result<Vec<(&'r RoomName, StoredRoom)>, BackplaneError> {
        let mut stored = Vec::with_capacity(rooms.len());
        for batch in rooms.chunks(SWEEP_BATCH) {
            let mut pipe = redis::pipe();
            for room in batch {
                pipe.hgetall(keys::RoomKey(room));
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.commands()?)
                .await
                .map_err(|e| self.failed(&e))?;
            stored.extend(batch.iter().zip(hashes.iter().map(StoredRoom::from)));
        }
        Ok(stored)
    }

    /// A member of `room` is reconnecting: frees their seat once the grace
    /// period ran out, after the instance that started it would have (it
    /// may be gone: shut down for a deploy, say).
    pub(super) fn watch_grace(&self, room: RoomName) {
        let deadline = self
            .clock
            .now()
            .saturating_add(self.limits.grace_ms)
            .saturating_add(millis(GRACE_SLACK));
        self.grace.insert(room, deadline);
    }

    /// The next time to look at `room`, if any, for as long as members
    /// here can be told.
    async fn grace_ran_out(&self, room: RoomName, now: u64) -> Option<u64> {
        self.subscription(&room)?;
        let slack = millis(GRACE_SLACK);
        match self.expire(&room, now).await {
            Ok(Some(next)) => Some(next.saturating_add(slack)),
            Ok(None) => None,
            Err(_) => Some(now.saturating_add(slack)),
        }
    }
}
