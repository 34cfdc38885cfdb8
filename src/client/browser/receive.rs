//! What the page does with each frame from the server: the welcome, presence,
//! snapshots, relayed frames and errors feed the room view and the
//! timeline; the changes worth it are told to the player.

use std::rc::Rc;

use leptos::{logging::warn, prelude::*};

use super::{json, page::now, set_if_changed, ConnectionState, Inner, OPPONENT_MOVES};
use crate::protocol::ServerFrame;

impl Inner {
    pub(super) fn receive(self: &Rc<Self>, text: &str) {
        let now = now();
        let frame = json::parse(text);
        match &frame {
            Some(ServerFrame::Welcome(welcome)) => {
                self.heartbeat_ms.set(welcome.heartbeat_ms);
                self.backoff.borrow_mut().reset();
                self.room.borrow_mut().handle_welcome(welcome, now);
                self.views.connection.set(ConnectionState::Live);
                self.welcomed(welcome.name_locked);
            }
            Some(ServerFrame::Presence(presence)) => {
                let notice = self.room.borrow_mut().handle_presence(presence);
                self.tell(notice);
            }
            Some(ServerFrame::Snapshot(snapshot)) => {
                self.room
                    .borrow_mut()
                    .handle_snapshot(&snapshot.members, now);
            }
            Some(frame) => match frame.as_relayed() {
                Some((stamped, event)) => {
                    let mut room = self.room.borrow_mut();
                    // Our own frames come back too. Once the welcome told
                    // us our member id, the room view tells them apart;
                    // before it, only our clientId can, and they are dropped.
                    let own_unknown = room.me().is_none()
                        && stamped.client_id.as_deref() == Some(self.client_id.as_str());
                    let notice = if own_unknown {
                        None
                    } else {
                        room.handle_frame(&stamped.from, event, stamped.judge, now)
                    };
                    drop(room);
                    self.tell(notice);
                }
                None => {
                    if let ServerFrame::Error { code, message } = frame {
                        warn!("the server refused a frame: {code}: {message}");
                        self.refused(code, message);
                    }
                }
            },
            None => {}
        }
        if let Some(frame) = &frame {
            self.remember(frame);
        }
        // Any frame proves the socket alive (after a welcome, with the
        // server's own heartbeat period).
        self.watch();
        self.refresh();
    }

    /// Keeps the highest `seq` seen, and the battle's moments.
    fn remember(&self, frame: &ServerFrame) {
        let mut timeline = self.timeline.borrow_mut();
        let seq = match frame {
            ServerFrame::Welcome(welcome) => {
                timeline.handle_welcome(welcome);
                Some(welcome.seq)
            }
            other => {
                timeline.handle_frame(other, js_sys::Date::now() as u64);
                other.seq()
            }
        };
        if let Some(seq) = seq {
            self.last_seq.set(self.last_seq.get().max(seq));
        }
        let moments: Vec<String> = timeline
            .moments()
            .iter()
            .map(|moment| timeline.describe(moment))
            .collect();
        set_if_changed(self.views.timeline, moments);
        let me = self.room.borrow().me().map(str::to_owned);
        if let Some(me) = me {
            set_if_changed(
                self.views.opponent_moves,
                timeline.recent_actions_of_others(&me, OPPONENT_MOVES),
            );
        }
        set_if_changed(self.views.history_gap, timeline.incomplete());
    }
}
