//! Signed join tokens: HMAC-SHA256 over the room, the player id, the role
//! and an expiry, minted by the host application (or `battle-status token`)
//! with a secret it shares with the relay.
//!
//! A token is `<payload>.<signature>`, both base64url without padding; the
//! payload is the JSON `{"room":..,"player":..,"role":..,"exp":<unix s>}`.
//! Pure: the current time is passed in.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::protocol::{PlayerKey, PlayerName, Role, RoomName};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// The shared secret. Never printed: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the token secret must have at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl Secret {
    /// Checks a configured secret.
    pub fn new(secret: &str) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// Whether `presented` is this secret, compared in constant time (as
    /// HMACs of both under a fixed key).
    pub fn matches(&self, presented: &str) -> bool {
        let digest = |bytes: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"battle-status bearer check")
                .expect("HMAC takes keys of any length");
            mac.update(bytes);
            mac
        };
        let expected = digest(&self.0).finalize().into_bytes();
        digest(presented.as_bytes()).verify_slice(&expected).is_ok()
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room it opens.
    pub room: RoomName,
    /// The player's private id: the seat key of the connection.
    #[serde(with = "player_key")]
    pub player: PlayerKey,
    /// The role it grants.
    pub role: Role,
    /// The player's display name, if the host application gives one: it
    /// wins over any name the page asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PlayerName>,
    /// When it stops working, in seconds since the Unix epoch.
    pub exp: u64,
}

mod player_key {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::protocol::PlayerKey;

    pub fn serialize<S: Serializer>(key: &PlayerKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(key.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PlayerKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        PlayerKey::parse(&text).ok_or_else(|| de::Error::custom("not a valid player id"))
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token: wrong shape, encoding or payload.
    #[error("the join token is malformed")]
    Malformed,
    /// The signature does not match: forged, or signed with another secret.
    #[error("the join token's signature is not valid")]
    BadSignature,
    /// Past its expiry.
    #[error("the join token has expired")]
    Expired,
}

/// Signs `claims`.
pub fn mint(secret: &Secret, claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mut mac = secret.mac();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks `token`'s signature and expiry at `now` (Unix seconds) and
/// returns what it grants.
pub fn verify(secret: &Secret, token: &str, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = secret.mac();
    mac.update(payload.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("correct horse battery staple").unwrap()
    }

    fn claims() -> Claims {
        Claims {
            room: RoomName::parse("duel-42").unwrap(),
            player: PlayerKey::parse("player-0001-alice").unwrap(),
            role: Role::Player,
            name: None,
            exp: 1_000,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let token = mint(&secret(), &claims());
        assert_eq!(verify(&secret(), &token, 999), Ok(claims()));
        assert_eq!(verify(&secret(), &token, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_secret_or_altered_is_refused() {
        let token = mint(&secret(), &claims());
        let other = Secret::new("another secret of some length").unwrap();
        assert_eq!(verify(&other, &token, 0), Err(TokenError::BadSignature));

        let forged_claims = Claims {
            role: Role::Spectator,
            ..claims()
        };
        let forged_payload = mint(&other, &forged_claims);
        let (payload, _) = forged_payload.split_once('.').unwrap();
        let (_, signature) = token.split_once('.').unwrap();
        assert_eq!(
            verify(&secret(), &format!("{payload}.{signature}"), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        for token in ["", "nodot", "a.b.c", "!!!.???", long.as_str()] {
            assert!(
                matches!(
                    verify(&secret(), token, 0),
                    Err(TokenError::Malformed | TokenError::BadSignature)
                ),
                "{token}"
            );
        }
        let mut mac = secret().mac();
        let payload = URL_SAFE_NO_PAD.encode(b"{\"room\":\"bad room\"}");
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            verify(&secret(), &format!("{payload}.{signature}"), 0),
            Err(TokenError::Malformed),
            "a signed but invalid payload"
        );
    }

    #[test]
    fn a_presented_secret_matches_only_itself() {
        assert!(secret().matches("correct horse battery staple"));
        assert!(!secret().matches("correct horse battery stapl"));
        assert!(!secret().matches(""));
    }

    #[test]
    fn secrets_are_long_enough_and_never_printed() {
        assert_eq!(Secret::new("short"), Err(WeakSecret));
        assert_eq!(format!("{:?}", secret()), "Secret([redacted])");
    }
}
