//! A connection's bounded, coalescing queue of outgoing frames.

use std::{
    collections::VecDeque,
    future::{poll_fn, Future},
    sync::{Arc, Mutex},
    task::Poll,
};

use futures_util::task::AtomicWaker;
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

/// A serialised frame on its way to members.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame's JSON text, shared by every member's queue.
    pub text: Utf8Bytes,
    /// Whether it may give way in a full mailbox.
    pub keep: Keep,
    /// The frame's number in the room's sequence.
    pub seq: u64,
    /// When it was published, for the fan-out latency.
    pub published_at: Instant,
}

/// Whether a frame may give way, in a full mailbox, to frames that must
/// arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// It must arrive: actions, the players' presence, snapshots...
    Always,
    /// A typing ping from this sender: only the latest of a sender matters.
    Latest(Arc<str>),
    /// A spectator coming or going: news no page shows, which a room's
    /// audience reconnecting at once (after a restart) must not turn into
    /// a full queue that closes a player's socket.
    IfRoom,
}

impl Outbound {
    /// Wraps a serialised frame.
    pub fn new(text: String, seq: u64, keep: Keep) -> Self {
        Self {
            text: text.into(),
            keep,
            seq,
            published_at: Instant::now(),
        }
    }
}

/// What a connection's mailbox hands to its task.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A frame to send.
    Frame(Outbound),
    /// A newer connection took this one's seat: close.
    Replaced,
    /// The server is shutting down: close, after the frames queued before.
    Shutdown,
}

/// How a frame fitted in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Queued.
    Queued,
    /// Full: it replaced its sender's older queued typing ping.
    Coalesced,
    /// Full: a queued frame that may give way, or this one, was dropped.
    GaveWay,
    /// Full of frames that must arrive: the reader is too slow.
    Overflow,
    /// The mailbox takes no more frames: its reader is closing.
    Closed,
}

/// A connection's bounded queue of outgoing frames. When it is full,
/// typing pings and the audience's presence give way: a newer ping
/// replaces its sender's queued one, a spectator's presence is dropped,
/// and a frame that must arrive pushes out the oldest queued one that may
/// give way. Only a mailbox full of frames that must all arrive overflows,
/// which closes the connection.
#[derive(Debug)]
pub struct Mailbox {
    // A leaf lock: nothing else is locked, and nothing awaited, while held.
    state: Mutex<MailboxState>,
    /// The one reader, waiting: registered without a lock at every poll
    /// (a `Notify` takes its lock at each), woken after each push.
    ready: AtomicWaker,
    capacity: usize,
}

#[derive(Debug, Default)]
struct MailboxState {
    queue: VecDeque<Outgoing>,
    /// No more frames: the reader overflowed or lost its seat.
    closed: bool,
}

fn is_typing_from(queued: &Outgoing, from: &Arc<str>) -> bool {
    matches!(queued, Outgoing::Frame(Outbound { keep: Keep::Latest(sender), .. }) if sender == from)
}

fn may_give_way(queued: &Outgoing) -> bool {
    matches!(
        queued,
        Outgoing::Frame(Outbound {
            keep: Keep::Latest(_) | Keep::IfRoom,
            ..
        })
    )
}

