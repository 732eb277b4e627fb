//! A line diff (Myers' O((N+M)·D) algorithm) and the readable form the history page shows: hunks
//! of changed lines with a few lines of context, each line with its old and new line numbers.

use serde::{Deserialize, Serialize};

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct FileDiff {
    pub name: String,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<DiffLine>,
}

/// The edit script turning `old` into `new`, as (op, old index, new index) with 0-based indexes;
/// a shortest one (fewest insertions plus deletions).
pub fn edit_script(old: &[&str], new: &[&str]) -> Vec<(DiffOp, usize, usize)> {
    let n = old.len() as isize;
    let m = new.len() as isize;
    let max = n + m;
    // v[k + offset]: the furthest x reached on diagonal k = x - y.
    let offset = max + 1;
    let at = |k: isize| (k + offset) as usize;
    let mut v = vec![0isize; (2 * max + 3) as usize];
    // The state of `v` before each round d, for walking back.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    'search: for d in 0..=max {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
                v[at(k + 1)]
            } else {
                v[at(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && old[x as usize] == new[y as usize] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                break 'search;
            }
            k += 2;
        }
    }
    let mut script = Vec::new();
    let (mut x, mut y) = (n, m);
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        let k = x - y;
        let prev_k = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[at(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            script.push((DiffOp::Same, x as usize, y as usize));
        }
        if d > 0 {
            if x == prev_x {
                script.push((DiffOp::Added, x as usize, prev_y as usize));
            } else {
                script.push((DiffOp::Removed, prev_x as usize, y as usize));
            }
            x = prev_x;
            y = prev_y;
        }
    }
    script.reverse();
    script
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
        let mut edits = 0;
        for (op, x, y) in &script {
            match op {
                DiffOp::Same => {
                    assert_eq!(old[*x], new[*y]);
                    out.push(old[*x]);
                }
                DiffOp::Added => {
                    out.push(new[*y]);
                    edits += 1;
                }
                DiffOp::Removed | DiffOp::Skipped => edits += 1,
            }
        }
        assert_eq!(out, new, "script {script:?}");
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

    #[test]
    fn pseudo_random_texts_diff_minimally() {
        // A small linear congruential generator: deterministic, no dependency.
        let mut seed: u64 = 42;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let words = ["a", "b", "c", "d", "e"];
        for _ in 0..200 {
            let old: Vec<&str> = (0..next() % 12).map(|_| words[next() % 5]).collect();
            let new: Vec<&str> = (0..next() % 12).map(|_| words[next() % 5]).collect();
            let edits = replay(&old, &new);
            assert_eq!(edits, old.len() + new.len() - 2 * lcs(&old, &new));
        }
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
