//! Watching an impact while the server computes it: the browser names the impact with a key of its
//! own choosing, asks [`impact_progress`](super::impact_progress) every 400 ms while it runs, and
//! shows how far it has got. The policy's Impact tab, the propose form and the approver's review
//! all compute impacts this way.

use leptos::prelude::*;

use super::ImpactSoFar;

/// One place that computes impacts, one at a time: whether one runs, the key it runs under and
/// how far it has got. Copied freely (it is signals).
#[derive(Clone, Copy)]
pub struct ImpactWatch {
    busy: RwSignal<bool>,
    key: RwSignal<Option<String>>,
    so_far: RwSignal<Option<ImpactSoFar>>,
}

impl ImpactWatch {
    /// A watch that asks how far a running impact has got until its owner is dropped. Asks only
    /// in the browser; on the server it never runs anything.
    pub fn polling() -> ImpactWatch {
        let watch = ImpactWatch {
            busy: RwSignal::new(false),
            key: RwSignal::new(None),
            so_far: RwSignal::new(None),
        };
        #[cfg(feature = "hydrate")]
        {
            let poll = move || watch.poll();
            if let Ok(handle) =
                set_interval_with_handle(poll, std::time::Duration::from_millis(400))
            {
                on_cleanup(move || handle.clear());
            }
        }
        watch
    }

    /// An impact starts: the key to send with it (none outside the browser).
    pub fn start(&self) -> Option<String> {
        let key = key();
        self.so_far.try_set(None);
        self.key.try_set(key.clone());
        self.busy.try_set(true);
        key
    }

    /// The impact answered (or failed).
    pub fn finish(&self) {
        self.busy.try_set(false);
    }

    /// Whether an impact runs (tracked).
    pub fn busy(&self) -> bool {
        self.busy.get()
    }

    /// Whether an impact runs, read without tracking.
    pub fn busy_untracked(&self) -> bool {
        self.busy.get_untracked()
    }

    /// Ask how far the running impact has got (whichever replica answers: the one computing it
    /// writes its count to the database).
    #[cfg(feature = "hydrate")]
    fn poll(self) {
        if self.busy.try_get_untracked() != Some(true) {
            return;
        }
        let Some(Some(asked)) = self.key.try_get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(Some(now)) = super::impact_progress(asked.clone()).await {
                // Only for the impact still running.
                if self.busy.try_get_untracked() == Some(true)
                    && self.key.try_get_untracked().flatten().as_deref() == Some(&asked)
                {
                    self.so_far.try_set(Some(now));
                }
            }
        });
    }
}

/// The line that says how far the watched impact has got, while it runs.
#[component]
pub fn ImpactProgress(watch: ImpactWatch, testid: &'static str) -> impl IntoView {
    move || {
        watch.busy().then(|| match watch.so_far.get() {
            Some(ImpactSoFar { done, total }) if total > 0 => view! {
                <p class="muted" role="status" data-testid=testid>
                    <progress max=total.to_string() value=done.to_string()></progress>
                    {format!(" Evaluated {done} of {total} inventoried objects…")}
                </p>
            }
            .into_any(),
            _ => view! {
                <p class="muted" role="status" data-testid=testid>
                    <progress></progress>
                    " Reading the inventories…"
                </p>
            }
            .into_any(),
        })
    }
}

/// A key for the next impact's progress, unique among this person's browser tabs; none outside
/// the browser (impacts are asked for only there).
fn key() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        // 52 random bits: two tabs of one person do not meet.
        let bits = (web_sys::js_sys::Math::random() * 4_503_599_627_370_496.0) as u64;
        Some(format!("{bits:x}"))
    }
    #[cfg(not(feature = "hydrate"))]
    None
}
