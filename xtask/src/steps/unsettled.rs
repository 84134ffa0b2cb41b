//! The Time Travel restores the journal leaves with an unknown outcome, as
//! `status` and `time-travel restore` both tell them: every one since the
//! last that was done, each with the bookmark from before it.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::environment::Environment;

/// A Time Travel restore whose outcome is unknown (its last line
/// `started`: killed; or `interrupted`): when it started, to the second,
/// and the bookmark the database was at before it, in D1's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unsettled {
    pub started_at: String,
    pub bookmark_before: String,
}

/// Every restore of `env`'s database in the journal's lines whose outcome
/// is unknown, with none done since, oldest first: within Time Travel's 30
/// days (older, D1 could not restore to its bookmark) and not dated ahead
/// (no run of this clock wrote it). A later one's bookmark holds the
/// writes made after the earlier ones started; only the first's is the
/// database as it was before them all.
pub fn unsettled_restores<'a>(
    journal: impl IntoIterator<Item = &'a str>,
    env: &Environment,
) -> Vec<Unsettled> {
    let mut found: Vec<(String, String)> = Vec::new();
    let entries =
        { journal.into_iter() }.filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    for entry in entries {
        let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
        let ours = crate::steps::lock::journal_line_is_of(&entry, env);
        let (status, started) = (field("status"), field("started_at"));
        match status.as_str() {
            _ if !ours => {}
            "started" | "interrupted" if !found.iter().any(|(at, _)| *at == started) => {
                let before = field("bookmark_before");
                let within = DateTime::parse_from_rfc3339(&started).is_ok_and(|t| {
                    let age = Utc::now().signed_duration_since(t);
                    age >= -Duration::minutes(5) && age <= Duration::days(30)
                });
                if d1_core::names::is_bookmark(&before) && within {
                    found.push((started, before));
                }
            }
            // Made: what came before is settled.
            "done" => found.clear(),
            // Not made: that run is no longer unknown.
            "failed" => found.retain(|(at, _)| *at != started),
            _ => {}
        }
    }
    { found.into_iter() }
        .filter_map(|(started, before)| {
            let at = DateTime::parse_from_rfc3339(&started).ok()?;
            Some(Unsettled {
                started_at: { at.with_timezone(&Utc) }.to_rfc3339_opts(SecondsFormat::Secs, true),
                bookmark_before: before,
            })
        })
        .collect()
}

/// The ways back from several unfinished restores (`attempts`, in the
/// journal's order), each bookmark named with the time its attempt
/// recorded: the latest's undoes the latest, the first's goes back to
/// before them all and discards every write made since, those between
/// the attempts included, which only the later bookmarks hold. The times
/// are as each run's clock wrote them, so they are said to be in the
/// order recorded, not sorted. Empty for fewer than two (one is told on
/// its own).
pub fn ways_back(attempts: &[Unsettled]) -> String {
    let [first, middle @ .., last] = attempts else {
        return String::new();
    };
    let mut told = format!(
        "in the order the journal recorded them, bookmark {} (from before the latest, started \
         at {}) undoes the latest",
        last.bookmark_before, last.started_at
    );
    for m in middle.iter().rev() {
        told.push_str(&format!(
            "; bookmark {} is from before the one started at {}",
            m.bookmark_before, m.started_at
        ));
    }
    told.push_str(&format!(
        "; bookmark {} (from before all {}, the first started at {}) goes back to before them \
         all, and discards every write made since {} up to now, the writes between the \
         restores included, which exist only in the later bookmarks",
        first.bookmark_before,
        attempts.len(),
        first.started_at,
        first.started_at,
    ));
    told
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rvAJ: the first bookmark was said to discard "the writes made
    /// between" the first and the last attempt; it discards every write
    /// since the first, up to now. And the attempts are in the journal's
    /// order, whose times a skewed clock may have written out of order.
    #[test]
    fn the_first_bookmark_is_said_to_discard_every_write_since_it() {
        let attempt = |at: &str, n: u32| Unsettled {
            started_at: at.to_owned(),
            bookmark_before: format!(
                "0000000{n}-00000000-00000000-0123456789abcdef0123456789abcdef"
            ),
        };
        let told = ways_back(&[
            attempt("2026-12-05T10:00:00Z", 2),
            attempt("2026-12-05T09:00:00Z", 3),
        ]);
        assert!(!told.contains("made between"), "{told}");
        assert!(
            told.contains("every write made since 2026-12-05T10:00:00Z"),
            "{told}"
        );
        assert!(
            told.contains("in the order the journal recorded them"),
            "{told}"
        );
    }
}
