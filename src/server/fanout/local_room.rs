//! This instance's members of one room: the backplane's [`RoomSink`] for
//! the room, which serialises each frame once and hands it to every
//! member's mailbox.

use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use super::mailbox::{Fit, Mailbox, Outbound};
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
    /// mailbox gives up typing pings first; one that is full of actions is
    /// closed, and its connection with it (as a slow consumer).
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
                Fit::TypingDropped => {
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
        self.hand_out(&match frame {
            ServerFrame::Typing(stamped) => Outbound::typing(text, seq, stamped.from),
            _ => Outbound::lasting(text, seq),
        });
    }

    fn deliver_text(&self, seq: u64, text: String, typing_from: Option<Arc<str>>) {
        self.hand_out(&match typing_from {
            Some(from) => Outbound::typing(text, seq, from),
            None => Outbound::lasting(text, seq),
        });
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
