//! What the server enforces on untrusted clients: the Origin of a browser's
//! handshake ([`origin`]), who may open a socket now ([`admission`]: the
//! process's budget, each player's, each address's), the rates of each
//! connection ([`rates`]), and whose word to take for the client's address
//! ([`proxies`]). Nothing here blocks or awaits.

mod admission;
mod origin;
mod proxies;
mod rates;

pub use self::{
    admission::{retry_secs, Admission, AdmissionLimits, Limit, Refused, Slot, SocketLimits},
    origin::{OriginPolicy, OriginRefusal},
    proxies::TrustedProxies,
    rates::{ConnectionLimiter, RateLimits, Verdict},
};
