//! A line diff (Myers' O((N+M)·D) algorithm, in linear space) and the readable form the history page shows: hunks
//! of changed lines with a few lines of context, each line with its old and new line numbers.

use serde::{Deserialize, Serialize};

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DiffOp {
    Same,
    Removed,
    Added,
    /// Unchanged lines left out between two hunks (`text` says how many).
    Skipped,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct DiffLine {
    pub op: DiffOp,
    /// 1-based line number in the old text (`None` for added and skipped lines).
    pub old: Option<usize>,
    /// 1-based line number in the new text (`None` for removed and skipped lines).
    pub new: Option<usize>,
    pub text: String,
}

/// The diff of one part of a version (the policy source, its parameters, its tests …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FileDiff {
    pub name: String,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<DiffLine>,
}

/// How far one search for a middle snake may look (edits on each side of it) before the range is
/// shown as removed and re-added instead: the diff stays correct, only no longer the shortest,
/// and two very different texts cost time proportional to their size, not to its square.
const MAX_SEARCH: usize = 2_000;

/// The edit script turning `old` into `new`, as (op, old index, new index) with 0-based indexes;
/// a shortest one (fewest insertions plus deletions) unless the texts differ beyond
/// [`MAX_SEARCH`]. Myers' divide and conquer: memory linear in the texts' length.
pub fn edit_script(old: &[&str], new: &[&str]) -> Vec<(DiffOp, usize, usize)> {
    let mut script = Vec::with_capacity(old.len().max(new.len()));
    let size = 2 * MAX_SEARCH.min(old.len() + new.len()) + 3;
    let mut forward = vec![0usize; size];
    let mut backward = vec![0usize; size];
    conquer(
        old,
        0..old.len(),
        new,
        0..new.len(),
        &mut forward,
        &mut backward,
        &mut script,
    );
    script
}

/// The edits of `old[a]` into `new[b]`, appended to `script`.
fn conquer(
    old: &[&str],
    mut a: std::ops::Range<usize>,
    new: &[&str],
    mut b: std::ops::Range<usize>,
    forward: &mut [usize],
    backward: &mut [usize],
    script: &mut Vec<(DiffOp, usize, usize)>,
) {
    while a.start < a.end && b.start < b.end && old[a.start] == new[b.start] {
        script.push((DiffOp::Same, a.start, b.start));
        a.start += 1;
        b.start += 1;
    }
    let mut suffix = 0;
    while a.start < a.end && b.start < b.end && old[a.end - 1] == new[b.end - 1] {
        a.end -= 1;
        b.end -= 1;
        suffix += 1;
    }
    if a.is_empty() {
        script.extend(b.clone().map(|y| (DiffOp::Added, a.start, y)));
    } else if b.is_empty() {
        script.extend(a.clone().map(|x| (DiffOp::Removed, x, b.start)));
    } else if let Some((x, y)) = middle_snake(old, a.clone(), new, b.clone(), forward, backward) {
        conquer(old, a.start..x, new, b.start..y, forward, backward, script);
        conquer(old, x..a.end, new, y..b.end, forward, backward, script);
    } else {
        script.extend(a.clone().map(|x| (DiffOp::Removed, x, b.start)));
        script.extend(b.clone().map(|y| (DiffOp::Added, a.end, y)));
    }
    script.extend((0..suffix).map(|i| (DiffOp::Same, a.end + i, b.end + i)));
}

