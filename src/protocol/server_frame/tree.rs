//! Reading a server frame from a JSON tree already parsed: the page's,
//! which the browser's own `JSON.parse` builds, so that the page carries no
//! JSON reader of its own (serde_json's was about a tenth of its wasm). It
//! fills the same [`Envelope`] serde fills on the server, so one set of
//! rules builds the frame; a test holds the two readers equal.

use serde_json::Number;

use super::{
    read::Envelope, Connection, HistoryEntry, MemberRef, MemberState, PresenceEvent, ServerFrame,
};
use crate::protocol::{Action, PlayerName, Role, RoomName};

/// A parsed JSON value, as the frame reader walks it.
pub trait JsonTree: Sized {
    /// The member `key` of an object (`null` included); `None` if it has
    /// none or this is not an object.
    fn member(&self, key: &str) -> Option<Self>;
    /// True for `null`.
    fn is_null(&self) -> bool;
    /// A string's text.
    fn text(&self) -> Option<String>;
    /// A whole number from 0 up.
    fn count(&self) -> Option<u64>;
    /// `true` or `false`.
    fn flag(&self) -> Option<bool>;
    /// Any number.
    fn number(&self) -> Option<Number>;
    /// An array's items.
    fn items(&self) -> Option<Vec<Self>>;
}

/// The frame has a field of the wrong type, or lacks one its type needs.
struct Bad;

/// `key` as an optional field: absent or `null` is `None`.
fn optional<J: JsonTree, T>(
    tree: &J,
    key: &str,
    read: impl Fn(&J) -> Option<T>,
) -> Result<Option<T>, Bad> {
    match tree.member(key) {
        None => Ok(None),
        Some(value) if value.is_null() => Ok(None),
        Some(value) => read(&value).map(Some).ok_or(Bad),
    }
}

/// `key` as a field with a default when absent (but not when `null`).
fn defaulted<J: JsonTree, T: Default>(
    tree: &J,
    key: &str,
    read: impl Fn(&J) -> Option<T>,
) -> Result<T, Bad> {
    tree.member(key)
        .map_or(Ok(T::default()), |value| read(&value).ok_or(Bad))
}

/// `key` as a field every value must have.
fn required<J: JsonTree, T>(tree: &J, key: &str, read: impl Fn(&J) -> Option<T>) -> Result<T, Bad> {
    optional(tree, key, read)?.ok_or(Bad)
}

fn list<J: JsonTree, T>(tree: &J, read: impl Fn(&J) -> Result<T, Bad>) -> Option<Vec<T>> {
    tree.items()?
        .iter()
        .map(read)
        .collect::<Result<_, _>>()
        .ok()
}

fn role<J: JsonTree>(tree: &J) -> Option<Role> {
    Role::parse(&tree.text()?)
}

fn player_name<J: JsonTree>(tree: &J) -> Option<PlayerName> {
    PlayerName::parse(&tree.text()?).ok()
}

fn member_state<J: JsonTree>(tree: &J) -> Result<MemberState, Bad> {
    Ok(MemberState {
        id: required(tree, "id", J::text)?,
        role: required(tree, "role", role)?,
        state: required(tree, "state", |state| match state.text()?.as_str() {
            "online" => Some(Connection::Online),
            "reconnecting" => Some(Connection::Reconnecting),
            _ => None,
        })?,
        last_action: optional(tree, "lastAction", |code| Action::parse(&code.text()?).ok())?,
        typing_ms: required(tree, "typingMs", J::count)?,
        name: optional(tree, "name", player_name)?,
        away_ms: optional(tree, "awayMs", J::count)?,
    })
}

fn member_ref<J: JsonTree>(tree: &J) -> Result<MemberRef, Bad> {
    Ok(MemberRef {
        id: required(tree, "id", J::text)?.into(),
        role: required(tree, "role", role)?,
        name: optional(tree, "name", player_name)?,
    })
}

fn history_entry<J: JsonTree>(tree: &J) -> Result<HistoryEntry, Bad> {
    Ok(HistoryEntry {
        at: required(tree, "at", J::count)?,
        frame: required(tree, "frame", ServerFrame::read)?,
    })
}

fn envelope<J: JsonTree>(tree: &J) -> Result<Envelope, Bad> {
    Ok(Envelope {
        kind: tree
            .member("type")
            .and_then(|kind| kind.text())
            .ok_or(Bad)?,
        protocol: optional(tree, "protocol", |n| u8::try_from(n.count()?).ok())?,
        room: optional(tree, "room", |room| RoomName::parse(&room.text()?).ok())?,
        you: optional(tree, "you", J::text)?,
        role: optional(tree, "role", role)?,
        resumed: optional(tree, "resumed", J::flag)?,
        name_locked: defaulted(tree, "nameLocked", J::flag)?,
        seq: optional(tree, "seq", J::count)?,
        heartbeat_ms: optional(tree, "heartbeatMs", J::count)?,
        members: optional(tree, "members", |items| list(items, member_state))?,
        history: defaulted(tree, "history", |items| list(items, history_entry))?,
        recovered: optional(tree, "recovered", J::flag)?,
        client_id: optional(tree, "clientId", J::text)?,
        action: optional(tree, "action", |code| Action::parse(&code.text()?).ok())?,
        away: optional(tree, "away", J::flag)?,
        ts: optional(tree, "ts", J::number)?,
        from: optional(tree, "from", |from| from.text().map(Into::into))?,
        name: optional(tree, "name", player_name)?,
        judge: defaulted(tree, "judge", J::flag)?,
        event: optional(tree, "event", |event| match event.text()?.as_str() {
            "join" => Some(PresenceEvent::Join),
            "reconnecting" => Some(PresenceEvent::Reconnecting),
            "resume" => Some(PresenceEvent::Resume),
            "leave" => Some(PresenceEvent::Leave),
            _ => None,
        })?,
        member: optional(tree, "member", |member| member_ref(member).ok())?,
        code: optional(tree, "code", J::text)?,
        message: optional(tree, "message", J::text)?,
    })
}

