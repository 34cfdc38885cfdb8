//! The server: configuration, the HTTP router (pages, assets, the relay),
//! the accept loop and graceful shutdown.

pub mod assets;
pub mod backplane;
pub mod clock;
pub mod config;
pub mod fanout;
pub mod guard;
pub mod hub;
pub mod judge;
pub mod ops;
mod pages;
pub mod relay;
pub mod room;
pub mod security;
pub mod state;
pub mod stats;
pub mod timers;
pub mod token;

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, http::Request, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use leptos::config::LeptosOptions;
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::{
    sync::CancellationToken,
    task::{AbortOnDropHandle, TaskTracker},
};
use tower::Service;
use tracing::{debug, info, warn};

use self::{
    backplane::{MemoryBus, RedisBackplane, SharedBackplane},
    clock::Clock,
    config::Config,
    guard::Admission,
    hub::Hub,
    judge::Judge,
    relay::Relay,
    security::PagePolicy,
    state::AppState,
    stats::Stats,
};

/// Longest pause of the accept loop after a failed accept (e.g. out of file
/// descriptors), so that it neither spins nor stalls.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How many connections the kernel may hold for the accept loop. A
/// reconnect storm (every page of a restarted instance coming back at once)
/// outruns the loop for a moment, and a connection that finds the queue
/// full has its SYN dropped: it waits a second, then three, before trying
/// again. tokio's `bind` asks for 128, as the standard library does; Linux
/// caps what is asked at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: u32 = 65_535;

/// Why the server could not start.
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
    /// The Redis URL was refused.
    #[error("cannot use the redis server")]
    Redis(#[from] redis::RedisError),
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    /// The operators' port and its routes, with `--metrics-addr`.
    operators: Option<(TcpListener, Router)>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Server {
    /// Binds `config.addr` and builds the routes; pages and assets come
    /// from the site described by `leptos`.
    pub async fn bind(config: Config, leptos: LeptosOptions) -> Result<Self, ServerError> {
        Self::bind_on(config, leptos, &MemoryBus::new()).await
    }

    /// Like [`bind`](Self::bind), but without a Redis URL the rooms are
    /// shared with every server bound on the same `bus`: several instances
    /// in one process, as tests and benchmarks run them.
    pub async fn bind_on(
        config: Config,
        mut leptos: LeptosOptions,
        bus: &MemoryBus,
    ) -> Result<Self, ServerError> {
        let bind_error = |source| ServerError::Bind {
            addr: config.addr,
            source,
        };
        let listener = listen(config.addr).map_err(bind_error)?;
        leptos.site_addr = listener.local_addr().map_err(bind_error)?;
        let operators = match config.metrics_addr {
            Some(addr) => Some(listen(addr).map_err(|source| ServerError::Bind { addr, source })?),
            None => None,
        };
        // cargo leptos watch: the page's live-reload script connects here.
        let live_reload = std::env::var_os("LEPTOS_WATCH")
            .map(|_| leptos.reload_external_port.unwrap_or(leptos.reload_port));
        let policy = config.page_policy(live_reload);
        let stats = Arc::new(Stats::default());
        let clock = Clock::new();
        let backplane = backplane(&config, bus, &stats, clock)?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let hub = Hub::new(
            backplane,
            stats.clone(),
            config.queue_capacity.into(),
            clock,
            tasks.clone(),
        );

        let state = app_state(&config, leptos, hub.clone(), &stats, &shutdown, &tasks);
        let operators = operators.map(|listener| {
            let routes = policy.layer(ops::operator_router(state.relay.clone()));
            (listener, routes)
        });
        Ok(Self {
            listener,
            router: router(state, &policy, operators.is_some()),
            operators,
            hub,
            shutdown,
            tasks,
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The operators' port, with `--metrics-addr`.
    pub fn operator_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.operators.as_ref()?;
        listener.local_addr().ok()
    }

    /// The server's live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.hub.stats().clone()
    }

    /// Serves one accepted connection in its own task, watched by
    /// `connections` for the graceful shutdown.
    fn serve_connection(
        &self,
        builder: &auto::Builder<TokioExecutor>,
        connections: &GracefulShutdown,
        tcp: TcpStream,
        peer: SocketAddr,
    ) {
        // Frames are small: without TCP_NODELAY they wait for delayed ACKs.
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "TCP_NODELAY not set");
        }
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%peer, %error, "connection ended with an error");
            }
        });
    }

    /// Serves until `shutdown` completes; then stops accepting, closes every
    /// WebSocket with 1001 (told by the hub; upgraded sockets are not HTTP
    /// connections any more), and waits up to the shutdown timeout.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        // What an operator sizing instances that share a machine checks.
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        self.hub.stats().set_workers(workers);
        info!("{workers} worker threads");
        info!("listening on http://{}", self.local_addr());
        // Ends with the server: stopped at shutdown, aborted when dropped.
        let _operators = self.operators.take().map(|(listener, routes)| {
            if let Ok(addr) = listener.local_addr() {
                info!("operators' port on http://{addr}");
            }
            let stop = self.shutdown.clone();
            let serve = axum::serve(listener, routes)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            AbortOnDropHandle::new(tokio::spawn(async move {
                if let Err(error) = serve.await {
                    warn!(%error, "the operators' port failed");
                }
            }))
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.handshake_timeout);
        builder.http2().timer(TokioTimer::new());
        let connections = GracefulShutdown::new();
        let mut backoff = Duration::ZERO;
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, most likely: keep the
                        // open connections, retry after a growing pause.
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                        warn!(%error, pause_ms = backoff.as_millis(), "cannot accept connections");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            backoff = Duration::ZERO;
            self.serve_connection(&builder, &connections, tcp, peer);
        }
        info!("shutting down");
        drop(self.listener);
        self.shutdown.cancel();
        self.hub.shut_down();
        self.tasks.close();
        let drained = async {
            tokio::join!(self.tasks.wait(), connections.shutdown());
        };
        if tokio::time::timeout(self.shutdown_timeout, drained)
            .await
            .is_err()
        {
            warn!(
                sockets = self.tasks.len(),
                "connections still open at the shutdown deadline"
            );
        }
    }
}