/// Where a shortest edit path of `old[a]` into `new[b]` crosses its middle: the point (in whole-
/// text indexes) that splits the problem in two, found by searching from both ends at once. `None`
/// when the two ends do not meet within [`MAX_SEARCH`] edits each. Both ranges are non-empty and
/// differ in their first and last lines.
fn middle_snake(
    old: &[&str],
    a: std::ops::Range<usize>,
    new: &[&str],
    b: std::ops::Range<usize>,
    forward: &mut [usize],
    backward: &mut [usize],
) -> Option<(usize, usize)> {
    let n = a.len() as isize;
    let m = b.len() as isize;
    let delta = n - m;
    let odd = delta & 1 == 1;
    let d_max = ((n + m + 1) / 2).min(MAX_SEARCH as isize - 1);
    // Diagonal k (x - y) of either search lives at k + offset.
    let offset = d_max + 1;
    let at = |k: isize| (k + offset) as usize;
    let same = |x: isize, y: isize| old[a.start + x as usize] == new[b.start + y as usize];
    forward[at(1)] = 0;
    backward[at(1)] = 0;
    for d in 0..=d_max {
        // Forward: the furthest x on each diagonal after d edits from the start.
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && forward[at(k - 1)] < forward[at(k + 1)]) {
                forward[at(k + 1)] as isize
            } else {
                forward[at(k - 1)] as isize + 1
            };
            let mut y = x - k;
            let (x0, y0) = (x, y);
            while x < n && y < m && same(x, y) {
                x += 1;
                y += 1;
            }
            forward[at(k)] = x as usize;
            // The backward search's diagonal -(k - delta) counts x from the end.
            let back = -(k - delta);
            if odd && back.abs() < d && x + backward[at(back)] as isize >= n {
                return Some((a.start + x0 as usize, b.start + y0 as usize));
            }
            k += 2;
        }
        // Backward: the same from the ends, x counted from the end of each range.
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && backward[at(k - 1)] < backward[at(k + 1)]) {
                backward[at(k + 1)] as isize
            } else {
                backward[at(k - 1)] as isize + 1
            };
            let mut y = x - k;
            while x < n && y < m && same(n - x - 1, m - y - 1) {
                x += 1;
                y += 1;
            }
            backward[at(k)] = x as usize;
            let ahead = -(k - delta);
            if !odd && ahead.abs() <= d && x + forward[at(ahead)] as isize >= n {
                return Some((a.start + (n - x) as usize, b.start + (m - y) as usize));
            }
            k += 2;
        }
    }
    None
}

/// The readable diff of two texts: changed lines with `context` unchanged lines around them;
/// longer unchanged stretches become one `Skipped` line.
pub fn diff_lines(name: &str, old: &str, new: &str, context: usize) -> FileDiff {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let script = edit_script(&old_lines, &new_lines);
    let changed: Vec<bool> = script
        .iter()
        .map(|(op, _, _)| *op != DiffOp::Same)
        .collect();
    // A same line is kept when a change is within `context` lines of it.
    let mut keep = vec![false; script.len()];
    for (index, is_change) in changed.iter().enumerate() {
        if *is_change {
            let start = index.saturating_sub(context);
            let end = (index + context + 1).min(script.len());
            for flag in &mut keep[start..end] {
                *flag = true;
            }
        }
    }
    let mut lines = Vec::new();
    let mut skipped = 0;
    let (mut added, mut removed) = (0, 0);
    for (index, (op, x, y)) in script.iter().enumerate() {
        if !keep[index] {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            lines.push(skipped_line(skipped));
            skipped = 0;
        }
        let line = match op {
            DiffOp::Same => DiffLine {
                op: DiffOp::Same,
                old: Some(x + 1),
                new: Some(y + 1),
                text: old_lines[*x].to_owned(),
            },
            DiffOp::Removed => {
                removed += 1;
                DiffLine {
                    op: DiffOp::Removed,
                    old: Some(x + 1),
                    new: None,
                    text: old_lines[*x].to_owned(),
                }
            }
            DiffOp::Added | DiffOp::Skipped => {
                added += 1;
                DiffLine {
                    op: DiffOp::Added,
                    old: None,
                    new: Some(y + 1),
                    text: new_lines[*y].to_owned(),
                }
            }
        };
        lines.push(line);
    }
    if skipped > 0 && !lines.is_empty() {
        lines.push(skipped_line(skipped));
    }
    FileDiff {
        name: name.to_owned(),
        added,
        removed,
        lines,
    }
}

