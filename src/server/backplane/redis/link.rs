//! The link: this instance's one pub/sub connection to Redis, kept up for
//! as long as the backplane lives. It subscribes to the rooms that have
//! local connections, hands each room's messages to its sink, and runs the
//! upkeep beside itself while it is up.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::StreamExt;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig, PubSub, PubSubSink},
    RedisError,
};
use tokio_util::task::AbortOnDropHandle;
use tracing::{info, warn};

use super::{codec::Message, keys, lock, unavailable, Instance};
use crate::{
    backoff::Backoff,
    protocol::{Presence, PresenceEvent, RoomName, ServerFrame},
    server::{backplane::BackplaneError, clock::millis},
};

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may take before the broker counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait between two attempts to reach Redis.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Keeps the pub/sub connection up, reconnecting with jittered backoff,
/// until the task is aborted.
pub async fn run(instance: Arc<Instance>) {
    let mut backoff = Backoff::with_cap(millis(BACKOFF_CAP));
    let mut linked_before = false;
    loop {
        match instance.connect().await {
            Ok(pubsub) => {
                backoff.reset();
                let outcome = instance.serve(pubsub, &mut linked_before).await;
                instance.set_up(false);
                warn!(?outcome, "lost the link to redis");
            }
            Err(error) => warn!(%error, "cannot reach redis"),
        }
        let delay = backoff.next_delay(fastrand::f64());
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

impl Instance {
    async fn connect(&self) -> Result<PubSub, RedisError> {
        let timeout = |_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(timeout)??;
        if self.commands.get().is_none() {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1);
            let manager = tokio::time::timeout(
                CONNECT_TIMEOUT,
                ConnectionManager::new_with_config(self.client.clone(), config),
            )
            .await
            .map_err(timeout)??;
            let _ = self.commands.set(manager);
        }
        Ok(pubsub)
    }

    /// Subscribes, resynchronises, then relays messages until the link
    /// fails.
    async fn serve(
        self: &Arc<Self>,
        pubsub: PubSub,
        linked_before: &mut bool,
    ) -> Result<(), BackplaneError> {
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed = HashSet::new();
        self.beat().await?;
        self.reconcile(&mut sink, &mut subscribed).await?;
        self.resync().await?;
        self.set_up(true);
        if std::mem::replace(linked_before, true) {
            self.stats.backplane_reconnected();
        }
        info!("linked to redis");
        // Beside the loop, so that a long sweep never holds frames back.
        let _upkeep = AbortOnDropHandle::new(tokio::spawn(self.clone().upkeep()));
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.dispatch(&message),
                    None => return Ok(()),
                },
                () = self.changed.notified() => self.reconcile(&mut sink, &mut subscribed).await?,
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
            rooms.into_iter().map(keys::room_key).collect()
        };
        let add = channels(wanted.difference(subscribed).collect());
        if !add.is_empty() {
            sink.subscribe(add).await.map_err(|e| unavailable(&e))?;
        }
        let remove = channels(subscribed.difference(&wanted).collect());
        if !remove.is_empty() {
            sink.unsubscribe(remove)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        *subscribed = wanted;
        for (name, room) in lock(&self.rooms).iter() {
            if subscribed.contains(name) {
                room.mark_subscribed();
            }
        }
        Ok(())
    }

    /// Hands a message of a room's channel to the room's sink.
    fn dispatch(&self, message: &redis::Msg) {
        let Some(room) = keys::room_of_channel(message.get_channel_name()) else {
            return;
        };
        let Some(local) = self.subscription(&room) else {
            return;
        };
        let text = std::str::from_utf8(message.get_payload_bytes()).unwrap_or_default();
        match Message::parse(text) {
            Some(Message::Frame(seq, frame)) => {
                if let ServerFrame::Presence(Presence {
                    event: PresenceEvent::Reconnecting,
                    ..
                }) = &frame
                {
                    self.watch_grace(room);
                }
                local.deliver(seq, frame);
            }
            Some(Message::Replaced(conn)) => {
                lock(&self.seats).remove(&conn);
                local.sink.replaced(&conn);
            }
            None => warn!(%room, "unreadable message on the room's channel"),
        }
    }
}
