//! One stop signal for the whole service: SIGTERM or Ctrl-C are turned into it once, and every
//! loop (updater, Git → cluster, HTTP) finishes what it is doing and returns.

use tokio::sync::watch;

/// A cancellation token: cheap to clone; every clone sees the same stop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Asks everything holding a clone to stop.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the stop is asked for (at once if it already was).
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // The sender lives in every clone, so `changed` only fails if all are gone: a stop too.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Cancels on SIGTERM or Ctrl-C: the service's only signal handler. Must be called inside
    /// the runtime.
    pub fn cancel_on_signals(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut t) => {
                        t.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {}
                _ = tokio::signal::ctrl_c() => {}
                () = me.cancelled() => return,
            }
            tracing::info!("stop requested");
            me.cancel();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Shutdown;

    #[tokio::test]
    async fn every_clone_sees_the_stop() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        let waiter = tokio::spawn(async move { b.cancelled().await });
        a.cancel();
        waiter.await.unwrap();
        assert!(a.is_cancelled());
        // Already cancelled: resolves at once.
        a.cancelled().await;
    }
}
