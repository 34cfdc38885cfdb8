//! A room's rules, pure: who holds a seat and what each member last did
//! ([`Roster`]), and what a change to the roster tells the room
//! ([`Change`]), the one glue between roster changes and frames that every
//! backplane uses, and what a room keeps of its past ([`History`]) and
//! gives back to a connection that missed some of it ([`recover`]).

mod change;
mod history;
mod roster;

pub use self::{
    change::Change,
    history::{recover, History, Recovery, HISTORY_LEN},
    roster::{JoinRequest, Limits, Refusal, Roster, Seat, MAX_PLAYERS},
};
