//! The node's one Redis pub/sub connection, shared by every [`Subscription`].
//!
//! Redis reserves a subscribed connection for pub/sub, so a connection per event stream
//! would cost a Redis client, a socket and a reader per open browser tab, with nothing to
//! bound them. Instead one reader task owns the connection's incoming messages and fans
//! each one out, in process, to the subscribers of its channel. The first subscriber of a
//! channel SUBSCRIBEs it and the last one to leave UNSUBSCRIBEs it, so Redis only sends this
//! node what someone here is listening to.
//!
//! When the connection is lost every subscription ends, as the [`crate::Cache`] contract
//! says; the next `subscribe` opens a new connection.

use crate::redis::timed;
use crate::{CacheError, FANOUT_CAPACITY, Subscription, fanout_subscription};
use ::redis::Client;
use ::redis::aio::{PubSubSink, PubSubStream};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

/// Each subscribed channel's fan-out sender, read by the reader task for every message.
type Routes = Arc<std::sync::Mutex<HashMap<String, broadcast::Sender<Arc<[u8]>>>>>;

/// The live pub/sub connection, if any, shared with the clean-up of departing subscribers.
type SharedLink = Arc<Mutex<Option<Link>>>;

/// Subscribes channels on one shared connection and hands out in-process subscriptions.
pub(crate) struct SharedSubscriber {
    /// Opens the connection, lazily and again after it was lost.
    client: Client,
    /// Held across SUBSCRIBE/UNSUBSCRIBE so those commands reach Redis in the order the
    /// routing table changes; otherwise a late UNSUBSCRIBE could undo a new SUBSCRIBE.
    link: SharedLink,
}

/// One open pub/sub connection: its command half, the routing table, and the reader task.
struct Link {
    sink: PubSubSink,
    routes: Routes,
    reader: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // Stops the reader, which drops the routes and so ends every subscription of it.
        self.reader.abort();
    }
}

fn routes_of(
    routes: &Routes,
) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<[u8]>>>> {
    // The table is consistent after every statement, so a panic elsewhere cannot corrupt it.
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    async fn open(client: &Client) -> Result<Link, CacheError> {
        let pubsub = timed("connect (pub/sub)", client.get_async_pubsub()).await?;
        let (sink, stream) = pubsub.split();
        let routes = Routes::default();
        let reader = tokio::spawn(read(stream, routes.clone()));
        Ok(Link {
            sink,
            routes,
            reader,
        })
    }
}

/// Delivers every incoming message to its channel's subscribers until the connection ends.
async fn read(mut stream: PubSubStream, routes: Routes) {
    while let Some(message) = stream.next().await {
        let payload: Arc<[u8]> = Arc::from(message.get_payload_bytes());
        if let Some(sender) = routes_of(&routes).get(message.get_channel_name()) {
            // No receiver left just means the last subscriber is leaving; its clean-up
            // unsubscribes.
            let _ = sender.send(payload);
        }
    }
    tracing::warn!("redis pub/sub connection lost; event streams end and resubscribe");
    // Dropping the senders ends every subscription, so their owners resubscribe.
    routes_of(&routes).clear();
}

impl SharedSubscriber {
    /// A subscriber that connects through `client` when first needed.
    pub(crate) fn new(client: Client) -> Self {
        SharedSubscriber {
            client,
            link: SharedLink::default(),
        }
    }

    /// Subscribes to the Redis channel `channel` (already namespaced); returns once Redis
    /// has confirmed it, so no later publish is missed.
    pub(crate) async fn subscribe(&self, channel: String) -> Result<Subscription, CacheError> {
        let mut guard = self.link.lock().await;
        let link = match guard.take() {
            Some(link) if !link.reader.is_finished() => link,
            _ => Link::open(&self.client).await?,
        };
        let link = guard.insert(link);
        let (receiver, first) = {
            let mut routes = routes_of(&link.routes);
            match routes.get(&channel) {
                Some(sender) => (sender.subscribe(), false),
                None => {
                    // The route exists before Redis confirms, so a message published in
                    // between is delivered rather than dropped.
                    let (sender, receiver) = broadcast::channel(FANOUT_CAPACITY);
                    routes.insert(channel.clone(), sender);
                    (receiver, true)
                }
            }
        };
        if first && let Err(e) = timed("SUBSCRIBE", link.sink.subscribe(channel.as_str())).await {
            // The connection is suspect: drop it (ending its subscriptions) and reconnect
            // on the next call rather than keep routes Redis may not be sending.
            *guard = None;
            return Err(e);
        }
        let link = self.link.clone();
        let leaving = channel.clone();
        Ok(fanout_subscription(
            receiver,
            channel,
            Some(Box::new(move || release(link, leaving))),
        ))
    }
}

/// Unsubscribes `channel` once its last subscriber has gone. Runs as a task because a
/// subscription is dropped synchronously; outside a runtime (process teardown) there is
/// nothing left to clean up.
fn release(link: SharedLink, channel: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut guard = link.lock().await;
        let Some(link) = guard.as_mut() else {
            return;
        };
        let idle = {
            let mut routes = routes_of(&link.routes);
            let idle = routes
                .get(&channel)
                .is_some_and(|sender| sender.receiver_count() == 0);
            if idle {
                routes.remove(&channel);
            }
            idle
        };
        if idle && let Err(e) = timed("UNSUBSCRIBE", link.sink.unsubscribe(channel.as_str())).await
        {
            // Harmless: Redis keeps sending this channel, and the reader drops it unrouted.
            tracing::debug!(error = %e, "could not unsubscribe an idle channel");
        }
    });
}
