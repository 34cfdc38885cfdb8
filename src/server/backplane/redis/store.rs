//! Rooms in Redis: reading a room's hash, committing roster changes with
//! compare-and-set, and numbering, recording and publishing frames, each
//! in one atomic script.

use std::collections::HashMap;

use redis::{aio::ConnectionManager, AsyncCommands, Script};
use tracing::warn;

use super::{
    codec::{history_entry, record_field, replaced_message, Commit, StoredRoom},
    keys::{log_key, room_key},
    lock, Instance,
};
use crate::{
    protocol::{ClientEvent, HistoryEntry, RoomName, ServerFrame, Snapshot},
    server::{backplane::BackplaneError, room::Roster},
};

/// How many times a roster change is retried when another instance changed
/// the roster first.
const MAX_ATTEMPTS: usize = 32;

/// The Lua scripts, loaded once per connection by redis-rs (`EVALSHA`,
/// then `EVAL` if the server does not have them).
pub struct Scripts {
    commit: Script,
    publish: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            commit: Script::new(include_str!("scripts/commit.lua")),
            publish: Script::new(include_str!("scripts/publish.lua")),
        }
    }
}

impl Instance {
    pub(super) fn commands(&self) -> Result<ConnectionManager, BackplaneError> {
        lock(&self.commands)
            .as_ref()
            .map(|(_, manager)| manager.clone())
            .ok_or(BackplaneError::Unavailable)
    }

    pub(super) async fn load(&self, room: &RoomName) -> Result<StoredRoom, BackplaneError> {
        let fields: HashMap<String, String> = self
            .commands()?
            .hgetall(room_key(room))
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(StoredRoom::from(&fields))
    }

    /// Applies `change` to the room's roster and commits it, again if
    /// another instance changed the roster in between. Returns what
    /// `change` returned, the room's `seq` after it, and the new roster.
    /// Frames numbered up to `floor` were already handed out here: the
    /// room's sequence continues after them.
    pub(super) async fn update<T, E: From<BackplaneError>>(
        &self,
        room: &RoomName,
        floor: u64,
        mut change: impl FnMut(&mut Roster, &mut Commit) -> Result<T, E>,
    ) -> Result<(T, u64, Roster), E> {
        for _ in 0..MAX_ATTEMPTS {
            let StoredRoom {
                mut roster,
                version,
                seq,
                ..
            } = self.load(room).await?;
            let before = roster.clone();
            let mut commit = Commit::default();
            let value = change(&mut roster, &mut commit)?;
            if commit.is_empty() && roster == before && floor <= seq {
                return Ok((value, seq, roster));
            }
            if let Some(seq) = self
                .commit(room, &roster, &version, seq, floor, &commit)
                .await?
            {
                return Ok((value, seq, roster));
            }
        }
        warn!(%room, "roster kept changing under this instance");
        Err(BackplaneError::Unavailable.into())
    }

    /// Writes `roster` and what `commit` says if the version read is still
    /// the room's; the room's `seq` after it, or `None` if another instance
    /// changed the roster first.
    async fn commit(
        &self,
        room: &RoomName,
        roster: &Roster,
        version: &str,
        seq: u64,
        floor: u64,
        commit: &Commit,
    ) -> Result<Option<u64>, BackplaneError> {
        let json = if roster.is_empty() {
            String::new()
        } else {
            serde_json::to_string(roster).expect("rosters always serialise")
        };
        let forget = commit.forget();
        let owners = commit.owners(&self.node);
        let mut invocation = self.scripts.commit.key(room_key(room));
        invocation
            .key(log_key(room))
            .arg(version)
            .arg(json)
            .arg(self.room_ttl_ms)
            .arg(floor)
            .arg(
                commit
                    .snapshot_at
                    .map(|_| seq.to_string())
                    .unwrap_or_default(),
            )
            .arg(self.clock.now())
            .arg(self.limits.history_len)
            .arg(
                commit
                    .history_floor
                    .map(|f| f.to_string())
                    .unwrap_or_default(),
            )
            .arg(forget.len())
            .arg(&forget)
            .arg(owners.len());
        for (field, node) in &owners {
            invocation.arg(field).arg(node);
        }
        for conn in &commit.change.replaced {
            invocation.arg(replaced_message(conn));
        }
        for frame in commit.change.frames() {
            invocation.arg(format!("e|{}", frame.to_json()));
        }
        if let Some(now) = commit.snapshot_at {
            let members = roster.snapshot(now);
            let snapshot = ServerFrame::Snapshot(Snapshot { seq: 0, members });
            invocation.arg(format!("n|{}", snapshot.to_json()));
        }
        let seq: i64 = invocation
            .invoke_async(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(u64::try_from(seq).ok())
    }

    /// The room's history up to `seq`, and the seq up to which events may
    /// be missing from it.
    pub(super) async fn history(
        &self,
        room: &RoomName,
        seq: u64,
    ) -> Result<(Vec<HistoryEntry>, u64), BackplaneError> {
        let (floor, entries): (Option<u64>, Vec<(String, Vec<String>)>) = redis::pipe()
            .hget(room_key(room), "hf")
            .cmd("XRANGE")
            .arg(log_key(room))
            .arg("-")
            .arg(seq)
            .query_async(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok((
            entries
                .iter()
                .filter_map(|(id, fields)| history_entry(id, fields))
                .collect(),
            floor.unwrap_or(0),
        ))
    }

    /// Numbers, records and publishes frame `id` of `member`; `false` if the
    /// room does not exist.
    pub(super) async fn publish_frame(
        &self,
        room: &RoomName,
        member: &str,
        id: &str,
        event: &ClientEvent,
        frame: &ServerFrame,
        now: u64,
    ) -> Result<bool, BackplaneError> {
        let (field, value) = record_field(member, event, now);
        let seq: i64 = self
            .scripts
            .publish
            .key(room_key(room))
            .key(log_key(room))
            .arg(field)
            .arg(value)
            .arg(frame.to_json())
            .arg(self.room_ttl_ms)
            .arg(if frame.is_event() { "1" } else { "0" })
            .arg(now)
            .arg(self.limits.history_len)
            .arg(id)
            .invoke_async(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(seq >= 0)
    }
}
