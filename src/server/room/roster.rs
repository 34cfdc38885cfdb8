//! Who is in a room and what each member last did: the pure core of
//! presence, seats and snapshots.
//!
//! No I/O and no clock: every input carries `now` (milliseconds), and
//! [`Roster::poll_timeout`] says when the next grace period runs out. A
//! backplane keeps one roster per room where every node can reach it and
//! turns what the roster returns into frames for the room.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::protocol::{
    Action, ClientEvent, Connection, MemberRef, MemberState, PlayerKey, PlayerName, PresenceEvent,
    Role, TYPING_TIMEOUT_MS,
};

/// Most players in a room.
pub const MAX_PLAYERS: usize = 2;

/// The room rules that come from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most spectators in a room.
    pub max_spectators: usize,
    /// How long a member who dropped without leaving keeps their seat, in ms.
    pub grace_ms: u64,
    /// Events a room keeps in its history.
    pub history_len: usize,
}

/// A connection asking for a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The connection's id, unique across nodes.
    pub conn: String,
    /// The seat asked for.
    pub role: Role,
    /// The tab's private key, if it presented one: the same key and role
    /// take the same seat back.
    pub key: Option<PlayerKey>,
    /// The public id to give the member if this is a new seat.
    pub new_id: String,
    /// The member's display name, if the connection gave one (a seat taken
    /// back without one keeps its name).
    pub name: Option<PlayerName>,
}

/// Why a seat was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Two players already hold the room's seats.
    #[error("this battle already has two players")]
    RoomFull,
    /// The room has as many spectators as it may.
    #[error("this battle has as many spectators as it can take")]
    SpectatorsFull,
}

/// A granted seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// Who the connection is.
    pub member: MemberRef,
    /// True if the connection took back a seat its key held.
    pub resumed: bool,
    /// The connection that held the seat until now, still connected: it
    /// must be closed, its seat is taken over.
    pub replaced: Option<String>,
    /// What to tell the room, if anything.
    pub event: Option<PresenceEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Member {
    /// Shared with the member's [`MemberRef`]s.
    id: Arc<str>,
    role: Role,
    key: Option<PlayerKey>,
    conn: String,
    /// `Some(deadline)` while reconnecting.
    reconnecting_until: Option<u64>,
    last_action: Option<Action>,
    last_typing: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<PlayerName>,
    /// `Some(since)` while the member's tab is hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    away_since: Option<u64>,
}

/// The members of one room, in the order they joined. Serialisable, for
/// backplanes that keep it outside the process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    members: Vec<Member>,
}

impl Roster {
    /// Seats a connection: takes back the seat of the same key and role, or
    /// gives a new one if the room has room.
    pub fn join(&mut self, request: JoinRequest, limits: &Limits) -> Result<Seat, Refusal> {
        let same_seat = request.key.as_ref().and_then(|key| {
            self.members
                .iter_mut()
                .find(|m| m.role == request.role && m.key.as_ref() == Some(key))
        });
        if let Some(member) = same_seat {
            let was_reconnecting = member.reconnecting_until.take().is_some();
            let previous = std::mem::replace(&mut member.conn, request.conn);
            if request.name.is_some() {
                member.name = request.name;
            }
            return Ok(Seat {
                member: member.public(),
                resumed: true,
                replaced: (!was_reconnecting).then_some(previous),
                event: was_reconnecting.then_some(PresenceEvent::Resume),
            });
        }
        let (taken, limit, refusal) = match request.role {
            Role::Player => (self.count(Role::Player), MAX_PLAYERS, Refusal::RoomFull),
            Role::Spectator => (
                self.count(Role::Spectator),
                limits.max_spectators,
                Refusal::SpectatorsFull,
            ),
        };
        if taken >= limit {
            return Err(refusal);
        }
        let member = Member {
            id: request.new_id.into(),
            role: request.role,
            key: request.key,
            conn: request.conn,
            reconnecting_until: None,
            last_action: None,
            last_typing: None,
            name: request.name,
            away_since: None,
        };
        let public = member.public();
        // Exactly as many as sit: most rooms hold two for their whole life.
        self.members.reserve_exact(1);
        self.members.push(member);
        Ok(Seat {
            member: public,
            resumed: false,
            replaced: None,
            event: Some(PresenceEvent::Join),
        })
    }

