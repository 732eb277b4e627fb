//! Choosing a policy in another domain's form (a rollout, an exception): every policy by name,
//! loaded once; with none yet, a pointer to creating one instead of an empty list.

use super::*;
use crate::ui::Select;

#[component]
pub fn PolicyPicker(
    /// The chosen policy's id ("" until one is chosen).
    value: RwSignal<String>,
    testid: &'static str,
    /// What the policy is chosen for, ending the "No policies yet" sentence ("to roll it out").
    purpose: &'static str,
) -> impl IntoView {
    let policies = Resource::new(|| (), |_| list_policies(PolicyFilter::default()));
    view! {
        <Transition fallback=|| view! { <Loading text="Loading policies…" /> }>
            {move || Suspend::new(async move {
                match policies.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted" data-testid="no-policies">
                            "No policies yet: "<a href="/policies/new">"create one"</a>" "{purpose}"."
                        </p>
                    }.into_any(),
                    Ok(list) => view! {
                        <Select
                            label="Policy"
                            name="policy"
                            testid=testid
                            value=value
                            placeholder="Choose a policy"
                            options=list.into_iter().map(|p| (p.id, p.name)).collect()
                        />
                    }.into_any(),
                    Err(err) => load_error(err),
                }
            })}
        </Transition>
    }
}
