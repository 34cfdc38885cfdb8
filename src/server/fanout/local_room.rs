//! This instance's members of one room: the backplane's [`RoomSink`] for
//! the room, which serialises each frame once and hands it to every
//! member's mailbox.

use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use super::mailbox::{Fit, Keep, Mailbox, Outbound};
use crate::{
    protocol::ServerFrame,
    server::{
        backplane::RoomSink,
        stats::{DropReason, Stats},
    },
};

/// Each connection's id and mailbox.
type Mailboxes = SmallVec<[(Arc<str>, Arc<Mailbox>); 2]>;

/// The connections of one room on this instance.
#[derive(Debug)]
pub struct LocalRoom {
    // Nothing awaited while held; the mailboxes' locks are taken inside it.
    // A list, for the two or so connections of a room: smaller than a map
    // and quicker to walk; the two players' inline, so that handing out a
    // frame chases no pointer to the list (with 9,000 rooms, a cache miss).
    mailboxes: Mutex<Mailboxes>,
    stats: Arc<Stats>,
}

impl LocalRoom {
    /// A room with no connection yet.
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            mailboxes: Mutex::default(),
            stats,
        }
    }

    /// Adds connection `conn`'s mailbox.
    pub fn attach(&self, conn: Arc<str>, mailbox: Arc<Mailbox>) {
        let mut mailboxes = self.lock();
        mailboxes.retain(|(attached, _)| *attached != conn);
        mailboxes.reserve_exact(1);
        mailboxes.push((conn, mailbox));
    }

    /// Removes connection `conn`'s mailbox; `true` if the room is now empty.
    pub fn detach(&self, conn: &str) -> bool {
        let mut mailboxes = self.lock();
        mailboxes.retain(|(attached, _)| **attached != *conn);
        mailboxes.is_empty()
    }

    /// Tells every connection of the room that the server is shutting down.
    pub fn shut_down(&self) {
        for (_, mailbox) in self.lock().iter() {
            mailbox.shut_down();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Mailboxes> {
        self.mailboxes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the frame to the room's connections. Never blocks: a full
    /// mailbox gives up typing pings and the audience's presence first; one
    /// that is full of frames that must arrive is closed, and its
    /// connection with it (as a slow consumer).
    fn hand_out(&self, frame: &Outbound) {
        self.lock()
            .retain(|(_, mailbox)| match mailbox.push(frame) {
                Fit::Queued => {
                    self.stats.delivered();
                    true
                }
                Fit::Coalesced => {
                    self.stats.dropped(DropReason::Coalesced);
                    true
                }
                Fit::GaveWay => {
                    self.stats.dropped(DropReason::QueueFull);
                    true
                }
                Fit::Overflow => {
                    self.stats.dropped(DropReason::SlowConsumer);
                    false
                }
                // Closing for shutdown: the page comes back and catches up.
                Fit::Closed => false,
            });
    }
}

impl RoomSink for LocalRoom {
    fn deliver(&self, seq: u64, frame: ServerFrame) {
        let frame = frame.with_seq(seq);
        let text = frame.to_json();
        self.hand_out(&Outbound::new(text, seq, keep(frame)));
    }

    fn deliver_text(&self, seq: u64, text: String, typing_from: Option<Arc<str>>) {
        let keep = typing_from.map_or(Keep::Always, Keep::Latest);
        self.hand_out(&Outbound::new(text, seq, keep));
    }

    fn replaced(&self, conn: &str) {
        let mut mailboxes = self.lock();
        if let Some(at) = mailboxes
            .iter()
            .position(|(attached, _)| **attached == *conn)
        {
            mailboxes.swap_remove(at).1.replace();
        }
    }
}

/// Whether `frame` may give way in a full mailbox.
fn keep(frame: ServerFrame) -> Keep {
    match frame {
        ServerFrame::Typing(stamped) => Keep::Latest(stamped.from),
        frame if frame.is_audience() => Keep::IfRoom,
        _ => Keep::Always,
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, task::Poll};

    use super::{keep, Keep, LocalRoom};
    use crate::{
        protocol::{
            Action, ClientEvent, ClientFrame, MemberRef, Presence, PresenceEvent, Role, ServerFrame,
        },
        server::{backplane::RoomSink, fanout::Mailbox, stats::Stats},
    };

    fn relayed(event: ClientEvent) -> ServerFrame {
        ServerFrame::relayed(
            ClientFrame::new(event),
            &MemberRef::new("m1", Role::Player),
            0,
        )
    }

    fn presence(role: Role) -> ServerFrame {
        ServerFrame::Presence(Presence {
            event: PresenceEvent::Join,
            member: MemberRef::new("m2", role),
            seq: 0,
        })
    }

    #[test]
    fn typing_pings_and_the_audience_may_give_way_and_nothing_else() {
        assert_eq!(
            keep(relayed(ClientEvent::Typing)),
            Keep::Latest("m1".into())
        );
        assert_eq!(keep(presence(Role::Spectator)), Keep::IfRoom);
        assert_eq!(keep(presence(Role::Player)), Keep::Always);
        let verdict = ClientEvent::Action(Action::FailedTest(3));
        assert_eq!(keep(relayed(verdict)), Keep::Always);
        assert_eq!(keep(relayed(ClientEvent::Away(true))), Keep::Always);
    }

    #[test]
    fn a_full_mailbox_goes_without_the_audience_and_closes_for_a_player() {
        let stats = Arc::new(Stats::default());
        let room = LocalRoom::new(stats.clone());
        let mailbox = Arc::new(Mailbox::new(1));
        room.attach("c1".into(), mailbox.clone());
        room.deliver(1, relayed(ClientEvent::Action(Action::Submitted)));
        for seq in 2..=5 {
            room.deliver(seq, presence(Role::Spectator));
        }
        assert_eq!(stats.snapshot().gave_way, 4);
        assert!(!room.detach("other"), "still attached");
        room.deliver(6, presence(Role::Player));
        assert_eq!(stats.snapshot().slow_consumers, 1);
        assert!(matches!(mailbox.try_recv(), Poll::Ready(Some(_))));
        assert!(matches!(mailbox.try_recv(), Poll::Ready(None)), "closed");
    }
}