fn skipped_line(count: usize) -> DiffLine {
    DiffLine {
        op: DiffOp::Skipped,
        old: None,
        new: None,
        text: format!(
            "{count} unchanged line{}",
            if count == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply an edit script to `old` and check it yields `new`, and that every Same is equal.
    fn replay(old: &[&str], new: &[&str]) -> usize {
        let script = edit_script(old, new);
        let mut out = Vec::new();
        let mut consumed = Vec::new();
        let mut edits = 0;
        for (op, x, y) in &script {
            match op {
                DiffOp::Same => {
                    assert_eq!(old[*x], new[*y]);
                    out.push(old[*x]);
                    consumed.push(*x);
                }
                DiffOp::Added => {
                    out.push(new[*y]);
                    edits += 1;
                }
                DiffOp::Removed | DiffOp::Skipped => {
                    consumed.push(*x);
                    edits += 1;
                }
            }
        }
        assert_eq!(out, new, "script {script:?}");
        // Every old line is kept or removed, once, in order.
        assert!(
            consumed.iter().copied().eq(0..old.len()),
            "script {script:?}"
        );
        edits
    }

    /// The length of a longest common subsequence, by dynamic programming, to check minimality.
    fn lcs(a: &[&str], b: &[&str]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                table[i][j] = if a[i] == b[j] {
                    table[i + 1][j + 1] + 1
                } else {
                    table[i + 1][j].max(table[i][j + 1])
                };
            }
        }
        table[0][0]
    }

    #[test]
    fn scripts_rebuild_the_new_text_with_the_fewest_edits() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("a", ""),
            ("", "a\nb"),
            ("a\nb\nc", "a\nb\nc"),
            ("a\nb\nc\na\nb\nb\na", "c\nb\na\nb\na\nc"),
            ("x\ny\nz", "a\nb\nc"),
            ("a\nb\nc\nd", "a\nc\nd\ne"),
        ];
        for (old, new) in cases {
            let old: Vec<&str> = old.lines().collect();
            let new: Vec<&str> = new.lines().collect();
            let edits = replay(&old, &new);
            assert_eq!(
                edits,
                old.len() + new.len() - 2 * lcs(&old, &new),
                "{old:?} → {new:?}"
            );
        }
    }

    /// A small linear congruential generator: deterministic, no dependency.
    fn numbers(mut seed: u64) -> impl FnMut() -> usize {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        }
    }

    #[test]
    fn pseudo_random_texts_diff_minimally() {
        let mut next = numbers(42);
        let words = ["a", "b", "c", "d", "e"];
        for _ in 0..200 {
            let old: Vec<&str> = (0..next() % 12).map(|_| words[next() % 5]).collect();
            let new: Vec<&str> = (0..next() % 12).map(|_| words[next() % 5]).collect();
            let edits = replay(&old, &new);
            assert_eq!(edits, old.len() + new.len() - 2 * lcs(&old, &new));
        }
    }

    #[test]
    fn longer_random_texts_diff_minimally() {
        let mut next = numbers(7);
        let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for round in 0..300 {
            let alphabet = 2 + round % 7;
            let old: Vec<&str> = (0..next() % 60).map(|_| words[next() % alphabet]).collect();
            let mut new = old.clone();
            for _ in 0..next() % 8 {
                let at = if new.is_empty() {
                    0
                } else {
                    next() % new.len()
                };
                match next() % 3 {
                    0 if !new.is_empty() => {
                        new.remove(at);
                    }
                    1 => new.insert(at, words[next() % alphabet]),
                    _ if !new.is_empty() => new[at] = words[next() % alphabet],
                    _ => {}
                }
            }
            let edits = replay(&old, &new);
            assert_eq!(
                edits,
                old.len() + new.len() - 2 * lcs(&old, &new),
                "{old:?} → {new:?}"
            );
        }
    }

    #[test]
    fn texts_too_different_to_search_still_diff_correctly() {
        // 150,000 lines that all differ: past the search limit, shown as removed and re-added,
        // with memory linear in the texts (the old algorithm kept a copy per edit).
        let old: Vec<String> = (0..150_000).map(|i| format!("old {i}")).collect();
        let new: Vec<String> = (0..150_000).map(|i| format!("new {i}")).collect();
        let old: Vec<&str> = old.iter().map(String::as_str).collect();
        let new: Vec<&str> = new.iter().map(String::as_str).collect();
        assert_eq!(replay(&old, &new), 300_000);
    }

    #[test]
    fn readable_diffs_number_lines_and_fold_unchanged_stretches() {
        let old = (1..=20)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let new = old.replace("line 10", "line ten") + "\nline 21";
        let diff = diff_lines("policy.yaml", &old, &new, 2);
        assert_eq!((diff.added, diff.removed), (2, 1));
        let shown: Vec<(DiffOp, Option<usize>, Option<usize>, &str)> = diff
            .lines
            .iter()
            .map(|l| (l.op, l.old, l.new, l.text.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (DiffOp::Skipped, None, None, "7 unchanged lines"),
                (DiffOp::Same, Some(8), Some(8), "line 8"),
                (DiffOp::Same, Some(9), Some(9), "line 9"),
                (DiffOp::Removed, Some(10), None, "line 10"),
                (DiffOp::Added, None, Some(10), "line ten"),
                (DiffOp::Same, Some(11), Some(11), "line 11"),
                (DiffOp::Same, Some(12), Some(12), "line 12"),
                (DiffOp::Skipped, None, None, "6 unchanged lines"),
                (DiffOp::Same, Some(19), Some(19), "line 19"),
                (DiffOp::Same, Some(20), Some(20), "line 20"),
                (DiffOp::Added, None, Some(21), "line 21"),
            ]
        );
        let same = diff_lines("x", &old, &old, 3);
        assert!(same.lines.is_empty() && same.added == 0 && same.removed == 0);
    }
}