impl ServerFrame {
    /// Reads a frame from a parsed JSON tree, as [`ServerFrame::parse`]
    /// reads its text.
    pub fn read<J: JsonTree>(tree: &J) -> Option<Self> {
        Self::try_from(envelope(tree).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::protocol::tests::corpus;

    impl JsonTree for Value {
        fn member(&self, key: &str) -> Option<Self> {
            self.as_object()?.get(key).cloned()
        }
        fn is_null(&self) -> bool {
            Value::is_null(self)
        }
        fn text(&self) -> Option<String> {
            self.as_str().map(str::to_owned)
        }
        fn count(&self) -> Option<u64> {
            self.as_u64()
        }
        fn flag(&self) -> Option<bool> {
            self.as_bool()
        }
        fn number(&self) -> Option<Number> {
            self.as_number().cloned()
        }
        fn items(&self) -> Option<Vec<Self>> {
            self.as_array().cloned()
        }
    }

    /// Frames of every type, and texts that are not quite frames.
    const TEXTS: &[&str] = &[
        r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"spectator","resumed":true,"nameLocked":true,"seq":5,"heartbeatMs":15000,
            "members":[{"id":"m-1","role":"player","state":"online","lastAction":"WA","typingMs":0,"name":"Ada","awayMs":1200},
                       {"id":"m-2","role":"player","state":"reconnecting","lastAction":null,"typingMs":900}],
            "history":[{"at":10,"frame":{"type":"action","action":"WA","from":"m-1","name":"Ada","seq":5,"judge":true}},
                       {"at":9,"frame":{"type":"presence","event":"join","member":{"id":"m-2","role":"player"},"seq":4}},
                       {"at":8,"frame":{"type":"confetti","colour":"red"}}],
            "recovered":false}"#,
        r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[]}"#,
        r#"{"type":"welcome","protocol":300,"room":"r","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[]}"#,
        r#"{"type":"welcome","protocol":1,"room":"r r","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[]}"#,
        r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[{"id":"x"}]}"#,
        r#"{"type":"welcome","protocol":1,"room":"r","you":"a","role":"player","resumed":false,"seq":0,"heartbeatMs":15000,"members":[],"history":{}}"#,
        r#"{"type":"typing","clientId":"c","ts":12,"from":"m-1","seq":1}"#,
        r#"{"type":"typing","ts":1.5e300,"from":"m-1","seq":1,"extra":[1,{"a":null}]}"#,
        r#"{"type":"action","clientId":"c","action":"FAILED_TC12","from":"m-1","name":"Grace","seq":2}"#,
        r#"{"type":"action","action":"NOPE","from":"m-1","seq":2}"#,
        r#"{"type":"action","action":"AC","from":"m-1","seq":-2}"#,
        r#"{"type":"action","action":"AC","from":"m-1","seq":2,"judge":null}"#,
        r#"{"type":"away","away":true,"from":"m-1","seq":3}"#,
        r#"{"type":"away","away":"yes","from":"m-1","seq":3}"#,
        r#"{"type":"name","from":"m-1","name":"Ada Lovelace","seq":4}"#,
        r#"{"type":"name","from":"m-1","name":"","seq":4}"#,
        r#"{"type":"presence","event":"reconnecting","member":{"id":"m-1","role":"player","name":"Ada"},"seq":6}"#,
        r#"{"type":"presence","event":"resume","member":{"id":"m-1","role":"spectator"},"seq":6}"#,
        r#"{"type":"presence","event":"leave","member":{"id":"m-1","role":"judge"},"seq":6}"#,
        r#"{"type":"presence","event":"wave","member":{"id":"m-1","role":"player"},"seq":6}"#,
        r#"{"type":"snapshot","seq":7,"members":[]}"#,
        r#"{"type":"snapshot","seq":null,"members":[]}"#,
        r#"{"type":"heartbeat"}"#,
        r#"{"type":"heartbeat","seq":"later"}"#,
        r#"{"type":"error","code":"invalid_json","message":"not JSON"}"#,
        r#"{"type":"error","code":"invalid_json"}"#,
        r#"{"type":"confetti","colour":"red","seq":4}"#,
        r#"{"type":7}"#,
        r#"{"seq":4}"#,
        r#"[{"type":"heartbeat"}]"#,
        r#""heartbeat""#,
        "null",
    ];

    #[test]
    fn the_tree_reader_reads_what_the_text_reader_reads() {
        let mut frames = 0;
        let corpus = corpus();
        let texts = TEXTS
            .iter()
            .copied()
            .chain(corpus.iter().map(String::as_str));
        for text in texts {
            let Ok(tree) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            // A key given twice: the text reader refuses the frame, and the
            // tree holds only the last (the server writes each key once).
            let envelope = serde_json::from_str::<super::super::read::Envelope>(text);
            if envelope.is_err_and(|e| e.to_string().starts_with("duplicate field")) {
                continue;
            }
            let from_text = ServerFrame::parse(text);
            frames += usize::from(from_text.is_some());
            assert_eq!(ServerFrame::read(&tree), from_text, "{text}");
        }
        assert!(frames > 10, "most of them are frames: {frames}");
    }
}