    /// Connection `conn` ended at `now`: cleanly (the member leaves) or not
    /// (the member keeps the seat for the grace period). Nothing happens if
    /// `conn` no longer holds a seat (it was taken over).
    pub fn disconnect(
        &mut self,
        conn: &str,
        clean: bool,
        limits: &Limits,
        now: u64,
    ) -> Option<(PresenceEvent, MemberRef)> {
        let at = self
            .members
            .iter()
            .position(|m| m.conn == conn && m.reconnecting_until.is_none())?;
        if clean || limits.grace_ms == 0 {
            let member = self.members.remove(at);
            return Some((PresenceEvent::Leave, member.public()));
        }
        let member = &mut self.members[at];
        member.reconnecting_until = Some(now.saturating_add(limits.grace_ms));
        member.last_typing = None;
        member.away_since = None;
        Some((PresenceEvent::Reconnecting, member.public()))
    }

    /// Removes the members whose grace period ran out by `now`.
    pub fn expire(&mut self, now: u64) -> Vec<MemberRef> {
        let mut gone = Vec::new();
        self.members.retain(|m| match m.reconnecting_until {
            Some(until) if until <= now => {
                gone.push(m.public());
                false
            }
            _ => true,
        });
        gone
    }

    /// When the next grace period runs out, if any member is reconnecting.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.members
            .iter()
            .filter_map(|m| m.reconnecting_until)
            .min()
    }

    /// Records what member `id` did at `now`, for later snapshots.
    ///
    /// A member's connection names it with the id the roster gave it, the
    /// same text at the same address: found by the address first, a
    /// frame's recording reads no member's id (with thousands of rooms,
    /// memory out of the caches at every frame, docs/performance.md). A
    /// roster read back from Redis has ids of its own: found by the text.
    pub fn record(&mut self, id: &str, event: &ClientEvent, now: u64) {
        let at = self.members.iter().position(|m| std::ptr::eq(&*m.id, id));
        let at = at.or_else(|| self.members.iter().position(|m| *m.id == *id));
        if let Some(member) = at.map(|at| &mut self.members[at]) {
            match event {
                ClientEvent::Typing => member.last_typing = Some(now),
                ClientEvent::Action(action) => member.last_action = Some(*action),
                ClientEvent::Away(true) => member.away_since = member.away_since.or(Some(now)),
                ClientEvent::Away(false) => member.away_since = None,
                ClientEvent::Name(name) => member.name = Some(name.clone()),
            }
        }
    }

    /// Everyone in the room at `now`.
    pub fn snapshot(&self, now: u64) -> Vec<MemberState> {
        self.members
            .iter()
            .map(|m| MemberState {
                id: m.id.to_string(),
                role: m.role,
                state: match m.reconnecting_until {
                    Some(_) => Connection::Reconnecting,
                    None => Connection::Online,
                },
                last_action: m.last_action,
                typing_ms: m.last_typing.map_or(0, |at| {
                    at.saturating_add(TYPING_TIMEOUT_MS).saturating_sub(now)
                }),
                name: m.name.clone(),
                away_ms: m.away_since.map(|since| now.saturating_sub(since)),
            })
            .collect()
    }

    /// The player whose private key is `key`, if they hold a seat.
    pub fn player_of(&self, key: &PlayerKey) -> Option<MemberRef> {
        self.members
            .iter()
            .find(|m| m.role == Role::Player && m.key.as_ref() == Some(key))
            .map(Member::public)
    }

    /// True if connection `conn` holds a seat and is connected.
    pub fn holds(&self, conn: &str) -> bool {
        self.connected().any(|held| held == conn)
    }

    /// The connections that hold a seat and are connected.
    pub fn connected(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|m| m.reconnecting_until.is_none())
            .map(|m| m.conn.as_str())
    }

    /// True if nobody holds a seat, connected or not.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn count(&self, role: Role) -> usize {
        self.members.iter().filter(|m| m.role == role).count()
    }
}

