//! Local-first rooms: while every connection of a room is on this instance,
//! the instance numbers the room's frames itself and delivers them at once,
//! without waiting on Redis, then writes them to Redis in order (one writer
//! per room, started on demand, a pipeline per turn), so that the room's
//! seq, records and history stay whole there.
//!
//! Redis says which instance is a room's sole one: every roster commit
//! sets the hash field `sole` to the instance of all the room's `n:<conn>`
//! fields, if they are all one. This instance numbers a room's frames only
//! when Redis last told it (in a commit's or a publish's answer) that it
//! is the sole one, none of its own commits to the room is under way, none
//! of its publishes to the room is waiting on Redis, and every frame Redis
//! numbered has reached the room here ([`LocalFirst::may_number`]).
//! Otherwise frames take the shared path: numbered by Redis, delivered
//! back through the subscription.
//!
//! The scripts refuse another live instance's commit or publish to the
//! room while it has a sole instance. That instance (a join there, a
//! verdict through it) publishes a handover request (`h|<id>`) on the
//! room's channel and tries again shortly. The sole instance stops
//! numbering, and its writer, after its last write, clears `sole`
//! (`scripts/release.lua`): the retry then numbers after every frame
//! handed out here. The scripts ignore a sole instance that is no longer
//! alive.

use std::{collections::VecDeque, time::Duration};

use crate::protocol::{ClientEvent, ServerFrame};

/// A frame numbered and delivered here, not written to Redis yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    /// Its number in the room's sequence.
    pub seq: u64,
    /// The member whose frame it is.
    pub member: String,
    /// What it records about the member.
    pub event: ClientEvent,
    /// When it was sent (ms since the epoch).
    pub at: u64,
    /// The frame (without its seq), serialised by the writer, off the
    /// sender's path.
    pub frame: ServerFrame,
}

/// Whether this instance may number a room's frames itself, and what it
/// numbered that Redis does not have yet. Pure: the instance holds it in
/// the room's log, under the log's lock.
#[derive(Debug, Default)]
pub struct LocalFirst {
    /// Redis last said this instance serves every connection of the room.
    sole: bool,
    /// Bumped by every handover and outage: an answer to a call begun
    /// before one cannot make the room sole again.
    epoch: u64,
    /// Roster commits of this instance to the room under way.
    committing: u32,
    /// Publishes of this instance to the room waiting on Redis.
    in_flight: u32,
    /// The highest seq Redis gave anything of the room.
    known: u64,
    /// Frames numbered here and not written yet, oldest first.
    queue: VecDeque<Put>,
    /// Clear `sole` in Redis after the queue.
    release: bool,
    /// The room's writer is running.
    writing: bool,
}

/// What the room's writer sends next, in one pipeline.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    /// Frames to write, in order.
    pub puts: Vec<Put>,
    /// Then clear `sole`.
    pub release: bool,
}

/// A call to Redis about the room, begun at an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A publish on the shared path.
    Publish(u64),
    /// A roster commit.
    Commit(u64),
}

impl LocalFirst {
    /// May the next frame of the room be numbered here, after `seq`, the
    /// last one handed to the room?
    pub fn may_number(&self, seq: u64) -> bool {
        self.sole && self.committing == 0 && self.in_flight == 0 && seq >= self.known
    }

    /// Queues a frame numbered here; `true` if the writer must start.
    pub fn queue(&mut self, put: Put) -> bool {
        self.queue.push_back(put);
        self.start()
    }

    fn start(&mut self) -> bool {
        !std::mem::replace(&mut self.writing, true)
    }

    /// A publish on the shared path begins: nothing is numbered here until
    /// it is answered.
    pub fn begin_publish(&mut self) -> Call {
        self.in_flight += 1;
        Call::Publish(self.epoch)
    }

    /// A roster commit of this instance begins: nothing is numbered here
    /// until it is answered.
    pub fn begin_commit(&mut self) -> Call {
        self.committing += 1;
        Call::Commit(self.epoch)
    }

