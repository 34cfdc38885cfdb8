//! The instance's side of local-first rooms ([`super::local_first`]):
//! numbering a room's frames here and delivering them at once, the room's
//! writer that sends them to Redis behind, and handovers, asked for and
//! given.

use std::{sync::Arc, time::Instant};

use super::{
    codec::handover_message,
    keys::RoomKey,
    local_first::{handover_delay, Batch, Call, Put},
    offline::Subscription,
    store::{Numbering, Published},
    Instance,
};
use crate::{
    protocol::{ClientEvent, RoomName, ServerFrame},
    server::backplane::BackplaneError,
};

/// What became of a frame published through [`Instance::relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// Numbered: delivered here, or published through Redis.
    Done,
    /// The room does not exist.
    NoRoom,
    /// Another instance numbers the room's frames and did not hand the room
    /// over in time (it may be cut off from Redis): delivered nowhere, since
    /// a number given here could be one it gives too.
    Refused,
}

/// Where a frame went.
enum First {
    /// Numbered and delivered here.
    Delivered,
    /// To be published through Redis: the publish is begun.
    Shared(ServerFrame, Call),
}

/// A call to Redis about a room served here, ended when dropped (also when
/// its future is dropped half-way), with Redis's answer if it gave one.
pub struct Pending {
    local: Arc<Subscription>,
    call: Call,
    /// The seq Redis numbered up to, and whether this instance is sole.
    pub answer: Option<(u64, bool)>,
}

