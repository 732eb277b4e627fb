//! Paging by key, newest first. Each page ends with a cursor, `<ms>:<id>` of its last row, and the
//! next page holds the rows strictly after it in the order `ms DESC, id DESC`. Unlike an offset, a
//! page never repeats or skips a row when new rows arrive between two reads, and reading page 1,000
//! costs what reading page 1 does.

use crate::error::{AppError, ServerResult};

/// Where a page starts: after the row with this time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub ms: i64,
    pub id: String,
}

impl After {
    /// Reads a cursor a previous page gave out; anything else is an error naming `field`.
    pub fn parse(field: &str, text: &str) -> ServerResult<After> {
        let bad = || {
            AppError::Invalid(format!(
                "{field}: {text:?} is not a cursor from a previous page"
            ))
        };
        let (ms, id) = text.split_once(':').ok_or_else(bad)?;
        let ms = ms.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad().into());
        }
        Ok(After {
            ms,
            id: id.to_owned(),
        })
    }

    /// The SQL condition for the rows after the cursor, given the time and id columns and the
    /// numbers of the placeholders bound to [`After::ms`] and [`After::id`].
    pub fn condition(ms_column: &str, id_column: &str, ms_param: usize, id_param: usize) -> String {
        format!(
            "({ms_column} < ${ms_param} OR ({ms_column} = ${ms_param} AND {id_column} < ${id_param}))"
        )
    }
}

/// The cursor a page hands out for the row with time `ms` and id `id`.
pub fn cursor(ms: i64, id: &str) -> String {
    format!("{ms}:{id}")
}

/// Trims `rows`, read with a limit of `limit + 1`, to `limit`, and gives the cursor of the next
/// page when there is one.
pub fn next_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (i64, &str),
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|row| {
        let (ms, id) = key(row);
        cursor(ms, id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused_by_name() {
        let after = After::parse("after", &cursor(1_795_000_000_000, "0a1b")).unwrap();
        assert_eq!(
            after,
            After {
                ms: 1_795_000_000_000,
                id: "0a1b".into()
            }
        );
        for bad in [
            "",
            "12",
            "x:0a",
            "12:",
            "12:zz",
            "12:0a;drop",
            "12:a'b",
            &format!("1:{}", "a".repeat(65)),
        ] {
            let err = After::parse("after", bad).unwrap_err().to_string();
            assert!(
                err.contains("after:") && err.contains("not a cursor"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_page_read_one_long_says_where_the_next_starts() {
        let mut rows = vec![(5, "e"), (4, "d"), (3, "c")];
        assert_eq!(next_page(&mut rows, 2, |r| (r.0, r.1)), Some("4:d".into()));
        assert_eq!(rows.len(), 2);
        let mut rows = vec![(5, "e"), (4, "d")];
        assert_eq!(next_page(&mut rows, 2, |r| (r.0, r.1)), None);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            After::condition("v.last_ms", "v.id", 3, 4),
            "(v.last_ms < $3 OR (v.last_ms = $3 AND v.id < $4))"
        );
    }
}