    /// `call` ended: if Redis answered, it numbered up to `seq` and said
    /// whether this instance is the room's sole one.
    pub fn ended(&mut self, call: Call, answer: Option<(u64, bool)>) {
        let epoch = match call {
            Call::Publish(epoch) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                epoch
            }
            Call::Commit(epoch) => {
                self.committing = self.committing.saturating_sub(1);
                epoch
            }
        };
        if let Some((seq, sole)) = answer {
            self.known = self.known.max(seq);
            if epoch == self.epoch {
                self.sole = sole;
            }
        }
    }

    /// Another instance asked to serve the room: nothing more is numbered
    /// here, and `sole` is cleared after the last write. `true` if the
    /// writer must start.
    pub fn hand_over(&mut self) -> bool {
        self.lost();
        self.release = true;
        self.start()
    }

    /// The link went down: nothing is numbered here as the sole instance
    /// until Redis says so again.
    pub fn lost(&mut self) {
        self.sole = false;
        self.epoch += 1;
    }

    /// The writer's next batch; `None` when there is nothing left (the
    /// writer stops).
    pub fn next_batch(&mut self) -> Option<Batch> {
        let batch = Batch {
            puts: self.queue.drain(..).collect(),
            release: std::mem::take(&mut self.release),
        };
        if batch == Batch::default() {
            self.writing = false;
            return None;
        }
        Some(batch)
    }

    /// A write failed: the writer stops, and nothing is numbered here as
    /// the sole instance until Redis says so again. Returns the frames
    /// that were still to be written.
    pub fn abandon(&mut self) -> Vec<Put> {
        self.lost();
        self.release = false;
        self.writing = false;
        self.queue.drain(..).collect()
    }

    /// The room's writer is running.
    pub fn writing(&self) -> bool {
        self.writing
    }
}

/// How long to wait before trying again after handover request number
/// `attempt` (from 0).
pub fn handover_delay(attempt: u32) -> Duration {
    Duration::from_millis(2u64 << attempt.min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(seq: u64) -> Put {
        Put {
            seq,
            member: "m1".into(),
            event: ClientEvent::Typing,
            at: 1,
            frame: ServerFrame::Heartbeat,
        }
    }

    fn sole_at(seq: u64) -> LocalFirst {
        let mut first = LocalFirst::default();
        let call = first.begin_commit();
        first.ended(call, Some((seq, true)));
        first
    }

    #[test]
    fn a_room_is_numbered_here_only_once_redis_said_it_is_sole_and_its_frames_arrived() {
        let mut first = LocalFirst::default();
        assert!(!first.may_number(0), "not before Redis says so");
        let call = first.begin_commit();
        assert!(!first.may_number(0));
        first.ended(call, Some((5, true)));
        assert!(!first.may_number(4), "frame 5 has not reached the room yet");
        assert!(first.may_number(5));

        let mut shared = LocalFirst::default();
        let call = shared.begin_commit();
        shared.ended(call, Some((5, false)));
        assert!(!shared.may_number(5), "another instance serves the room");
    }

    #[test]
    fn nothing_is_numbered_here_while_a_call_of_this_instance_waits_on_redis() {
        let mut first = sole_at(5);
        let publish = first.begin_publish();
        assert!(!first.may_number(5), "a publish is waiting");
        first.ended(publish, Some((6, true)));
        assert!(!first.may_number(5), "its frame has not come back");
        assert!(first.may_number(6));
        let commit = first.begin_commit();
        assert!(!first.may_number(6), "a commit is under way");
        first.ended(commit, None);
        assert!(
            first.may_number(6),
            "a failed call leaves the room as it was"
        );
    }

    #[test]
    fn a_handover_stops_numbering_here_and_releases_after_the_last_write() {
        let mut first = sole_at(5);
        assert!(first.queue(put(6)), "the first frame starts the writer");
        assert!(!first.queue(put(7)), "the writer is running");
        assert!(!first.hand_over(), "the running writer releases");
        assert!(!first.may_number(7));
        assert_eq!(
            first.next_batch(),
            Some(Batch {
                puts: vec![put(6), put(7)],
                release: true
            }),
            "the frames first, then the release, in one pipeline"
        );
        assert_eq!(first.next_batch(), None);
        assert!(!first.writing());
        assert!(first.hand_over(), "an idle room starts a writer to release");
    }

    #[test]
    fn an_answer_to_a_call_begun_before_a_handover_does_not_make_the_room_sole_again() {
        let mut first = sole_at(5);
        let commit = first.begin_commit();
        first.hand_over();
        first.ended(commit, Some((6, true)));
        assert!(!first.may_number(6));
        let publish = first.begin_publish();
        first.ended(publish, Some((7, true)));
        assert!(first.may_number(7), "a call begun after it may");
        let publish = first.begin_publish();
        first.lost();
        first.ended(publish, Some((8, true)));
        assert!(!first.may_number(8), "nor across an outage");
    }

    #[test]
    fn a_failed_write_gives_back_what_was_left_and_stops_numbering_here() {
        let mut first = sole_at(5);
        first.queue(put(6));
        let batch = first.next_batch().unwrap();
        first.queue(put(7));
        assert_eq!(batch.puts, [put(6)]);
        assert_eq!(first.abandon(), [put(7)]);
        assert!(!first.writing());
        assert!(!first.may_number(7));
    }

    #[test]
    fn the_wait_for_a_handover_grows_from_2_ms_to_64() {
        let waits: Vec<u128> = (0..8).map(|n| handover_delay(n).as_millis()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 64, 64]);
    }
}
