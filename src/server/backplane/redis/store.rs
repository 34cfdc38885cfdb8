//! Rooms in Redis: reading a room's hash, committing roster changes with
//! compare-and-set, and numbering, recording and publishing frames, each
//! in one atomic script.

use std::collections::HashMap;

use redis::{
    aio::ConnectionManager, AsyncCommands, Cmd, ErrorKind, FromRedisValue, Script, ServerErrorKind,
};
use tracing::warn;

use super::{
    codec::{history_entry, record_field, replaced_message, Commit, StoredRoom},
    keys::{LogKey, RoomKey, NODE_PREFIX},
    lock,
    numbering::{Handover, Pending},
    Instance,
};
use crate::{
    protocol::{ClientEvent, HistoryEntry, RoomName, ServerFrame, Snapshot},
    server::{backplane::BackplaneError, room::Roster},
};

/// How many times a roster change is retried when another instance changed
/// the roster first.
const MAX_ATTEMPTS: usize = 32;

/// The Lua scripts, called by their hash (`EVALSHA`) and loaded into Redis
/// when it answers that it does not have them (`NOSCRIPT`): by redis-rs for
/// the commit, by `run_script` for a frame's publish, and ahead
/// of them in the pipelines of a local-first room's writer.
pub struct Scripts {
    commit: Script,
    pub(super) publish: Script,
    pub(super) release: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            commit: Script::new(include_str!("scripts/commit.lua")),
            publish: Script::new(include_str!("scripts/publish.lua")),
            release: Script::new(include_str!("scripts/release.lua")),
        }
    }
}

/// What a frame's publish through Redis came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Numbered `seq`; `sole` if this instance serves every connection of
    /// the room.
    Numbered { seq: u64, sole: bool },
    /// The room does not exist.
    Missing,
    /// Another live instance numbers the room's frames itself.
    Elsewhere,
}

/// Who numbers a frame that the publish script records.
#[derive(Debug, Clone, Copy)]
pub enum Numbering<'a> {
    /// Redis numbers it and publishes it as frame `id`.
    ByRedis { id: &'a str },
    /// This instance numbered it `seq` and delivered it itself.
    Here { seq: u64 },
}

/// What a roster commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committed {
    /// Written; the room's seq after it, and whether this instance serves
    /// every connection of the room.
    Done { seq: u64, sole: bool },
    /// Another instance changed the roster first.
    Moved,
    /// Another live instance numbers the room's frames itself.
    Elsewhere,
}

impl From<(i64, i64)> for Committed {
    fn from((seq, sole): (i64, i64)) -> Self {
        match u64::try_from(seq) {
            Ok(seq) => Self::Done {
                seq,
                sole: sole == 1,
            },
            Err(_) if seq == -2 => Self::Elsewhere,
            Err(_) => Self::Moved,
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
            .hgetall(RoomKey(room))
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(StoredRoom::from(&fields))
    }

    /// Applies `change` to the room's roster and commits it, again if
    /// another instance changed the roster in between, or after asking the
    /// room's sole instance to hand it over. Returns what `change`
    /// returned, the room's `seq` after it, and the new roster. Frames
    /// numbered up to `floor` were already handed out here: the room's
    /// sequence continues after them. Nothing is numbered here while it
    /// runs, and it starts once this instance's writes to the room landed.
    pub(super) async fn update<T, E: From<BackplaneError>>(
        &self,
        room: &RoomName,
        floor: u64,
        mut change: impl FnMut(&mut Roster, &mut Commit) -> Result<T, E>,
    ) -> Result<(T, u64, Roster), E> {
        let mut pending = match self.subscription(room) {
            Some(local) => {
                let pending = Pending::commit(local.clone());
                self.drained(&local).await?;
                Some(pending)
            }
            None => None,
        };
        let mut handover = Handover::begin();
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
            match self
                .commit(room, &roster, &version, seq, floor, &commit)
                .await?
            {
                Committed::Done { seq, sole } => {
                    if let Some(pending) = &mut pending {
                        pending.answer = Some((seq, sole));
                    }
                    return Ok((value, seq, roster));
                }
                Committed::Moved => {}
                Committed::Elsewhere if handover.expired(self) => {
                    return Err(BackplaneError::Unavailable.into())
                }
                Committed::Elsewhere => handover.ask(self, room).await?,
            }
        }
        warn!(%room, "roster kept changing under this instance");
        Err(BackplaneError::Unavailable.into())
    }

