//! The service's long-running tasks: every one is spawned here with a name and a tracing span,
//! and kept, so shutdown can stop them in order and wait for them (bounded) instead of leaving
//! detached tasks behind.
//!
//! It owns only the list of tasks. It must not know what they do: the composition root
//! (`app`) decides the order in which groups stop.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// A group of named tasks (cheap to clone; clones share the group). Finished tasks are
/// forgotten as new ones are spawned, so a group that spawns per request does not grow.
#[derive(Clone, Default)]
pub struct Tasks {
    inner: Arc<Mutex<Vec<Named>>>,
}

/// A task and its name.
type Named = (String, JoinHandle<()>);

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Spawns `fut` inside a span named `task` carrying `name` (e.g. the camera id), and keeps
    /// its handle. Returns a handle the caller may use to stop just this task.
    pub fn spawn<F>(&self, name: impl Into<String>, fut: F) -> TaskHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let span = tracing::info_span!("task", name = %name);
        let (done_tx, done) = watch::channel(false);
        let handle = tokio::spawn(
            async move {
                // Dropped when the future ends or is aborted: either way the task is over.
                let _done = DoneSignal(done_tx);
                fut.await;
            }
            .instrument(span),
        );
        let abort = handle.abort_handle();
        let mut list = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(_, h)| !h.is_finished());
        list.push((name, handle));
        TaskHandle { abort, done }
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        let list = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().filter(|(_, h)| !h.is_finished()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits up to `grace` for every task to end by itself (after its owner told it to stop),
    /// then aborts the rest and waits for them to unwind. Returns the names of the tasks that
    /// had to be aborted.
    pub async fn stop(&self, grace: Duration) -> Vec<String> {
        let list = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = tokio::time::Instant::now() + grace;
        let mut aborted = Vec::new();
        for (name, mut handle) in list {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                let _ = handle.await;
                aborted.push(name);
            }
        }
        aborted
    }

    /// Aborts every task now and waits for them to unwind.
    pub async fn abort_all(&self) {
        self.stop(Duration::ZERO).await;
    }
}

struct DoneSignal(watch::Sender<bool>);

impl Drop for DoneSignal {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// Stops one task of a group early (the group still waits for it at shutdown).
#[derive(Clone, Debug)]
pub struct TaskHandle {
    abort: tokio::task::AbortHandle,
    done: watch::Receiver<bool>,
}

impl TaskHandle {
    pub fn abort(&self) {
        self.abort.abort();
    }

    pub fn is_finished(&self) -> bool {
        *self.done.borrow() || self.abort.is_finished()
    }

    /// Waits until the task has ended and dropped its future (and so, for a camera, its
    /// session).
    pub async fn ended(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Aborts the task and waits until its future is dropped.
    pub async fn stop(&self) {
        self.abort();
        self.ended().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stop_waits_for_tasks_that_end_and_aborts_the_rest() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("quick", async move {
            let _ = rx.await;
        });
        tasks.spawn("stuck", std::future::pending());
        assert_eq!(tasks.len(), 2);
        tx.send(()).unwrap();
        let aborted = tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(aborted, vec!["stuck".to_owned()]);
        assert!(tasks.is_empty());
    }

    #[tokio::test]
    async fn finished_tasks_are_forgotten() {
        let tasks = Tasks::new();
        let h = tasks.spawn("done", async {});
        h.ended().await;
        assert!(h.is_finished());
        // The runtime marks the task complete just after its future returns.
        for _ in 0..100 {
            if tasks.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let pending = tasks.spawn("next", std::future::pending());
        assert_eq!(tasks.inner.lock().unwrap().len(), 1);
        pending.stop().await;
        assert!(pending.is_finished());
        tasks.abort_all().await;
    }
}
