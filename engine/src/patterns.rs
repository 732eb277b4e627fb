//! Regular expressions written in policies, compiled once per pattern.
//!
//! Three engines match user-written patterns against every object they judge: CEL (`matches`,
//! Kubernetes' regex library, `format`), Rego (`re_match`) and Kyverno's JMESPath (`regex_match`,
//! `regex_replace_all`). Each has a [`Patterns`] of its own: the size its compiled patterns may
//! reach (the budget of one pattern, which bounds both compile time and match time) and a cache
//! bounded by bytes, so a policy evaluated over many objects compiles each pattern once.
//!
//! The compiled regex is handed out behind an `Arc`: a cloned `regex::Regex` starts with an empty
//! pool of match scratch space and allocates it again on its next match, a shared one reuses it.

use std::sync::{Arc, LazyLock};

use regex::{Regex, RegexBuilder};

use crate::cel::cache::Bounded;

/// The compiled patterns of one engine, and the size each may reach.
pub struct Patterns {
    size_limit: usize,
    cache: LazyLock<Bounded<Arc<Regex>>>,
}

/// CEL keeps the regex crate's own limit on a compiled pattern (10 MiB), as cel-go keeps RE2's.
pub static CEL: Patterns = Patterns::new(10 << 20);

/// Rego's `re_match`: the limit regorus puts on `regex.match` and the other `regex.*` builtins
/// (100 KiB), so the old name and the new refuse the same patterns.
pub static REGO: Patterns = Patterns::new(100 << 10);

/// Kyverno's JMESPath functions.
pub static KYVERNO: Patterns = Patterns::new(1 << 20);

/// The bytes a cached pattern is charged: 256 per byte of pattern plus 4 KiB. Each cache holds at
/// most 64 MiB by this estimate.
fn weigh(pattern: &str) -> usize {
    pattern.len() * 256 + 4096
}

fn new_cache() -> Bounded<Arc<Regex>> {
    Bounded::new(64 << 20, weigh)
}

impl Patterns {
    const fn new(size_limit: usize) -> Patterns {
        Patterns {
            size_limit,
            cache: LazyLock::new(new_cache),
        }
    }

    /// The most bytes one compiled pattern may take.
    pub fn size_limit(&self) -> usize {
        self.size_limit
    }

    /// `pattern`, compiled, from the cache when it was compiled before.
    ///
    /// # Errors
    ///
    /// The compile error of an invalid pattern, or `CompiledTooBig` for one over
    /// [`Patterns::size_limit`] (neither is cached: they are rare and cheap to refuse again).
    pub fn compiled(&self, pattern: &str) -> Result<Arc<Regex>, regex::Error> {
        if let Some(re) = self.cache.get(pattern) {
            return Ok(re);
        }
        let re = Arc::new(
            RegexBuilder::new(pattern)
                .size_limit(self.size_limit)
                .build()?,
        );
        self.cache.insert(pattern, Arc::clone(&re));
        Ok(re)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_once_per_engine() {
        let a = REGO.compiled("^x+$").unwrap();
        let b = REGO.compiled("^x+$").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = KYVERNO.compiled("^x+$").unwrap();
        assert!(!Arc::ptr_eq(&a, &other), "each engine has its own cache");
        assert!(a.is_match("xx") && !a.is_match("xy"));
    }

    #[test]
    fn each_engine_has_its_own_size_limit() {
        // Unicode word classes compile large: ten of them pass 100 KiB, not 10 MiB.
        let big = r"\w{10}";
        assert!(matches!(
            REGO.compiled(big),
            Err(regex::Error::CompiledTooBig(limit)) if limit == REGO.size_limit()
        ));
        assert!(CEL.compiled(big).is_ok());
        assert!(matches!(REGO.compiled("("), Err(regex::Error::Syntax(_))));
    }
}