    /// Writes `roster` and what `commit` says if the version read is still
    /// the room's and no other instance numbers its frames.
    async fn commit(
        &self,
        room: &RoomName,
        roster: &Roster,
        version: &str,
        seq: u64,
        floor: u64,
        commit: &Commit,
    ) -> Result<Committed, BackplaneError> {
        let json = if roster.is_empty() {
            String::new()
        } else {
            serde_json::to_string(roster).expect("rosters always serialise")
        };
        let forget = commit.forget();
        let owners = commit.owners(&self.node);
        let mut invocation = self.scripts.commit.key(RoomKey(room));
        invocation
            .key(LogKey(room))
            .arg(&self.node)
            .arg(NODE_PREFIX)
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
            let kind = if frame.is_event() { 'e' } else { 'n' };
            invocation.arg(format!("{kind}|{}", frame.to_json()));
        }
        if let Some(now) = commit.snapshot_at {
            let members = roster.snapshot(now);
            let snapshot = ServerFrame::Snapshot(Snapshot { seq: 0, members });
            invocation.arg(format!("n|{}", snapshot.to_json()));
        }
        let answer: (i64, i64) = invocation
            .invoke_async(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(answer.into())
    }

    /// The room's history up to `seq`, and the seq up to which events may
    /// be missing from it.
    pub(super) async fn history(
        &self,
        room: &RoomName,
        seq: u64,
    ) -> Result<(Vec<HistoryEntry>, u64), BackplaneError> {
        let (floor, entries): (Option<u64>, Vec<(String, Vec<String>)>) = redis::pipe()
            .hget(RoomKey(room), "hf")
            .cmd("XRANGE")
            .arg(LogKey(room))
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

    /// Numbers, records and publishes frame `id` of `member`.
    pub(super) async fn publish_frame(
        &self,
        room: &RoomName,
        member: &str,
        id: &str,
        event: &ClientEvent,
        frame: &ServerFrame,
        now: u64,
    ) -> Result<Published, BackplaneError> {
        let call = self.publish_call(room, member, event, frame, now, Numbering::ByRedis { id });
        let (seq, sole): (i64, i64) = self.run_script(&self.scripts.publish, &call).await?;
        Ok(match u64::try_from(seq) {
            Ok(seq) => Published::Numbered {
                seq,
                sole: sole == 1,
            },
            Err(_) if seq == -2 => Published::Elsewhere,
            Err(_) => Published::Missing,
        })
    }

    /// The publish script's call for frame `frame` of `member`, sent at
    /// `at`: `EVALSHA`, its keys and arguments written straight into the
    /// command. A `ScriptInvocation` gives each argument a buffer of its
    /// own, then copies them all into a command: 10 % more instructions a
    /// frame on a fleet instance (docs/performance.md).
    pub(super) fn publish_call(
        &self,
        room: &RoomName,
        member: &str,
        event: &ClientEvent,
        frame: &ServerFrame,
        at: u64,
        numbering: Numbering<'_>,
    ) -> Cmd {
        let (field, value) = record_field(member, event, at);
        let json = frame.to_json();
        let size = 192 + 2 * room.as_str().len() + field.len() + value.len() + json.len();
        let mut call = Cmd::with_capacity(16, size);
        call.arg("EVALSHA")
            .arg(self.scripts.publish.get_hash())
            .arg(2)
            .arg(RoomKey(room))
            .arg(LogKey(room))
            .arg(field)
            .arg(value)
            .arg(json)
            .arg(self.room_ttl_ms)
            .arg(if frame.is_event() { "1" } else { "0" })
            .arg(at)
            .arg(self.limits.history_len);
        match numbering {
            Numbering::ByRedis { id } => call.arg(id).arg(&self.node).arg(NODE_PREFIX).arg(""),
            Numbering::Here { seq } => call.arg("").arg(&self.node).arg(NODE_PREFIX).arg(seq),
        };
        call
    }

    /// Runs `call`, an `EVALSHA` of `script`; if Redis does not have the
    /// script (it started afresh, or flushed its scripts), loads it and runs
    /// `call` again.
    async fn run_script<T: FromRedisValue>(
        &self,
        script: &Script,
        call: &Cmd,
    ) -> Result<T, BackplaneError> {
        let mut commands = self.commands()?;
        let answer = async {
            match call.query_async(&mut commands).await {
                Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut commands).await?;
                    call.query_async(&mut commands).await
                }
                answer => answer,
            }
        };
        answer.await.map_err(|e| self.failed(&e))
    }
}
