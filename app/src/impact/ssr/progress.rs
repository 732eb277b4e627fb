//! How far the impacts being computed have got, so the browser can say so while it waits: each
//! is kept under the person who asked and a key their browser chose, only while it runs. The
//! replica computing it counts in memory and writes the count to the database a few times a
//! second, so a question that reaches another replica is answered too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::Row;

use crate::auth::Principal;
use crate::db::{now_ms, Db};
use crate::error::{AppError, ServerResult};
use crate::impact::ImpactSoFar;

/// The objects one impact has evaluated, and the objects the inventories it reads hold.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicI64,
    total: AtomicI64,
}

impl Progress {
    /// `objects` more to evaluate (a cluster's inventory, once it is known).
    pub fn expect(&self, objects: i64) {
        self.total.fetch_add(objects, Ordering::Relaxed);
    }

    /// `objects` more evaluated.
    pub fn advance(&self, objects: i64) {
        self.done.fetch_add(objects, Ordering::Relaxed);
    }

    /// Where it stands. An inventory may grow while it is read, so what is done never shows as
    /// more than the total.
    pub fn read(&self) -> ImpactSoFar {
        let total = self.total.load(Ordering::Relaxed);
        ImpactSoFar {
            done: self.done.load(Ordering::Relaxed).min(total),
            total,
        }
    }
}

/// Who asked, and the key their browser chose.
type Key = (String, String);

/// The impacts running now that someone may ask about.
static RUNNING: Mutex<BTreeMap<Key, Arc<Progress>>> = Mutex::new(BTreeMap::new());

/// The longest key a browser may choose.
pub const KEY_LIMIT: usize = 64;

/// How often the replica computing an impact writes how far it has got.
const WRITE_EVERY: Duration = Duration::from_millis(300);

/// How long a written count is believed after it was written: a replica that stops (or dies)
/// mid-impact leaves a row nobody reads once this has passed.
const BELIEVED_FOR_MS: i64 = 5_000;

/// An impact's progress, kept for [`read`] until this is dropped.
#[derive(Debug)]
pub struct Tracked {
    key: Key,
    progress: Arc<Progress>,
    /// Writing the count for other replicas, when [`Tracked::shared`].
    writer: Option<Writer>,
}

/// The task writing an impact's count for the other replicas.
#[derive(Debug)]
struct Writer {
    db: Db,
    /// Dropped to stop the task (after the write it may be doing).
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Stop writing, then forget the count: after any write in flight, so none outlives it.
    async fn close(self, (user, key): Key) {
        let Writer { db, stop, task } = self;
        drop(stop);
        let _ = task.await;
        if let Err(err) = forget(&db, &user, &key, now_ms()).await {
            tracing::debug!(error = %err, "forgetting an impact's progress");
        }
    }
}

impl Tracked {
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Also write the count to `db` while the impact runs, for the other replicas to read.
    pub fn shared(mut self, db: &Db) -> Tracked {
        let (writer_db, progress) = (db.clone(), self.progress.clone());
        let (user, key) = self.key.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(WRITE_EVERY) => {}
                }
                let at = now_ms();
                if let Err(err) = write(&writer_db, &user, &key, progress.read(), at).await {
                    tracing::debug!(error = %err, "writing an impact's progress");
                }
            }
        });
        self.writer = Some(Writer {
            db: db.clone(),
            stop,
            task,
        });
        self
    }

    /// The impact has answered: stop counting, and forget the count on every replica before the
    /// answer leaves, so a question that follows it finds nothing.
    pub async fn finish(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.close(self.key.clone()).await;
        }
    }
}

/// [`Tracked::finish`] of an impact tracked under the key a request named, if it named one.
pub async fn finish(tracked: Option<Tracked>) {
    if let Some(tracked) = tracked {
        tracked.finish().await;
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        // A later impact under the same key replaced this one: leave that in place.
        if running
            .get(&self.key)
            .is_some_and(|kept| Arc::ptr_eq(kept, &self.progress))
        {
            running.remove(&self.key);
        }
        drop(running);
        // Not finished (an error, or the request went away): forget it as soon as possible.
        if let Some(writer) = self.writer.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(writer.close(self.key.clone()));
            }
        }
    }
}

/// Write how far `user`'s impact under `key` has got, believed until [`BELIEVED_FOR_MS`] after
/// `at`.
async fn write(
    db: &Db,
    user: &str,
    key: &str,
    so_far: ImpactSoFar,
    at: i64,
) -> Result<(), sqlx::Error> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "INSERT INTO impact_progress (user_id, progress_key, done, total, until_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, progress_key) \
         DO UPDATE SET done = excluded.done, total = excluded.total, until_ms = excluded.until_ms",
    )
    .bind(user)
    .bind(key)
    .bind(so_far.done)
    .bind(so_far.total)
    .bind(at + BELIEVED_FOR_MS)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Forget `user`'s impact under `key` once it answered, and every count no longer believed.
