//! The server: configuration, the HTTP router (pages, assets, the relay)
//! and the listener.

pub mod backplane;
pub mod config;
pub mod hub;
pub mod relay;
pub mod roster;
pub mod stats;

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::FromRef,
    response::{IntoResponse, Redirect},
    routing::get,
    serve::ListenerExt,
    Router,
};
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use self::{
    backplane::{AnyBackplane, MemoryBus},
    config::Config,
    hub::{Clock, Hub},
    relay::Relay,
    stats::Stats,
};
use crate::app::{shell, App};

/// What the HTTP handlers share.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// Where the built site lives, for pages and assets.
    pub leptos: LeptosOptions,
    /// The room relay.
    pub relay: Relay,
}

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The listener failed while serving.
    #[error("the server stopped")]
    Serve(#[source] io::Error),
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    shutdown_timeout: Duration,
}

impl Server {
    /// Binds `config.addr` and builds the routes; pages and assets come
    /// from the site described by `leptos`.
    pub async fn bind(config: Config, mut leptos: LeptosOptions) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
        leptos.site_addr = addr;
        let stats = Arc::new(Stats::default());
        let backplane = AnyBackplane::Memory(MemoryBus::new().node());
        let hub = Hub::new(
            backplane,
            stats.clone(),
            config.queue_capacity.into(),
            config.limits(),
            Clock::new(),
        );
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let state = AppState {
            leptos,
            relay: Relay {
                hub,
                stats: stats.clone(),
                heartbeat: config.heartbeat(),
                silence_limit: config.silence_limit(),
                shutdown: shutdown.clone(),
                tasks: tasks.clone(),
            },
        };
        Ok(Self {
            listener,
            router: router(state),
            stats,
            shutdown,
            tasks,
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The server's live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes
    /// every WebSocket with 1001 and waits (up to the shutdown timeout) for
    /// them to finish. axum's graceful shutdown does not see upgraded
    /// sockets, hence the token and the task tracker.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        info!("listening on http://{}", self.local_addr());
        // Frames are small: without TCP_NODELAY they wait for delayed ACKs.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
        });
        let token = self.shutdown.clone();
        let stopping = async move {
            shutdown.await;
            token.cancel();
        };
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(stopping)
            .await
            .map_err(ServerError::Serve);
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(self.shutdown_timeout, self.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                open = self.tasks.len(),
                "sockets still open at the shutdown deadline"
            );
        }
        served
    }
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .route("/new", get(new_battle))
        .merge(relay::routes())
        .leptos_routes(&state, routes, {
            let leptos = state.leptos.clone();
            move || shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
}

/// `GET /new`: a fresh battle, as a redirect to its page.
async fn new_battle() -> impl IntoResponse {
    Redirect::to(&format!("/battle/{}", uuid::Uuid::new_v4()))
}
