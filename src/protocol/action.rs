//! The actions a player (or the judge) reports, and their codes on the wire.
//! What a player reads for each is the page's business (`status`).

use std::{borrow::Cow, fmt, str::FromStr};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use super::MAX_FAILED_TEST;

/// What a player did, as sent in an `action` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `RUNNING`: the player ran their code.
    Running,
    /// `SUBMITTED`: the player submitted their code.
    Submitted,
    /// `RUN_COMPLETE`: a run finished.
    RunComplete,
    /// `AC`: the submission was accepted.
    Accepted,
    /// `WA`: wrong answer.
    WrongAnswer,
    /// `TLE`: time limit exceeded.
    TimeLimitExceeded,
    /// `MLE`: memory limit exceeded.
    MemoryLimitExceeded,
    /// `FAILED_TC<n>`: failed on test `n` (1 to [`MAX_FAILED_TEST`]).
    FailedTest(u16),
}

/// Why an action code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl Action {
    /// Reads an action code. `FAILED_TC<n>` takes `n` in 1..=9999 written
    /// without sign or leading zeros, so every accepted code is written back
    /// exactly as it was received.
    pub fn parse(code: &str) -> Result<Self, UnknownAction> {
        let action = match code {
            "RUNNING" => Self::Running,
            "SUBMITTED" => Self::Submitted,
            "RUN_COMPLETE" => Self::RunComplete,
            "AC" => Self::Accepted,
            "WA" => Self::WrongAnswer,
            "TLE" => Self::TimeLimitExceeded,
            "MLE" => Self::MemoryLimitExceeded,
            other => other
                .strip_prefix("FAILED_TC")
                .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u16>().ok())
                .filter(|n| (1..=MAX_FAILED_TEST).contains(n))
                .map(Self::FailedTest)
                .ok_or_else(|| UnknownAction(other.to_owned()))?,
        };
        Ok(action)
    }

    /// The code on the wire, e.g. `RUNNING` or `FAILED_TC3`.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            Self::Running => "RUNNING".into(),
            Self::Submitted => "SUBMITTED".into(),
            Self::RunComplete => "RUN_COMPLETE".into(),
            Self::Accepted => "AC".into(),
            Self::WrongAnswer => "WA".into(),
            Self::TimeLimitExceeded => "TLE".into(),
            Self::MemoryLimitExceeded => "MLE".into(),
            Self::FailedTest(n) => format!("FAILED_TC{n}").into(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::parse(code)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.code())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&code).map_err(de::Error::custom)
    }
}
