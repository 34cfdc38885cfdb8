//! Fan-out on this instance: each connection's bounded mailbox, and each
//! room's local members, which take what the backplane delivers.

mod local_room;
mod mailbox;

pub use self::{
    local_room::LocalRoom,
    mailbox::{Keep, Mailbox, Outbound, Outgoing},
};
