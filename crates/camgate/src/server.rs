//! Running the HTTP service: open the data directory, bind the listener, serve until a
//! shutdown signal, drain in-flight requests for a bounded time, then shut the service down in
//! order (`app`). The accept loop and the limits every connection is held to (header-read and
//! idle timeouts, connections per client) are in `server/`.

mod accept;
mod limits;
mod timer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::db::{Db, DbError};

/// How long requests in flight get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the data directory {dir}: {source}")]
    Storage { dir: String, source: DbError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// A bound, ready-to-run server. Split from [`Server::run`] so callers (tests, `demo`) learn
/// the real address before serving.
pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
}

impl Server {
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let db = Db::open(&config.data_dir).map_err(|source| ServeError::Storage {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let addr = config.http.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let app = Arc::new(App::build(Arc::new(config), db, local_addr));
        Ok(Server { listener, app })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr
    }

    /// The assembled service (tests and `demo` reach its parts through it).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish for up to [`DRAIN_TIMEOUT`], and shuts the service down in order
    /// ([`App::shutdown`]), whether or not the drain finished in time.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server { listener, app } = self;
        let config = &app.config;
        raise_open_file_limit();
        tracing::info!(
            addr = %app.local_addr,
            data_dir = %config.data_dir.display(),
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        if config.auth.api_keys.is_empty() {
            tracing::info!(
                "protected mode: no [auth] api_keys configured, answering clients on this machine only"
            );
            if !app.local_addr.ip().is_loopback() {
                tracing::warn!(
                    addr = %app.local_addr,
                    "listening beyond loopback in protected mode: other machines will get 403 until [auth] api_keys is set"
                );
            }
        }
        app.start().await;
        // Pairs stored before they were refused at provisioning (issue 16 #9); also in /health.
        if let Ok(ambiguous) = app.db.ambiguous_paths().await {
            for warning in ambiguous {
                tracing::warn!("ambiguous stream path: {warning}");
            }
        }
        let router = app.router();
        let policy = accept::ConnPolicy::new(&config.http);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Awaited below (with the drain timeout), so it is not a detached task.
        let mut serve = tokio::spawn(tracing::Instrument::instrument(
            async move { accept::serve(listener, router, policy, stop_rx).await },
            tracing::info_span!("http server"),
        ));
        let result = tokio::select! {
            done = &mut serve => Some(done),
            () = shutdown => {
                tracing::info!("shutting down: finishing requests in flight");
                let _ = stop_tx.send(true);
                match tokio::time::timeout(DRAIN_TIMEOUT, &mut serve).await {
                    Ok(done) => Some(done),
                    Err(_) => {
                        tracing::warn!(timeout = ?DRAIN_TIMEOUT, "requests still open after the drain timeout; closing them");
                        serve.abort();
                        None
                    }
                }
            }
        };
        // Every later step runs, drained or not.
        app.shutdown().await;
        match result {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(ServeError::Serve(e)),
            Some(Err(join)) => Err(ServeError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}

/// Raises the soft limit of open files (RLIMIT_NOFILE) to the hard limit and logs the result:
/// every player holds a socket, and the usual soft limit (1024) would refuse the 1000th
/// viewer of a popular camera long before the CPU is busy.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim = raised;
            } else {
                let e = std::io::Error::last_os_error();
                tracing::warn!(error = %e, soft = before, hard = lim.rlim_max, "cannot raise the open-file limit");
            }
        }
        tracing::info!(
            open_files = lim.rlim_cur,
            was = before,
            "open-file limit (RLIMIT_NOFILE); each HLS/MSE viewer holds one"
        );
    }
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM (`docker stop`, systemd) handlers now, and returns
/// a future that completes when either arrives. Installing eagerly matters: a signal that
/// arrives before the handlers exist kills the process without a clean shutdown, so call
/// this before announcing that the server is listening. Must run inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => tracing::info!("SIGINT received"),
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                    }
                }
                (int, term) => {
                    let e = int
                        .err()
                        .or(term.err())
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    tracing::warn!(error = %e, "cannot install signal handlers; falling back to Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
