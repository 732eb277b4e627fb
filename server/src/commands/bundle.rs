//! The policies the offline commands evaluate (`palisade check`, `palisade impact`), read from
//! their `--policy`, `--pss` and `--library` flags.

use palisade_engine::bundle::Bundle;
use palisade_engine::pss::LevelVersion;
use palisade_engine::vap::types::ValidationAction;
use palisade_engine::{library, Mode};

use super::inputs::read_inputs;

/// The policies a command is given: files of policies (`--policy`), Pod Security levels (`--pss`)
/// and built-in library entries (`--library`), in one bundle. Every problem is returned, each
/// naming its file or flag; a policy without a binding is bound to everything with `[Deny]`.
pub fn load(
    policies: &[String],
    pod_security: &[String],
    library: &[String],
) -> Result<Bundle, Vec<String>> {
    let mut bundle = Bundle::default();
    let mut errors = Vec::new();
    let policy_inputs = read_inputs(policies).map_err(|err| vec![err.to_string()])?;
    if let Err(found) = bundle.add_sources(
        policy_inputs
            .iter()
            .map(|i| (i.name.as_str(), i.text.as_str())),
    ) {
        errors.extend(found.into_iter().map(|e| e.to_string()));
    }
    for level in pod_security {
        match level.parse::<LevelVersion>() {
            Ok(level) => bundle.add_pod_security(level, Mode::Enforce),
            Err(err) => errors.push(format!("--pss {level}: {err}")),
        }
    }
    let entries = library::entries().map_err(|err| vec![err.to_string()])?;
    for wanted in library {
        let chosen: Vec<_> = if wanted == "all" {
            entries.iter().collect()
        } else {
            entries.iter().filter(|e| e.id == wanted.as_str()).collect()
        };
        if chosen.is_empty() {
            let known: Vec<_> = library::ids().collect();
            errors.push(format!(
                "--library {wanted}: no such library entry (known: all, {})",
                known.join(", ")
            ));
        }
        for entry in chosen {
            if let Err(found) = bundle.add_library_entry(entry) {
                errors.extend(found.into_iter().map(|e| e.to_string()));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for warning in bundle.warnings() {
        eprintln!("palisade: warning: {warning}");
    }
    let unbound = bundle.unbound_policies();
    if !unbound.is_empty() {
        eprintln!(
            "palisade: note: no binding for {}; checking as if bound to everything with validationActions [Deny]",
            unbound.join(", ")
        );
        bundle.bind_unbound(&[ValidationAction::Deny]);
    }
    if bundle.is_empty() {
        return Err(vec![
            "nothing to check against: give --policy FILE, --pss LEVEL[:VERSION] or --library ID"
                .into(),
        ]);
    }
    Ok(bundle)
}
