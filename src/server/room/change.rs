//! A change to a room's roster and what it tells the room: the seats taken
//! over (their connections must close), the presence frames, and the
//! connections that took or gave up a seat. Every backplane builds its
//! changes here and only decides how to carry them out (deliver them in
//! process, or commit them to Redis).

use super::{JoinRequest, Limits, Refusal, Roster, Seat};
use crate::protocol::{MemberRef, Presence, PresenceEvent, ServerFrame};

/// What a roster change tells the room, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    /// Connections that lost their seat to a newer one: they must close.
    pub replaced: Vec<String>,
    /// Presence frames, in order.
    pub presence: Vec<(PresenceEvent, MemberRef)>,
    /// Connections that took a seat.
    pub seated: Vec<String>,
    /// Connections that gave up their seat, or lost it.
    pub unseated: Vec<String>,
}

impl Change {
    /// Seats `request` and tells the room.
    pub fn take_seat(
        &mut self,
        roster: &mut Roster,
        request: JoinRequest,
        limits: &Limits,
    ) -> Result<Seat, Refusal> {
        let conn = request.conn.clone();
        let seat = roster.join(request, limits)?;
        if let Some(old) = &seat.replaced {
            self.unseated.push(old.clone());
            self.replaced.push(old.clone());
        }
        self.seated.push(conn);
        if let Some(event) = seat.event {
            self.presence.push((event, seat.member.clone()));
        }
        Ok(seat)
    }

    /// Connection `conn` ended at `now`, cleanly or not; tells the room.
    /// Returns the deadline of the grace period it started, if any.
    pub fn give_up_seat(
        &mut self,
        roster: &mut Roster,
        conn: &str,
        clean: bool,
        limits: &Limits,
        now: u64,
    ) -> Option<u64> {
        self.unseated.push(conn.to_owned());
        let (event, member) = roster.disconnect(conn, clean, limits, now)?;
        self.presence.push((event, member));
        if event == PresenceEvent::Reconnecting {
            roster.poll_timeout()
        } else {
            None
        }
    }

    /// Frees the seats whose grace period ran out by `now`; tells the room.
    /// Returns the next deadline, if any member is still reconnecting.
    pub fn expire(&mut self, roster: &mut Roster, now: u64) -> Option<u64> {
        for member in roster.expire(now) {
            self.presence.push((PresenceEvent::Leave, member));
        }
        roster.poll_timeout()
    }

    /// The presence frames, not numbered yet.
    pub fn frames(&self) -> impl Iterator<Item = ServerFrame> + '_ {
        self.presence.iter().map(|(event, member)| {
            ServerFrame::Presence(Presence {
                event: *event,
                member: member.clone(),
                seq: 0,
            })
        })
    }

    /// True if the change tells the room nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{PlayerKey, Role},
        server::room::HISTORY_LEN,
    };

    const LIMITS: Limits = Limits {
        max_spectators: 1,
        grace_ms: 1_000,
        history_len: HISTORY_LEN,
    };

    fn request(conn: &str) -> JoinRequest {
        JoinRequest {
            conn: conn.into(),
            role: Role::Player,
            key: PlayerKey::parse("tab-key-000000000001"),
            new_id: format!("id-{conn}"),
            name: None,
        }
    }

    #[test]
    fn a_seat_taken_over_closes_the_older_connection_without_a_presence_frame() {
        let mut roster = Roster::default();
        let mut change = Change::default();
        change
            .take_seat(&mut roster, request("c1"), &LIMITS)
            .unwrap();
        assert_eq!(change.seated, ["c1"]);
        assert_eq!(change.presence[0].0, PresenceEvent::Join);

        let mut change = Change::default();
        let seat = change
            .take_seat(&mut roster, request("c2"), &LIMITS)
            .unwrap();
        assert!(seat.resumed);
        assert_eq!(change.replaced, ["c1"]);
        assert_eq!(change.unseated, ["c1"]);
        assert!(change.presence.is_empty(), "the room sees no change");
    }

    #[test]
    fn a_drop_starts_the_grace_period_and_its_expiry_is_a_leave() {
        let mut roster = Roster::default();
        Change::default()
            .take_seat(&mut roster, request("c1"), &LIMITS)
            .unwrap();
        let mut change = Change::default();
        let deadline = change.give_up_seat(&mut roster, "c1", false, &LIMITS, 5_000);
        assert_eq!(deadline, Some(6_000));
        assert_eq!(change.unseated, ["c1"]);
        let frame = change.frames().next().unwrap().to_json();
        assert!(frame.contains(r#""event":"reconnecting""#), "{frame}");

        let mut change = Change::default();
        assert_eq!(change.expire(&mut roster, 5_999), Some(6_000));
        assert!(change.is_empty());
        assert_eq!(change.expire(&mut roster, 6_000), None);
        assert_eq!(change.presence[0].0, PresenceEvent::Leave);
        assert!(roster.is_empty());
    }
}
