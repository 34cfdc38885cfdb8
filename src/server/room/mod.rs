//! A room's rules, pure: who holds a seat and what each member last did
//! ([`Roster`]), and what a change to the roster tells the room
//! ([`Change`]), the one glue between roster changes and frames that every
//! backplane uses.

mod change;
mod roster;

pub use self::{
    change::Change,
    roster::{JoinRequest, Limits, Refusal, Roster, Seat, MAX_PLAYERS},
};
