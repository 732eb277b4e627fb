//! How far the impacts being computed have got, so the browser can say so while it waits: each
//! is kept under the person who asked and a key their browser chose, only while it runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::auth::Principal;
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

/// An impact's progress, kept for [`read`] until this is dropped.
#[derive(Debug)]
pub struct Tracked {
    key: Key,
    progress: Arc<Progress>,
}

impl Tracked {
    pub fn progress(&self) -> &Progress {
        &self.progress
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
    }
}

/// Keep the progress of an impact `who` asked for under `key` (letters, digits and `-`, at most
/// [`KEY_LIMIT`]); a key that is not is refused, naming the field.
pub fn track(who: &Principal, key: &str) -> ServerResult<Tracked> {
    let fits = !key.is_empty()
        && key.len() <= KEY_LIMIT
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !fits {
        return Err(AppError::Invalid(format!(
            "progress: a key is 1 to {KEY_LIMIT} letters, digits or '-'"
        ))
        .into());
    }
    let tracked = Tracked {
        key: (who.user_id.clone(), key.to_owned()),
        progress: Arc::default(),
    };
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(tracked.key.clone(), tracked.progress.clone());
    Ok(tracked)
}

/// [`track`] under the key a request named, if it named one (the `progress` field of the server
/// functions that compute impacts).
pub fn track_asked(who: &Principal, key: Option<String>) -> ServerResult<Option<Tracked>> {
    key.map(|key| track(who, &key)).transpose()
}

/// How far the impact `who` asked for under `key` has got; `None` when none runs (not yet, no
/// more, another person's, or on another replica).
pub fn read(who: &Principal, key: &str) -> Option<ImpactSoFar> {
    RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&(who.user_id.clone(), key.to_owned()))
        .map(|progress| progress.read())
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