async fn forget(db: &Db, user: &str, key: &str, at: i64) -> Result<(), sqlx::Error> {
    let _turn = db.write_turn().await;
    sqlx::query(
        "DELETE FROM impact_progress WHERE (user_id = $1 AND progress_key = $2) OR until_ms < $3",
    )
    .bind(user)
    .bind(key)
    .bind(at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Keep the progress of an impact `who` asked for under `key` (letters, digits and `-`, at most
/// [`KEY_LIMIT`]); a key that is not is refused, naming the field.
pub fn track(who: &Principal, key: &str) -> ServerResult<Tracked> {
    check_key(key)?;
    let tracked = Tracked {
        key: (who.user_id.clone(), key.to_owned()),
        progress: Arc::default(),
        writer: None,
    };
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(tracked.key.clone(), tracked.progress.clone());
    Ok(tracked)
}

/// [`track`] under the key a request named, if it named one (the `progress` field of the server
/// functions that compute impacts), shared through `db` with the other replicas.
pub fn track_asked(db: &Db, who: &Principal, key: Option<String>) -> ServerResult<Option<Tracked>> {
    Ok(key
        .map(|key| track(who, &key))
        .transpose()?
        .map(|tracked| tracked.shared(db)))
}

/// A key is 1 to [`KEY_LIMIT`] letters, digits or `-`; anything else is refused, naming the field.
fn check_key(key: &str) -> ServerResult<()> {
    let fits = !key.is_empty()
        && key.len() <= KEY_LIMIT
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !fits {
        return Err(AppError::Invalid(format!(
            "progress: a key is 1 to {KEY_LIMIT} letters, digits or '-'"
        ))
        .into());
    }
    Ok(())
}

/// How far the impact `who` asked for under `key` has got, as this replica counts it; `None`
/// when none runs here (not yet, no more, another person's, or on another replica).
pub fn read(who: &Principal, key: &str) -> Option<ImpactSoFar> {
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&(who.user_id.clone(), key.to_owned()))
        .map(|progress| progress.read())
}

/// [`read`], or else what the replica computing it last wrote (believed for a few seconds after
/// it was written, at `now`). The key is held to what [`track`] takes before anything is read.
pub async fn read_anywhere(
    db: &Db,
    who: &Principal,
    key: &str,
    now: i64,
) -> ServerResult<Option<ImpactSoFar>> {
    check_key(key)?;
    if let Some(here) = read(who, key) {
        return Ok(Some(here));
    }
    Ok(read_written(db, who, key, now).await?)
}

/// What the replica computing `who`'s impact under `key` last wrote, if still believed at `now`.
async fn read_written(
    db: &Db,
    who: &Principal,
    key: &str,
    now: i64,
) -> Result<Option<ImpactSoFar>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT done, total FROM impact_progress \
         WHERE user_id = $1 AND progress_key = $2 AND until_ms > $3",
    )
    .bind(&who.user_id)
    .bind(key)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(ImpactSoFar {
            done: row.try_get("done")?,
            total: row.try_get("total")?,
        }),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn progress_is_read_by_who_asked_while_it_runs() {
        let (ann, bob) = (
            Principal::new("ann", "Ann", Role::Author),
            Principal::new("bob", "Bob", Role::Admin),
        );
        let tracked = track(&ann, "k-1").unwrap();
        tracked.progress().expect(10);
        tracked.progress().expect(5);
        tracked.progress().advance(4);
        assert_eq!(read(&ann, "k-1"), Some(ImpactSoFar { done: 4, total: 15 }));
        assert_eq!(read(&bob, "k-1"), None);
        assert_eq!(read(&ann, "k-2"), None);
        tracked.progress().advance(20);
        assert_eq!(read(&ann, "k-1").unwrap().done, 15);
        // A second impact under the key takes it over; the first ending leaves it.
        let again = track(&ann, "k-1").unwrap();
        drop(tracked);
        assert_eq!(read(&ann, "k-1"), Some(ImpactSoFar { done: 0, total: 0 }));
        drop(again);
        assert_eq!(read(&ann, "k-1"), None);
    }

    /// Two replicas on one database: what one counts, the other reads within a write, and only
    /// for the person who asked; nothing once the impact answered, or once the count is stale.
    async fn another_replica_reads_the_count(backend: crate::db::testing::Backend) {
        let db = crate::db::testing::database(backend).await;
        let (ann, bob) = (
            Principal::new("ann", "Ann", Role::Author),
            Principal::new("bob", "Bob", Role::Admin),
        );
        let key = format!("shared-{}", backend as u8);
        let tracked = track(&ann, &key).unwrap().shared(&db);
        tracked.progress().expect(10);
        tracked.progress().advance(4);
        // Another replica has no count in memory: it reads what this one writes.
        let written_soon = |want: Option<ImpactSoFar>| {
            let (db, ann, key) = (&db, &ann, &key);
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                loop {
                    let seen = read_written(db, ann, key, now_ms()).await.unwrap();
                    if seen == want {
                        return;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{seen:?}, not {want:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        written_soon(Some(ImpactSoFar { done: 4, total: 10 })).await;
        assert_eq!(read_written(&db, &bob, &key, now_ms()).await.unwrap(), None);
        // The writer keeps it current.
        tracked.progress().advance(5);
        written_soon(Some(ImpactSoFar { done: 9, total: 10 })).await;
        // A count its replica stopped writing is not believed for long.
        let later = now_ms() + BELIEVED_FOR_MS + 1_000;
        assert_eq!(read_written(&db, &ann, &key, later).await.unwrap(), None);
        // Once the impact answered, it is forgotten.
        drop(tracked);
        written_soon(None).await;
        // A bad key is refused before anything is read.
        let err = read_anywhere(&db, &ann, "a b", now_ms()).await.unwrap_err();
        assert!(err.to_string().contains("progress"), "{err}");
    }

    crate::db::testing::on_both_backends!(
        another_replica_reads_the_count:
            sqlite_another_replica_reads_the_count,
            postgres_another_replica_reads_the_count
    );

    #[test]
    fn a_key_is_short_and_plain() {
        let ann = Principal::new("ann", "Ann", Role::Author);
        for bad in ["", "a b", "a/b", &"k".repeat(KEY_LIMIT + 1)] {
            let err = track(&ann, bad).unwrap_err();
            assert!(err.to_string().contains("progress"), "{bad}: {err}");
        }
        assert!(track(&ann, &"k".repeat(KEY_LIMIT)).is_ok());
    }
}