/// A listener on `addr` with the [`LISTEN_BACKLOG`] queue, reusable at once
/// after a restart (`SO_REUSEADDR`, as tokio's `bind` sets it).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What the handlers share, from the configuration.
fn app_state(
    config: &Config,
    leptos: LeptosOptions,
    hub: Arc<Hub>,
    stats: &Arc<Stats>,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> AppState {
    AppState {
        leptos,
        judge: Judge {
            hub: hub.clone(),
            secret: config.publish_secret.clone().map(Arc::new),
        },
        relay: Arc::new(Relay {
            hub,
            stats: stats.clone(),
            heartbeat: config.heartbeat(),
            silence_limit: config.silence_limit(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            origins: Arc::new(config.origin_policy()),
            rates: config.rate_limits(),
            admission: Admission::new(config.admission_limits()),
            reconnect_window: Duration::from_millis(config.reconnect_window_ms),
            proxies: Arc::new(config.trusted_proxies()),
            token_secret: config.token_secret.clone().map(Arc::new),
        }),
    }
}

/// The backplane the configuration asks for: Redis if it names a server,
/// else `bus`.
fn backplane(
    config: &Config,
    bus: &MemoryBus,
    stats: &Arc<Stats>,
    clock: Clock,
) -> Result<SharedBackplane, ServerError> {
    let limits = config.limits();
    Ok(match &config.redis_source() {
        Some(source) => Arc::new(RedisBackplane::start(
            source,
            limits,
            Duration::from_millis(config.instance_ttl_ms),
            config.redis_timeouts(),
            stats.clone(),
            clock,
        )?),
        None => {
            stats.set_backplane_up(true);
            Arc::new(bus.node(limits))
        }
    })
}

/// The public routes: pages, assets, the relay, the judge's API, and the
/// operators' routes unless they have a port of their own.
fn router(state: AppState, policy: &PagePolicy, operator_port: bool) -> Router {
    let (hashed, pkg_dir) = (state.leptos.hash_files, state.leptos.site_pkg_dir.clone());
    let router = pages::routes(state.leptos.clone(), policy)
        .merge(relay::routes())
        .merge(ops::routes(operator_port))
        .merge(judge::routes())
        .with_state(state);
    policy.layer(assets::layer(router, hashed, &pkg_dir))
}