impl Member {
    fn public(&self) -> MemberRef {
        MemberRef {
            id: self.id.clone(),
            role: self.role,
            name: self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::room::HISTORY_LEN;

    const LIMITS: Limits = Limits {
        max_spectators: 2,
        grace_ms: 10_000,
        history_len: HISTORY_LEN,
    };

    fn key(n: u8) -> Option<PlayerKey> {
        PlayerKey::parse(&format!("tab-key-{n:0>12}"))
    }

    fn request(conn: &str, role: Role, key: Option<PlayerKey>) -> JoinRequest {
        JoinRequest {
            conn: conn.into(),
            role,
            key,
            new_id: format!("id-{conn}"),
            name: None,
        }
    }

    fn player(conn: &str, key: Option<PlayerKey>) -> JoinRequest {
        request(conn, Role::Player, key)
    }

    #[test]
    fn a_room_seats_two_players_and_refuses_a_third() {
        let mut roster = Roster::default();
        let first = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        assert_eq!(first.event, Some(PresenceEvent::Join));
        assert!(!first.resumed);
        roster.join(player("c2", None), &LIMITS).unwrap();
        assert_eq!(
            roster.join(player("c3", key(3)), &LIMITS),
            Err(Refusal::RoomFull)
        );
    }

    #[test]
    fn spectators_are_capped_separately_from_players() {
        let mut roster = Roster::default();
        for conn in ["s1", "s2"] {
            roster
                .join(request(conn, Role::Spectator, None), &LIMITS)
                .unwrap();
        }
        assert_eq!(
            roster.join(request("s3", Role::Spectator, None), &LIMITS),
            Err(Refusal::SpectatorsFull)
        );
        roster.join(player("p1", None), &LIMITS).unwrap();
        roster.join(player("p2", None), &LIMITS).unwrap();
    }

    #[test]
    fn a_clean_leave_frees_the_seat_at_once() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        assert_eq!(
            roster.disconnect("c1", true, &LIMITS, 0),
            Some((PresenceEvent::Leave, seat.member))
        );
        assert!(roster.is_empty());
    }

    #[test]
    fn a_drop_keeps_the_seat_for_the_grace_period_then_frees_it() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        roster.join(player("c2", key(2)), &LIMITS).unwrap();
        assert_eq!(
            roster.disconnect("c1", false, &LIMITS, 1_000),
            Some((PresenceEvent::Reconnecting, seat.member.clone()))
        );
        assert_eq!(roster.poll_timeout(), Some(11_000));
        assert_eq!(
            roster.join(player("c3", key(3)), &LIMITS),
            Err(Refusal::RoomFull),
            "the seat is still held"
        );
        assert!(roster.expire(10_999).is_empty());
        assert_eq!(roster.expire(11_000), vec![seat.member]);
        assert_eq!(roster.poll_timeout(), None);
        assert!(roster.join(player("c3", key(3)), &LIMITS).is_ok());
    }

