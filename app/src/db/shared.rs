//! Heavy reads that concurrent requests share: the first request to ask for a key runs the read;
//! requests that ask for the same key while it runs wait for that answer instead of starting their
//! own. Nothing is kept once the read has answered: the next request reads again. So a burst of
//! sixteen requests for the compliance page costs one read of the violations, not sixteen that
//! compete for the pool's connections.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::error::{ServerError, ServerResult};

type Answer = Result<Arc<dyn Any + Send + Sync>, Arc<ServerError>>;
type Running = Arc<OnceCell<Answer>>;

/// The reads running now, by key.
#[derive(Default)]
pub struct Shared {
    running: Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Takes the key's entry away when its holder is done (or dropped mid-way), if it is still the
/// entry that holder joined; the next request then starts a fresh read.
struct Leave<'a> {
    shared: &'a Shared,
    key: String,
    running: Running,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.shared.running.lock() {
            if running
                .get(&self.key)
                .is_some_and(|r| Arc::ptr_eq(r, &self.running))
            {
                running.remove(&self.key);
            }
        }
    }
}

impl Shared {
    /// The answer of `read` for `key`, shared with every caller that asks while it runs. A user
    /// error reaches every sharer as it is; a fault reaches the others in words. The key names the
    /// read and everything its answer depends on (a filter, a window).
    pub async fn read<T, F, Fut>(&self, key: impl Into<String>, read: F) -> ServerResult<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServerResult<T>>,
    {
        let key: String = key.into();
        let running = {
            let mut map = self
                .running
                .lock()
                .map_err(|_| ServerError::fault("the shared reads' table was poisoned"))?;
            map.entry(key.clone()).or_default().clone()
        };
        let leave = Leave {
            shared: self,
            key: key.clone(),
            running: running.clone(),
        };
        let answer = running
            .get_or_init(|| async {
                match read().await {
                    Ok(value) => Ok(Arc::new(value) as Arc<dyn Any + Send + Sync>),
                    Err(err) => Err(Arc::new(err)),
                }
            })
            .await
            .clone();
        drop(leave);
        match answer {
            Ok(value) => value.downcast::<T>().map_err(|_| {
                ServerError::fault(format!("shared read {key} answered another type"))
            }),
            Err(err) => Err(match err.user() {
                Some(user) => ServerError::User(user.clone()),
                None => ServerError::fault(err.to_string()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn callers_that_ask_while_a_read_runs_share_it_and_the_next_caller_reads_again() {
        let shared = Shared::default();
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ServerError>(reads.load(Ordering::SeqCst))
        };
        let answers = futures_join(&shared, read).await;
        assert_eq!(answers, vec![1; 8], "eight callers at once share one read");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let later = shared.read("k", read).await.unwrap();
        assert_eq!(*later, 2, "a caller after the read answered reads again");
    }

    async fn futures_join<F, Fut>(shared: &Shared, read: F) -> Vec<usize>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = ServerResult<usize>>,
    {
        let calls: Vec<_> = (0..8).map(|_| shared.read("k", read)).collect();
        let mut answers = Vec::new();
        for answer in join_all(calls).await {
            answers.push(*answer.unwrap());
        }
        answers
    }

    /// Polls every future together on this task (no extra dependency for a test).
    async fn join_all<Fut: Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
        let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
        let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
                if output.is_none() {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => *output = Some(value),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        outputs.into_iter().map(Option::unwrap).collect()
    }

    #[tokio::test]
    async fn a_user_error_reaches_every_sharer_as_it_is() {
        let shared = Shared::default();
        let err = shared
            .read("k", || async {
                Err::<usize, _>(ServerError::User(crate::AppError::NotFound("x".into())))
            })
            .await
            .unwrap_err();
        assert_eq!(err.user(), Some(&crate::AppError::NotFound("x".into())));
    }
}
