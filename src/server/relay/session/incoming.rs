//! What the client sends: read, checked, held to its rates, then relayed
//! or answered with an error frame, or the end of the connection.

use std::{future::Future, pin::Pin};

use futures_util::future::Either;
use tokio::time::Instant;
use tracing::warn;
use tungstenite::Message;

use super::{Ending, Session};
use crate::{
    protocol::{
        parse_client_frame, ClientEvent, ClientFrame, Close, FrameError, PlayerName, Role,
        ServerFrame, MAX_FRAME_BYTES,
    },
    server::{
        backplane::BackplaneError,
        guard::Verdict,
        stats::{DropReason, Kind, Stats},
    },
};

/// What a client's message asks of its connection, once read.
pub(super) enum Asked {
    Nothing,
    /// An answer (an error frame's text).
    Reply(String),
    /// A frame the room store takes in its time (a broker's answer): the
    /// wait, and what to count and rename once it is over.
    Publishing(Waiting, Kind, Option<PlayerName>),
}

/// A room store's publishing, waited for.
type Waiting = Pin<Box<dyn Future<Output = Result<(), BackplaneError>> + Send>>;

impl Session {
    /// What the client's socket gave asks for: nothing, or a broker's
    /// answer or a reply to wait for, boxed, since what an event's handling
    /// holds while it waits is held in every connection.
    pub(super) async fn on_incoming(&mut self, asked: Asked) -> Result<(), Ending> {
        match asked {
            Asked::Nothing => Ok(()),
            asked => Box::pin(self.answer(asked)).await,
        }
    }

    /// Waits for what was asked: a broker's answer, a reply's sending.
    async fn answer(&mut self, asked: Asked) -> Result<(), Ending> {
        let reply = match asked {
            Asked::Nothing => return Ok(()),
            Asked::Reply(text) => text,
            Asked::Publishing(waiting, kind, renamed) => {
                let published = waiting.await;
                match self.published(published, kind, renamed) {
                    Some(text) => text,
                    None => return Ok(()),
                }
            }
        };
        self.send(reply.into()).await
    }

    /// Whatever the client's socket gave: a frame, a close, or a failure.
    /// It is read, checked and published at once (the in-process store
    /// takes a frame at once), so nothing is allocated for it.
    pub(super) fn read(
        &mut self,
        incoming: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Asked, Ending> {
        let now = Instant::now();
        self.last_heard = now;
        match incoming {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), now),
            Some(Ok(Message::Binary(_))) => {
                self.relay.stats.received(Kind::Invalid);
                self.refuse(&FrameError::Binary)
                    .map(|reply| Asked::Reply(reply.to_json()))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(Asked::Nothing),
            Some(Ok(Message::Close(frame))) => {
                let clean = frame.is_some_and(|f| u16::from(f.code) == Close::Normal.code());
                Err(Ending::ByClient { clean })
            }
            None => Err(Ending::Lost),
            Some(Err(error)) => Err(read_error(&self.relay.stats, error)),
        }
    }

    /// A text frame from the client, received at `now`: to relay, to drop,
    /// or to answer.
    fn on_text(&mut self, text: &str, now: Instant) -> Result<Asked, Ending> {
        if text.len() > MAX_FRAME_BYTES {
            self.relay.stats.received(Kind::Invalid);
            return Err(Ending::ByServer(Close::Oversized));
        }
        let checked = parse_client_frame(text).and_then(|frame| match (self.role, &frame.event) {
            (Role::Spectator, _) => Err(FrameError::SpectatorCannotSend),
            (Role::Player, ClientEvent::Name(_)) if self.name_locked => Err(FrameError::NameLocked),
            (Role::Player, _) => Ok(frame),
        });
        let kind = match checked.as_ref().map(|frame| &frame.event) {
            Ok(ClientEvent::Typing) => Kind::Typing,
            Ok(ClientEvent::Action(_)) => Kind::Action,
            Ok(ClientEvent::Away(_) | ClientEvent::Name(_)) => Kind::Presence,
            Err(_) => Kind::Invalid,
        };
        self.relay.stats.received(kind);
        let frame = match checked {
            Ok(frame) => frame,
            Err(error) => {
                return self
                    .refuse(&error)
                    .map(|reply| Asked::Reply(reply.to_json()))
            }
        };
        match self.limiter.check_frame(&frame.event) {
            Verdict::Relay => Ok(self.publish(frame, kind, now)),
            Verdict::DropTyping => {
                self.relay.stats.dropped(DropReason::RateLimited);
                Ok(Asked::Nothing)
            }
            Verdict::RefuseAction => {
                self.relay.stats.dropped(DropReason::RateLimited);
                Ok(Asked::Reply(
                    ServerFrame::error(&FrameError::RateLimited).to_json(),
                ))
            }
            Verdict::Close => Err(Ending::ByServer(Close::RateLimited)),
        }
    }

    /// Publishes a frame within its rates, received at `at`: done,
    /// answered, or waited for.
    fn publish(&mut self, frame: ClientFrame, kind: Kind, at: Instant) -> Asked {
        let renamed = match &frame.event {
            ClientEvent::Name(name) => Some(name.clone()),
            _ => None,
        };
        // Its echo comes to this connection's mailbox while its task runs:
        // the loop's next turn finds it without a wake.
        self.membership.outbound.unwatch();
        match self.membership.publish(&self.me, frame, at) {
            Either::Left(done) => match self.published(done.into_inner(), kind, renamed) {
                Some(text) => Asked::Reply(text),
                None => Asked::Nothing,
            },
            Either::Right(waiting) => Asked::Publishing(waiting, kind, renamed),
        }
    }

    /// Counts what became of a frame to relay; a `name` frame renames this
    /// member once the room has it. The answer, if it was not relayed.
    fn published(
        &mut self,
        published: Result<(), BackplaneError>,
        kind: Kind,
        renamed: Option<PlayerName>,
    ) -> Option<String> {
        match published {
            Ok(()) => {
                self.relay.stats.published(kind);
                if renamed.is_some() {
                    self.me.name = renamed;
                }
                None
            }
            Err(error) => {
                self.relay.stats.dropped(DropReason::BackplaneDown);
                warn!(room = %self.room, conn = %self.membership.conn(), %error, "frame not relayed");
                let reply = ServerFrame::Error {
                    code: "unavailable".into(),
                    message: error.to_string(),
                };
                Some(reply.to_json())
            }
        }
    }

    /// Counts an invalid frame: the error frame that answers it, or the
    /// end if the connection sent too many.
    fn refuse(&self, error: &FrameError) -> Result<ServerFrame, Ending> {
        self.relay.stats.dropped(DropReason::Invalid);
        if self.limiter.check_invalid() {
            Err(Ending::ByServer(Close::TooManyInvalid))
        } else {
            Ok(ServerFrame::error(error))
        }
    }
}

/// How a failed read ends the connection: some failures have their own
/// close code.
fn read_error(stats: &Stats, error: tungstenite::Error) -> Ending {
    match error {
        tungstenite::Error::Capacity(_) => Ending::ByServer(Close::Oversized),
        tungstenite::Error::Utf8(_) => {
            stats.dropped(DropReason::Invalid);
            Ending::ByServer(Close::InvalidUtf8)
        }
        _ => Ending::Lost,
    }
}
