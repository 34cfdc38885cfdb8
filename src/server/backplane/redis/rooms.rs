//! The room store of the Redis backplane: seats, presence, frames and
//! verdicts, through the instance's store and, while Redis is unreachable,
//! its offline rooms.

use std::{fmt, sync::Arc};

use super::{lock, numbering::Relayed, Instance, LocalSeat, RedisBackplane};
use crate::{
    protocol::{Action, ClientEvent, ClientFrame, MemberRef, PlayerKey, RoomName, ServerFrame},
    server::{
        backplane::{
            later, BackplaneError, JoinError, Joined, RoomLink, RoomStore, StoreFuture,
            VerdictError,
        },
        room::JoinRequest,
    },
};

impl RoomStore for RedisBackplane {
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        request: JoinRequest,
        now: u64,
    ) -> StoreFuture<'a, Result<Joined, JoinError>> {
        let instance = &self.instance;
        later(async move {
            let (Some(local), true) = (instance.subscription(room), instance.is_up()) else {
                return Err(BackplaneError::Unavailable.into());
            };
            tokio::time::timeout(instance.timeouts.command * 2, local.subscribed())
                .await
                .map_err(|_| BackplaneError::Unavailable)??;
            let (seat, seq, roster) = instance
                .update(room, 0, |roster, commit| {
                    commit.change.expire(roster, now);
                    Ok::<_, JoinError>(commit.change.take_seat(
                        roster,
                        request.clone(),
                        &instance.limits,
                    )?)
                })
                .await?;
            lock(&instance.seats).insert(
                request.conn.clone(),
                LocalSeat {
                    room: room.clone(),
                    request,
                    member: seat.member.clone(),
                },
            );
            let (history, history_floor) = instance.history(room, seq).await?;
            Ok(Joined {
                seat,
                seq,
                members: roster.snapshot(now),
                history,
                history_floor,
                link: Arc::new(RedisLink {
                    instance: instance.clone(),
                    room: room.clone(),
                }),
            })
        })
    }

    fn disconnect<'a>(
        &'a self,
        room: &'a RoomName,
        conn: &'a str,
        clean: bool,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>> {
        let instance = &self.instance;
        later(async move {
            let seat = lock(&instance.seats).remove(conn);
            if instance.is_up() {
                let change = instance
                    .update(room, 0, |roster, commit| {
                        Ok::<_, BackplaneError>(commit.change.give_up_seat(
                            roster,
                            conn,
                            clean,
                            &instance.limits,
                            now,
                        ))
                    })
                    .await;
                if let Ok((deadline, _, _)) = change {
                    return Ok(deadline);
                }
            }
            Ok(seat
                .and_then(|seat| instance.disconnect_offline(room, conn, clean, seat.member, now)))
        })
    }

    fn expire<'a>(
        &'a self,
        room: &'a RoomName,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>> {
        later(self.instance.expire(room, now))
    }

    fn publish_verdict<'a>(
        &'a self,
        room: &'a RoomName,
        player: &'a PlayerKey,
        action: Action,
        now: u64,
    ) -> StoreFuture<'a, Result<(), VerdictError>> {
        let instance = &self.instance;
        later(async move {
            if !instance.is_up() {
                return Err(BackplaneError::Unavailable.into());
            }
            let member = instance
                .load(room)
                .await?
                .roster
                .player_of(player)
                .ok_or(VerdictError::NoSuchPlayer)?;
            let event = ClientEvent::Action(action);
            let frame = ServerFrame::verdict(action, &member, 0);
            let id = instance.frame_id();
            match instance
                .relay(room, &member.id, &id, &event, frame, now)
                .await
            {
                Ok(Relayed::Done) => Ok(()),
                Ok(Relayed::NoRoom) => Err(VerdictError::NoSuchPlayer),
                Ok(Relayed::Refused) | Err(_) => Err(BackplaneError::Unavailable.into()),
            }
        })
    }
}

/// A seat's link to its room through Redis.
struct RedisLink {
    instance: Arc<Instance>,
    room: RoomName,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl RoomLink for RedisLink {
    fn publish(
        &self,
        from: &MemberRef,
        frame: ClientFrame,
        now: u64,
    ) -> StoreFuture<'static, Result<(), BackplaneError>> {
        let (instance, room, from) = (self.instance.clone(), self.room.clone(), from.clone());
        later(async move {
            let (room, from) = (&room, &from);
            let event = frame.event.clone();
            let frame = ServerFrame::relayed(frame, from, 0);
            let id = instance.frame_id();
            let frame = match instance
                .relay(room, &from.id, &id, &event, frame, now)
                .await
            {
                Ok(Relayed::Done | Relayed::NoRoom) => return Ok(()),
                Ok(Relayed::Refused) => {
                    instance.stats.unpublished();
                    return Ok(());
                }
                Err(frame) => frame,
            };
            // Redis is down, or did not answer in time (it may still
            // publish the frame later: the id tells that copy apart). The
            // members here get the frame now, once.
            instance.stats.unpublished();
            if instance.first_delivery(&id) {
                instance.deliver_locally(room, frame, Some((&from.id, &event, now)));
            }
            Ok(())
        })
    }
}