impl Mailbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: AtomicWaker::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&self, frame: &Outbound) -> Fit {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Fit::Closed;
        }
        let queue = &mut state.queue;
        if queue.capacity() == 0 {
            // Most connections wait most of the time, and an idle one has
            // had a frame or two: room for one (a first push would take
            // four slots, 288 bytes); the next push takes the four.
            queue.reserve_exact(1);
        }
        let fit = if queue.len() < self.capacity {
            queue.push_back(Outgoing::Frame(frame.clone()));
            Fit::Queued
        } else {
            match &frame.keep {
                // Only the sender's latest ping matters.
                Keep::Latest(from) => match queue.iter().rposition(|q| is_typing_from(q, from)) {
                    Some(at) => {
                        queue[at] = Outgoing::Frame(frame.clone());
                        Fit::Coalesced
                    }
                    None => Fit::GaveWay,
                },
                Keep::IfRoom => Fit::GaveWay,
                Keep::Always => match queue.iter().position(may_give_way) {
                    Some(at) => {
                        queue.remove(at);
                        queue.push_back(Outgoing::Frame(frame.clone()));
                        Fit::GaveWay
                    }
                    None => {
                        state.closed = true;
                        Fit::Overflow
                    }
                },
            }
        };
        drop(state);
        self.ready.wake();
        fit
    }

    /// Tells the reader its seat was taken, and takes no more frames.
    pub fn replace(&self) {
        self.end(Outgoing::Replaced);
    }

    /// Tells the reader the server is shutting down, once it has read what
    /// is queued, and takes no more frames. The connection's task learns it
    /// here rather than from a wait of its own, which each turn of its loop
    /// would poll (two locks a turn).
    pub fn shut_down(&self) {
        self.end(Outgoing::Shutdown);
    }

    fn end(&self, last: Outgoing) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return;
        }
        state.queue.push_back(last);
        state.closed = true;
        drop(state);
        self.ready.wake();
    }

    /// The next frame if one is queued now, without waiting:
    /// `Ready(None)` once the mailbox overflowed and is drained, `Pending`
    /// while it is empty. One reader at a time.
    pub fn try_recv(&self) -> Poll<Option<Outgoing>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.queue.pop_front() {
            Some(next) => Poll::Ready(Some(next)),
            None if state.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// Waits until [`try_recv`](Self::try_recv) has something to give,
    /// without taking it: the reader takes what it can write then.
    pub fn ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.queue.is_empty() || state.closed {
                return Poll::Ready(());
            }
            // Under the lock: a push after this check wakes this waker.
            self.ready.register(cx.waker());
            Poll::Pending
        })
    }

    /// The reader is busy with something else until it waits again (its
    /// [`ready`](Self::ready) registers anew): a push need not wake it. A
    /// connection's own frames come back to its own mailbox while its task
    /// runs, and each would wake that task for a poll that finds nothing.
    pub fn unwatch(&self) {
        drop(self.ready.take());
    }

    /// The next frame, waiting for it; `None` once the mailbox overflowed
    /// and is drained.
    #[cfg(test)]
    pub async fn recv(&self) -> Option<Outgoing> {
        loop {
            self.ready().await;
            if let Poll::Ready(next) = self.try_recv() {
                return next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing_from(from: &str, seq: u64) -> Outbound {
        Outbound::new(
            format!("typing {from} {seq}"),
            seq,
            Keep::Latest(from.into()),
        )
    }

    fn lasting(seq: u64) -> Outbound {
        Outbound::new(format!("action {seq}"), seq, Keep::Always)
    }

    fn audience(seq: u64) -> Outbound {
        Outbound::new(format!("spectator {seq}"), seq, Keep::IfRoom)
    }

    fn drain(mailbox: &Mailbox) -> Vec<String> {
        let mut state = mailbox.state.lock().unwrap();
        state
            .queue
            .drain(..)
            .map(|o| match o {
                Outgoing::Frame(f) => f.text.as_str().to_owned(),
                Outgoing::Replaced => "replaced".into(),
                Outgoing::Shutdown => "shutdown".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_each_frame_and_for_the_end() {
        let mailbox = Arc::new(Mailbox::new(4));
        let (got, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn({
            let mailbox = mailbox.clone();
            async move {
                while let Some(Outgoing::Frame(frame)) = mailbox.recv().await {
                    got.send(frame.seq).unwrap();
                }
            }
        });
        let patience = std::time::Duration::from_secs(5);
        for seq in 1..=3 {
            mailbox.push(&lasting(seq));
            let next = tokio::time::timeout(patience, heard.recv()).await;
            assert_eq!(next.expect("the waiting reader was woken"), Some(seq));
        }
        mailbox.replace();
        tokio::time::timeout(patience, reader)
            .await
            .expect("woken for the end")
            .unwrap();
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_reader_that_unwatched_is_not_woken_yet_finds_the_frame_when_it_waits_again() {
        let mailbox = Mailbox::new(4);
        let count = Arc::new(Count(0.into()));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let wakes = || count.0.load(std::sync::atomic::Ordering::SeqCst);
        assert!(std::pin::pin!(mailbox.ready()).poll(&mut cx).is_pending());
        mailbox.unwatch();
        mailbox.push(&lasting(1));
        assert_eq!(wakes(), 0, "busy: not woken");
        assert!(std::pin::pin!(mailbox.ready()).poll(&mut cx).is_ready());
        assert!(mailbox.try_recv().is_ready());
        assert!(std::pin::pin!(mailbox.ready()).poll(&mut cx).is_pending());
        mailbox.push(&lasting(2));
        assert_eq!(wakes(), 1, "waiting again: woken");
    }

    #[test]
    fn a_mailbox_takes_room_for_the_frames_it_was_given_and_no_more() {
        let mailbox = Mailbox::new(8);
        assert_eq!(mailbox.state.lock().unwrap().queue.capacity(), 0);
        mailbox.push(&lasting(1));
        assert_eq!(mailbox.state.lock().unwrap().queue.capacity(), 1);
        for seq in 2..=3 {
            mailbox.push(&lasting(seq));
        }
        assert!(mailbox.state.lock().unwrap().queue.capacity() < 8);
        assert_eq!(drain(&mailbox), ["action 1", "action 2", "action 3"]);
    }

    #[test]
    fn a_full_mailbox_keeps_only_each_senders_latest_typing_ping() {
        let mailbox = Mailbox::new(3);
        assert_eq!(mailbox.push(&typing_from("a", 1)), Fit::Queued);
        assert_eq!(mailbox.push(&lasting(2)), Fit::Queued);
        assert_eq!(mailbox.push(&typing_from("b", 3)), Fit::Queued);
        assert_eq!(mailbox.push(&typing_from("a", 4)), Fit::Coalesced);
        assert_eq!(mailbox.push(&typing_from("c", 5)), Fit::GaveWay);
        assert_eq!(drain(&mailbox), ["typing a 4", "action 2", "typing b 3"]);
    }

    #[test]
    fn an_action_pushes_out_a_typing_ping_and_overflows_only_when_all_must_arrive() {
        let mailbox = Mailbox::new(2);
        mailbox.push(&typing_from("a", 1));
        mailbox.push(&lasting(2));
        assert_eq!(mailbox.push(&lasting(3)), Fit::GaveWay);
        assert_eq!(mailbox.push(&lasting(4)), Fit::Overflow);
        assert_eq!(mailbox.push(&lasting(5)), Fit::Closed, "closed for good");
        assert_eq!(drain(&mailbox), ["action 2", "action 3"]);
    }

    #[test]
    fn an_audience_coming_and_going_never_fills_a_mailbox_that_must_close() {
        let mailbox = Mailbox::new(3);
        mailbox.push(&lasting(1));
        mailbox.push(&audience(2));
        mailbox.push(&typing_from("a", 3));
        assert_eq!(mailbox.push(&audience(4)), Fit::GaveWay, "dropped itself");
        assert_eq!(
            mailbox.push(&lasting(5)),
            Fit::GaveWay,
            "the oldest gave way"
        );
        assert_eq!(mailbox.push(&lasting(6)), Fit::GaveWay);
        assert_eq!(mailbox.push(&audience(7)), Fit::GaveWay);
        assert_eq!(drain(&mailbox), ["action 1", "action 5", "action 6"]);
    }

    #[test]
    fn a_mailbox_told_of_shutdown_hands_over_what_it_holds_first_then_takes_nothing() {
        let mailbox = Mailbox::new(2);
        mailbox.push(&lasting(1));
        mailbox.push(&lasting(2));
        mailbox.shut_down();
        mailbox.shut_down();
        assert_eq!(mailbox.push(&lasting(3)), Fit::Closed);
        assert_eq!(drain(&mailbox), ["action 1", "action 2", "shutdown"]);
    }
}
