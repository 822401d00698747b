//! Background work: the loops a process runs beside HTTP (or instead of it), with one
//! lifecycle.
//!
//! Each subsystem ([`crate::subsystem::Subsystem`]) starts the same way,
//! `start(&app, &background)`, and stops the same way: [`Background::shutdown`] (what SIGTERM leads to) first cancels the *work* — HTTP
//! takes no new connection, job workers fetch no new job, loops end their round — and
//! waits for what is in flight; only then are the *flushers* told to write what was
//! recorded (usage, API key use), so nothing recorded by a request or a job is lost.
//!
//! Which subsystems a process runs is in [`crate::subsystem`].

use std::future::Future;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The background tasks of one process, and the two tokens that stop them in order.
#[derive(Debug, Default)]
pub struct Background {
    /// Cancelled when the process is asked to stop: intake ends.
    stop: CancellationToken,
    /// Cancelled once the work has drained: flushers write the last of what was recorded.
    drain: CancellationToken,
    work: TaskTracker,
    flushers: TaskTracker,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until shutdown. It is handed the token that says stop and should end
    /// soon after it is cancelled, having finished what it had started.
    pub fn spawn<F>(&self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let running = task(stop.clone());
        self.work.spawn(async move {
            running.await;
            if !stop.is_cancelled() {
                tracing::error!(subsystem = name, "background task ended before shutdown");
            }
        });
    }

    /// Runs a flusher: `task` is handed a token cancelled only after every task started
    /// by [`Background::spawn`] has ended, and should then write what is left and end.
    pub fn spawn_flusher<F>(&self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.flushers.spawn(task(self.drain.clone()));
    }

    /// Completes when shutdown has begun: the graceful-shutdown signal of the HTTP server.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.clone().cancelled_owned()
    }

    /// Begins the shutdown: intake ends; [`Background::shutdown`] waits for the rest.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Begins the shutdown when `signal` ([`shutdown_signal`]) completes. A process
    /// calls [`shutdown_signal`] before it starts its background work, so its handlers
    /// are in place before the first job runs: a SIGTERM that came earlier would meet
    /// the default action and kill the process with its jobs.
    pub fn stop_when(&self, signal: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
    }

    /// Stops intake, waits for the work in flight, then lets the flushers write and waits
    /// for them. Call it after the HTTP server (if any) has finished its requests, so that
    /// what they recorded is flushed too, and before the pools close.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.work.close();
        self.work.wait().await;
        self.drain.cancel();
        self.flushers.close();
        self.flushers.wait().await;
        tracing::info!("background work stopped");
    }
}

impl Drop for Background {
    /// A background dropped without [`Background::shutdown`] (an error path, a test)
    /// still ends its tasks, flushers last-writing as at a shutdown, without waiting.
    fn drop(&mut self) {
        self.stop.cancel();
        self.drain.cancel();
    }
}

/// Completes on Ctrl-C or SIGTERM; the handlers are installed when this is called.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = async |signal: Option<tokio::signal::unix::Signal>| match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            };
            tokio::select! {
                () = received(interrupt) => {},
                () = received(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received: finishing requests in flight");
    }
}
