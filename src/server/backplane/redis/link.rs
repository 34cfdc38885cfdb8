//! The link: this instance's one pub/sub connection to Redis, kept up for
//! as long as the backplane lives. It subscribes to the rooms that have
//! local connections, hands each room's messages to its sink, and runs the
//! upkeep beside itself while it is up. Every call it makes has a deadline;
//! it pings the pub/sub connection every second and counts the link as
//! down when Redis has been silent past the liveness timeout, or when any
//! call of the instance timed out: then it drops the link and reconnects.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::StreamExt;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig, PubSub, PubSubSink},
    RedisError,
};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::task::AbortOnDropHandle;
use tracing::{info, warn};

use super::{
    codec::Message,
    keys,
    liveness::{no_reply, Liveness, PING_PERIOD},
    lock,
    offline::Subscription,
    Instance,
};
use crate::{
    backoff::Backoff,
    protocol::{Presence, PresenceEvent, RoomName, ServerFrame},
    server::{backplane::BackplaneError, clock::millis},
};

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait between two attempts to reach Redis.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Keeps the pub/sub connection up, reconnecting with jittered backoff,
/// until the task is aborted.
pub async fn run(instance: Arc<Instance>) {
    let mut backoff = Backoff::with_cap(millis(BACKOFF_CAP));
    let mut linked_before = false;
    loop {
        let reason = match instance.connect().await {
            Ok(pubsub) => {
                backoff.reset();
                match instance.serve(pubsub, &mut linked_before).await {
                    Ok(()) => "redis: the connection closed".to_owned(),
                    Err(Lost::Silent(silent)) => no_reply(silent),
                    Err(Lost::Call) => lock(&instance.down_reason).clone(),
                }
            }
            Err(error) => format!("redis: {error}"),
        };
        // Logged once per outage (when the link was up), not per attempt.
        instance.link_lost(reason);
        let delay = backoff.next_delay(fastrand::f64());
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// Why a link that was serving stopped.
#[derive(Debug)]
enum Lost {
    /// Redis was silent past the liveness timeout.
    Silent(Duration),
    /// A call failed, here or elsewhere in the instance (the reason is
    /// the instance's).
    Call,
}

impl From<BackplaneError> for Lost {
    fn from(_: BackplaneError) -> Self {
        Self::Call
    }
}

impl Instance {
    async fn connect(&self) -> Result<PubSub, RedisError> {
        let timeout = |_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let client = tokio::time::timeout(CONNECT_TIMEOUT, self.source.master())
            .await
            .map_err(timeout)??;
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(timeout)??;
        let master = client.get_connection_info().addr().to_string();
        let current = lock(&self.commands).as_ref().map(|(at, _)| at.clone());
        if current.as_deref() != Some(master.as_str()) {
            if current.is_some() {
                info!(%master, "following the redis master");
            }
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(self.timeouts.command))
                .set_number_of_retries(1);
            let manager = tokio::time::timeout(
                CONNECT_TIMEOUT,
                ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(timeout)??;
            *lock(&self.commands) = Some((master, manager));
        }
        Ok(pubsub)
    }

    /// Subscribes, resynchronises, then relays messages until the link
    /// fails, falls silent, or another call of the instance timed out.
    async fn serve(self: &Arc<Self>, pubsub: PubSub, linked_before: &mut bool) -> Result<(), Lost> {
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed = HashSet::new();
        self.beat().await?;
        self.reconcile(&mut sink, &mut subscribed).await?;
        self.resync().await?;
        self.link_up();
        if std::mem::replace(linked_before, true) {
            self.stats.backplane_reconnected();
        }
        info!("linked to redis");
        // Beside the loop, so that a long sweep never holds frames back.
        let _upkeep = AbortOnDropHandle::new(tokio::spawn(self.clone().upkeep()));
        let mut liveness = Liveness::new(self.timeouts.liveness, Instant::now());
        let mut ping = tokio::time::interval(PING_PERIOD);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if !self.is_up() {
                return Err(Lost::Call);
            }
            let suspect = self.suspect.notified();
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => {
                        liveness.heard(Instant::now());
                        self.dispatch(&message);
                    }
                    None => return Ok(()),
                },
                () = self.changed.notified() => self.reconcile(&mut sink, &mut subscribed).await?,
                _ = ping.tick() => {
                    if let Some(silent) = liveness.silent_for(Instant::now()) {
                        return Err(Lost::Silent(silent));
                    }
                    let pong = tokio::time::timeout(self.timeouts.command, sink.ping::<redis::Value>());
                    if let Ok(Ok(_)) = pong.await {
                        liveness.heard(Instant::now());
                    }
                }
                () = suspect => return Err(Lost::Call),
            }
        }
    }

    /// Subscribes to the rooms that have local connections and unsubscribes
    /// from the others.
    async fn reconcile(
        &self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<RoomName>,
    ) -> Result<(), BackplaneError> {
        let wanted: HashSet<RoomName> = lock(&self.rooms).keys().cloned().collect();
        let channels = |rooms: Vec<&RoomName>| -> Vec<String> {
            rooms
                .into_iter()
                .map(|room| keys::RoomKey(room).to_string())
                .collect()
        };
        let deadline = self.timeouts.command;
        let timed_out = |_| BackplaneError::Unavailable;
        let add = channels(wanted.difference(subscribed).collect());
        if !add.is_empty() {
            tokio::time::timeout(deadline, sink.subscribe(add))
                .await
                .map_err(timed_out)?
                .map_err(|e| self.failed(&e))?;
        }
        let remove = channels(subscribed.difference(&wanted).collect());
        if !remove.is_empty() {
            tokio::time::timeout(deadline, sink.unsubscribe(remove))
                .await
                .map_err(timed_out)?
                .map_err(|e| self.failed(&e))?;
        }
        *subscribed = wanted;
        for (name, room) in lock(&self.rooms).iter() {
            if subscribed.contains(name) {
                room.mark_subscribed();
            }
        }
        Ok(())
    }

    /// `true` for a frame of this instance that its members already got
    /// (delivered here when its publish timed out), which they must not
    /// get twice: the room's numbering moves past it.
    fn delivered_here(&self, local: &Subscription, seq: u64, id: Option<String>) -> bool {
        if id.is_some_and(|id| !self.first_delivery(&id)) {
            local.skip(seq);
            return true;
        }
        false
    }

    /// Hands a message of a room's channel to the room's sink.
    fn dispatch(self: &Arc<Self>, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Some(local) = channel
            .strip_prefix(keys::ROOM_PREFIX)
            .and_then(|name| lock(&self.rooms).get(name).cloned())
        else {
            return;
        };
        let room = &local.room;
        let text = std::str::from_utf8(message.get_payload_bytes()).unwrap_or_default();
        match Message::parse(text) {
            Some(Message::Stamped { seq, id, text }) => {
                if self.delivered_here(&local, seq, id) {
                    return;
                }
                local.deliver_text(seq, text);
            }
            Some(Message::Frame { seq, id, frame }) => {
                if self.delivered_here(&local, seq, id) {
                    return;
                }
                if let ServerFrame::Presence(Presence {
                    event: PresenceEvent::Reconnecting,
                    ..
                }) = &frame
                {
                    self.watch_grace(room.clone());
                }
                local.deliver(seq, frame);
            }
            Some(Message::Replaced(conn)) => {
                lock(&self.seats).remove(&conn);
                local.sink.replaced(&conn);
            }
            Some(Message::Handover(node)) if node != self.node => {
                self.hand_over(room.clone(), local.clone());
            }
            Some(Message::Handover(_)) => {}
            None => warn!(%room, "unreadable message on the room's channel"),
        }
    }
}
