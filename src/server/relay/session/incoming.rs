//! What the client sends: read, checked, held to its rates, then relayed
//! or answered with an error frame, or the end of the connection.

use axum::extract::ws::Message;
use tokio::time::Instant;
use tracing::warn;

use super::{Ending, Session};
use crate::{
    protocol::{
        parse_client_frame, ClientEvent, ClientFrame, Close, FrameError, PlayerName, Role,
        ServerFrame, MAX_FRAME_BYTES,
    },
    server::{
        guard::Verdict,
        stats::{DropReason, Kind, Stats},
    },
};

impl Session {
    /// Whatever the client's socket gave: a frame, a close, or a failure.
    pub(super) async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Result<(), Ending> {
        self.last_heard = Instant::now();
        let reply = match incoming {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await?,
            Some(Ok(Message::Binary(_))) => {
                self.relay.stats.received(Kind::Invalid);
                Some(self.refuse(&FrameError::Binary)?)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
            Some(Ok(Message::Close(frame))) => {
                let clean = frame.is_some_and(|f| f.code == Close::Normal.code());
                return Err(Ending::ByClient { clean });
            }
            None => return Err(Ending::Lost),
            Some(Err(error)) => return Err(read_error(&self.relay.stats, error)),
        };
        match reply {
            Some(reply) => self.send(reply.to_json().into()).await,
            None => Ok(()),
        }
    }

    /// A text frame from the client: relayed, dropped, or answered.
    async fn on_text(&mut self, text: &str) -> Result<Option<ServerFrame>, Ending> {
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
            Err(error) => return self.refuse(&error).map(Some),
        };
        match self.limiter.check_frame(&frame.event) {
            Verdict::Relay => {
                let renamed = match &frame.event {
                    ClientEvent::Name(name) => Some(name.clone()),
                    _ => None,
                };
                self.relay_frame(frame, kind, renamed).await
            }
            Verdict::DropTyping => {
                self.relay.stats.dropped(DropReason::RateLimited);
                Ok(None)
            }
            Verdict::RefuseAction => {
                self.relay.stats.dropped(DropReason::RateLimited);
                Ok(Some(ServerFrame::error(&FrameError::RateLimited)))
            }
            Verdict::Close => Err(Ending::ByServer(Close::RateLimited)),
        }
    }

    /// Publishes a frame within its rate; a `name` frame renames this
    /// member once the room has it.
    async fn relay_frame(
        &mut self,
        frame: ClientFrame,
        kind: Kind,
        renamed: Option<PlayerName>,
    ) -> Result<Option<ServerFrame>, Ending> {
        match self.relay.hub.publish(&self.room, &self.me, frame).await {
            Ok(()) => {
                self.relay.stats.published(kind);
                if renamed.is_some() {
                    self.me.name = renamed;
                }
                Ok(None)
            }
            Err(error) => {
                self.relay.stats.dropped(DropReason::BackplaneDown);
                warn!(room = %self.room, conn = %self.membership.conn(), %error, "frame not relayed");
                Ok(Some(ServerFrame::Error {
                    code: "unavailable".into(),
                    message: error.to_string(),
                }))
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
fn read_error(stats: &Stats, error: axum::Error) -> Ending {
    match error.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Ending::ByServer(Close::Oversized),
        Some(tungstenite::Error::Utf8(_)) => {
            stats.dropped(DropReason::Invalid);
            Ending::ByServer(Close::InvalidUtf8)
        }
        _ => Ending::Lost,
    }
}