impl Pending {
    /// A roster commit of this instance to the room `local` begins.
    pub fn commit(local: Arc<Subscription>) -> Self {
        let call = local.log().first.begin_commit();
        Self {
            local,
            call,
            answer: None,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.local.log().first.ended(self.call, self.answer);
    }
}

/// Waiting for a room's sole instance to let this one in.
pub struct Handover {
    started: Instant,
    attempt: u32,
}

impl Handover {
    pub fn begin() -> Self {
        Self {
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// The wait is past twice the command deadline: the sole instance may
    /// be cut off from Redis.
    pub fn expired(&self, instance: &Instance) -> bool {
        self.started.elapsed() > instance.timeouts.command * 2
    }

    /// Asks the room's sole instance to hand the room over, then waits a
    /// little.
    pub async fn ask(
        &mut self,
        instance: &Instance,
        room: &RoomName,
    ) -> Result<(), BackplaneError> {
        redis::cmd("PUBLISH")
            .arg(RoomKey(room))
            .arg(handover_message(&instance.node))
            .exec_async(&mut instance.commands()?)
            .await
            .map_err(|e| instance.failed(&e))?;
        tokio::time::sleep(handover_delay(self.attempt)).await;
        self.attempt += 1;
        Ok(())
    }
}

impl Instance {
    /// Publishes `frame` (id `id`) of `member` to `room`: numbered and
    /// delivered here if this instance may, otherwise through Redis (asking
    /// for a handover if another instance numbers the room); the frame back
    /// if Redis is down or did not answer in time.
    pub(super) async fn relay(
        self: &Arc<Self>,
        room: &RoomName,
        member: &str,
        id: &str,
        event: &ClientEvent,
        frame: ServerFrame,
        now: u64,
    ) -> Result<Relayed, ServerFrame> {
        if !self.is_up() {
            return Err(frame);
        }
        let local = self.subscription(room);
        let (frame, mut pending) = match local {
            Some(local) => match self.deliver_first(room, &local, member, event, frame, now) {
                First::Delivered => return Ok(Relayed::Done),
                First::Shared(frame, call) => {
                    let pending = Pending {
                        local: local.clone(),
                        call,
                        answer: None,
                    };
                    if self.drained(&local).await.is_err() {
                        return Err(frame);
                    }
                    (frame, Some(pending))
                }
            },
            None => (frame, None),
        };
        let mut handover = Handover::begin();
        loop {
            match self
                .publish_frame(room, member, id, event, &frame, now)
                .await
            {
                Ok(Published::Numbered { seq, sole }) => {
                    if let Some(pending) = &mut pending {
                        pending.answer = Some((seq, sole));
                    }
                    return Ok(Relayed::Done);
                }
                Ok(Published::Missing) => return Ok(Relayed::NoRoom),
                Ok(Published::Elsewhere) if handover.expired(self) => return Ok(Relayed::Refused),
                Ok(Published::Elsewhere) if handover.ask(self, room).await.is_ok() => {}
                Ok(Published::Elsewhere) | Err(_) => return Err(frame),
            }
        }
    }

    /// Numbers `frame` of `member` here, delivers it to the room and queues
    /// it for Redis, if this instance may number the room's frames;
    /// otherwise gives `frame` back, with its publish begun.
    fn deliver_first(
        self: &Arc<Self>,
        room: &RoomName,
        local: &Arc<Subscription>,
        member: &str,
        event: &ClientEvent,
        frame: ServerFrame,
        now: u64,
    ) -> First {
        let mut log = local.log();
        if !(self.is_up() && log.first.may_number(log.seq)) {
            let call = log.first.begin_publish();
            return First::Shared(frame, call);
        }
        log.seq += 1;
        let put = Put {
            seq: log.seq,
            member: member.to_owned(),
            event: event.clone(),
            at: now,
            frame: frame.clone(),
        };
        let start = log.first.queue(put);
        local.sink.deliver(log.seq, frame);
        drop(log);
        if start {
            tokio::spawn(self.clone().write(room.clone(), local.clone()));
        }
        First::Delivered
    }

    /// Another instance asked to serve `room`.
    pub(super) fn hand_over(self: &Arc<Self>, room: RoomName, local: Arc<Subscription>) {
        if local.log().first.hand_over() {
            tokio::spawn(self.clone().write(room, local));
        }
    }

    /// Waits until the writer of `local` wrote everything it had.
    pub(super) async fn drained(&self, local: &Subscription) -> Result<(), BackplaneError> {
        let wait = async {
            loop {
                let notified = local.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !local.log().first.writing() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(self.timeouts.command * 2, wait)
            .await
            .map_err(|_| BackplaneError::Unavailable)
    }

    /// The room's writer: writes what was numbered here, in order, until
    /// nothing is left or a write fails. A failed write is an outage: what
    /// it left out is remembered as offline frames are, and the resync
    /// writes it.
    async fn write(self: Arc<Self>, room: RoomName, local: Arc<Subscription>) {
        loop {
            let Some(batch) = local.log().first.next_batch() else {
                break;
            };
            if self.write_batch(&room, &batch).await.is_err() {
                let mut log = local.log();
                let left = log.first.abandon();
                for put in batch.puts.iter().chain(&left) {
                    log.remember(&put.member, &put.event, put.at);
                }
                drop(log);
                if self.is_up() {
                    self.link_lost("redis: frames numbered here could not be written".to_owned());
                }
                break;
            }
        }
        local.drained.notify_waiters();
    }

    /// Sends `batch` in one pipeline.
    async fn write_batch(&self, room: &RoomName, batch: &Batch) -> Result<(), BackplaneError> {
        let mut pipe = redis::pipe();
        pipe.load_script(&self.scripts.publish).ignore();
        for put in &batch.puts {
            let Put {
                seq,
                member,
                event,
                at,
                frame,
            } = put;
            let numbering = Numbering::Here { seq: *seq };
            pipe.add_command(self.publish_call(room, member, event, frame, *at, numbering));
        }
        if batch.release {
            pipe.load_script(&self.scripts.release).ignore();
            pipe.invoke_script(self.scripts.release.key(RoomKey(room)).arg(&self.node));
        }
        let answers: Vec<(i64, i64)> = pipe
            .query_async(&mut self.commands()?)
            .await
            .map_err(|e| self.failed(&e))?;
        if answers.iter().any(|(seq, _)| *seq < 0) {
            return Err(BackplaneError::Unavailable);
        }
        Ok(())
    }
}
