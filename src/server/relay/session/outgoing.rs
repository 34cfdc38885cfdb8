//! What the mailbox holds, written to the socket: a wake-up's frames fed
//! one after the other, then one flush.
//!
//! Nearly every batch finds room in the socket's buffer at once, so the
//! batch is a plain state polled in place: no future of its own to box
//! for each wake-up (an allocation and a copy of a kilobyte, the largest
//! share of the relay's own work, docs/performance.md), and no timer. Only
//! a batch that has to wait for the client is boxed, with its deadline.
//! Frames stay in the mailbox until the socket can take them, where they
//! still coalesce.

use std::{
    future::poll_fn,
    task::{ready, Context, Poll},
};

use futures_util::SinkExt;
use tokio::time::Instant;
use tungstenite::Message;

use super::{within, Ending, Session};
use crate::{
    protocol::Close,
    server::fanout::{Mailbox, Outgoing},
};

/// Most frames written between two flushes: a long queue reaches the
/// client in parts, each flushed, rather than all after one flush.
const BATCH_FRAMES: u8 = 64;

/// One wake-up's writing, as far as it got.
pub(super) struct Batch {
    /// How many more frames it may take from the mailbox.
    left: u8,
    /// Once it takes no more: how it ends, after its flush.
    fed: Option<Result<(), Ending>>,
}

impl Batch {
    pub(super) fn new() -> Self {
        Self {
            left: BATCH_FRAMES,
            fed: None,
        }
    }

    /// The next frame it takes from `mailbox`, in order: `None` once it
    /// took its share or the mailbox is empty, `Some(None)` if the mailbox
    /// overflowed and is drained.
    fn take(&mut self, mailbox: &Mailbox) -> Option<Option<Outgoing>> {
        if self.left == 0 {
            return None;
        }
        match mailbox.try_recv() {
            Poll::Ready(next) => {
                self.left -= 1;
                Some(next)
            }
            Poll::Pending => None,
        }
    }
}

impl Session {
    /// Writes what the mailbox holds (up to [`BATCH_FRAMES`]), then flushes
    /// once; all of it within one deadline, whose timer is armed only if a
    /// write has to wait.
    pub(super) async fn on_outgoing(&mut self, mut batch: Batch) -> Result<(), Ending> {
        let limit = self.relay.silence_limit;
        let writing = poll_fn(|cx| self.poll_batch(cx, &mut batch));
        (within(limit, writing).await).unwrap_or(Err(Ending::Lost))
    }

    /// Feeds the batch's frames while the socket takes them, then flushes:
    /// `Ok` once all are written, or the connection's end if a frame ends
    /// it (after what came before it is flushed).
    fn poll_batch(&mut self, cx: &mut Context<'_>, batch: &mut Batch) -> Poll<Result<(), Ending>> {
        // The clock, read once for the frames fed at this poll.
        let mut now = None;
        while batch.fed.is_none() {
            if ready!(self.socket.poll_ready_unpin(cx)).is_err() {
                return Poll::Ready(Err(Ending::Lost));
            }
            let close = match batch.take(&self.membership.outbound) {
                Some(Some(Outgoing::Frame(frame))) => {
                    if frame.seq > self.snapshot_seq {
                        if self
                            .socket
                            .start_send_unpin(Message::Text(frame.text))
                            .is_err()
                        {
                            return Poll::Ready(Err(Ending::Lost));
                        }
                        let now = *now.get_or_insert_with(Instant::now);
                        self.relay
                            .stats
                            .fanout(now.saturating_duration_since(frame.published_at));
                        self.last_written = now;
                    }
                    continue;
                }
                None => {
                    batch.fed = Some(Ok(()));
                    break;
                }
                Some(Some(Outgoing::Replaced)) => Close::Replaced,
                Some(Some(Outgoing::Shutdown)) => Close::Shutdown,
                Some(None) => Close::SlowConsumer,
            };
            batch.fed = Some(Err(Ending::ByServer(close)));
        }
        if ready!(self.socket.poll_flush_unpin(cx)).is_err() {
            return Poll::Ready(Err(Ending::Lost));
        }
        Poll::Ready(batch.fed.take().unwrap_or(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::fanout::{Keep, Outbound};

    /// The seqs a batch takes, and how it stops.
    fn taken(batch: &mut Batch, mailbox: &Mailbox) -> (Vec<u64>, &'static str) {
        let mut seqs = Vec::new();
        loop {
            match batch.take(mailbox) {
                Some(Some(Outgoing::Frame(frame))) => seqs.push(frame.seq),
                Some(Some(Outgoing::Shutdown)) => return (seqs, "shutdown"),
                Some(Some(Outgoing::Replaced)) => return (seqs, "replaced"),
                Some(None) => return (seqs, "overflowed"),
                None => return (seqs, "done"),
            }
        }
    }

    #[test]
    fn a_batch_takes_frames_in_order_up_to_its_size_and_leaves_the_rest_queued() {
        let mailbox = Mailbox::new(100);
        for seq in 1..=100 {
            mailbox.push(&Outbound::new(format!("action {seq}"), seq, Keep::Always));
        }
        let (seqs, end) = taken(&mut Batch::new(), &mailbox);
        assert_eq!((seqs, end), ((1..=64).collect(), "done"));
        mailbox.shut_down();
        let (seqs, end) = taken(&mut Batch::new(), &mailbox);
        assert_eq!((seqs, end), ((65..=100).collect(), "shutdown"));
    }

    #[test]
    fn a_batch_ends_at_an_overflow_after_the_frames_queued_before_it() {
        let mailbox = Mailbox::new(2);
        for seq in 1..=3 {
            mailbox.push(&Outbound::new(format!("action {seq}"), seq, Keep::Always));
        }
        assert_eq!(
            taken(&mut Batch::new(), &mailbox),
            (vec![1, 2], "overflowed")
        );
    }
}