    #[test]
    fn the_same_key_within_the_grace_period_resumes_the_same_member() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        roster.record(&seat.member.id, &ClientEvent::Action(Action::Running), 5);
        roster.disconnect("c1", false, &LIMITS, 10);
        let back = roster.join(player("c9", key(1)), &LIMITS).unwrap();
        assert_eq!(back.member, seat.member);
        assert!(back.resumed);
        assert_eq!(back.event, Some(PresenceEvent::Resume));
        assert_eq!(back.replaced, None);
        assert_eq!(roster.poll_timeout(), None);
        assert_eq!(roster.snapshot(20)[0].last_action, Some(Action::Running));
        assert_eq!(
            roster.disconnect("c1", false, &LIMITS, 30),
            None,
            "old connection"
        );
    }

    #[test]
    fn the_same_key_while_connected_takes_the_seat_over_silently() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        let again = roster.join(player("c2", key(1)), &LIMITS).unwrap();
        assert_eq!(again.member, seat.member);
        assert_eq!(again.replaced.as_deref(), Some("c1"));
        assert_eq!(again.event, None);
        assert_eq!(roster.disconnect("c1", false, &LIMITS, 0), None);
    }

    #[test]
    fn a_key_is_bound_to_its_role() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        let watching = roster
            .join(request("c2", Role::Spectator, key(1)), &LIMITS)
            .unwrap();
        assert_ne!(watching.member.id, seat.member.id);
    }

    #[test]
    fn a_player_is_found_by_their_private_key_and_spectators_are_not() {
        let mut roster = Roster::default();
        let seat = roster.join(player("c1", key(1)), &LIMITS).unwrap();
        roster
            .join(request("c2", Role::Spectator, key(2)), &LIMITS)
            .unwrap();
        assert_eq!(roster.player_of(&key(1).unwrap()), Some(seat.member));
        assert_eq!(roster.player_of(&key(2).unwrap()), None);
        assert_eq!(roster.player_of(&key(3).unwrap()), None);
    }

    #[test]
    fn without_a_key_every_connection_is_a_new_member() {
        let mut roster = Roster::default();
        roster.join(player("c1", None), &LIMITS).unwrap();
        roster.disconnect("c1", false, &LIMITS, 0);
        let next = roster.join(player("c2", None), &LIMITS).unwrap();
        assert!(!next.resumed);
        assert_eq!(&*next.member.id, "id-c2");
    }

    #[test]
    fn a_snapshot_tells_the_last_action_and_how_long_typing_lasts() {
        let mut roster = Roster::default();
        let a = roster.join(player("c1", None), &LIMITS).unwrap().member;
        let b = roster.join(player("c2", None), &LIMITS).unwrap().member;
        roster.record(&a.id, &ClientEvent::Action(Action::WrongAnswer), 100);
        roster.record(&b.id, &ClientEvent::Typing, 1_000);
        let snapshot = roster.snapshot(2_000);
        assert_eq!(snapshot[0].last_action, Some(Action::WrongAnswer));
        assert_eq!(snapshot[0].typing_ms, 0);
        assert_eq!(snapshot[1].typing_ms, 1_500);
        assert_eq!(roster.snapshot(3_500)[1].typing_ms, 0);
        roster.disconnect("c2", false, &LIMITS, 2_000);
        let snapshot = roster.snapshot(2_000);
        assert_eq!(snapshot[1].state, Connection::Reconnecting);
        assert_eq!(snapshot[1].typing_ms, 0, "a dropped member is not typing");
    }

    #[test]
    fn a_member_is_found_by_the_id_it_was_given_and_by_a_copy_of_it() {
        let mut roster = Roster::default();
        let a = roster.join(player("c1", None), &LIMITS).unwrap().member;
        let b = roster.join(player("c2", None), &LIMITS).unwrap().member;
        // A roster read back from Redis is named by ids of its own.
        let copy = b.id.to_string();
        roster.record(&copy, &ClientEvent::Action(Action::Accepted), 10);
        roster.record(&a.id, &ClientEvent::Action(Action::Running), 10);
        let snapshot = roster.snapshot(10);
        assert_eq!(snapshot[0].last_action, Some(Action::Running));
        assert_eq!(snapshot[1].last_action, Some(Action::Accepted));
    }

    #[test]
    fn with_no_grace_period_a_drop_is_a_leave() {
        let limits = Limits {
            grace_ms: 0,
            ..LIMITS
        };
        let mut roster = Roster::default();
        roster.join(player("c1", key(1)), &limits).unwrap();
        assert!(matches!(
            roster.disconnect("c1", false, &limits, 0),
            Some((PresenceEvent::Leave, _))
        ));
    }
}
