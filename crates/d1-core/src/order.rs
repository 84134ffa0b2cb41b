//! Which of a database's backups is the newer: the one order that
//! `latest`, `status`, prune's retention and the offsite index share.
//!
//! Backups are ordered by date (`created_at`), newest first, but for one
//! thing a date cannot say. A backup dated after the clock of the machine
//! that takes another (that clock set back, or the first one's ran fast)
//! was there before it; once the clocks pass that date, the dates alone
//! would make the earlier backup the newer one again. So a backup taken
//! while others were dated after it records them (its manifest's
//! `taken_after`, by file name and sha256), and ranks above each of them.
//!
//! A record counts only for a backup of the same environment and database
//! whose file name and sha256 are those recorded, and that is dated after
//! the backup recording it (as the recording machine saw it, or there was
//! nothing to record). Anything else (a name no backup here has, another
//! file under that name, a record of an earlier-dated backup) is passed
//! over: a record never makes a backup rank above one dated before it, so
//! records cannot form a cycle (`A` records `B` and `B` records `A`: at
//! most the earlier-dated one's record counts, and with equal dates
//! neither does). Each backup is placed once and each record read once,
//! however many a manifest holds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use crate::manifest::{Manifest, TakenAfter};

/// A backup as the order sees it.
#[derive(Debug, Clone, Copy)]
pub struct Dated<'a> {
    pub created_at: DateTime<Utc>,
    /// Its file's name, and the sha256 its manifest records for it.
    pub file: &'a str,
    pub sha256: &'a str,
    /// The environment and database it is a backup of.
    pub of: (&'a str, &'a str),
    /// The backups dated after it that were there when it was taken.
    pub taken_after: &'a [TakenAfter],
}

impl<'a> Dated<'a> {
    pub fn of_manifest(m: &'a Manifest) -> Dated<'a> {
        Dated {
            created_at: m.created_at,
            file: &m.file.name,
            sha256: &m.file.sha256,
            of: (&m.environment, &m.database.name),
            taken_after: &m.taken_after,
        }
    }
}

/// The positions of `backups`, newest first: by date (then by file name,
/// the later first, then by position), except that a backup is placed
/// after every backup that records it and counts (see the module's
/// documentation).
pub fn newest_first(backups: &[Dated<'_>]) -> Vec<usize> {
    let mut by_file: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, b) in backups.iter().enumerate() {
        by_file.entry(b.file).or_default().push(i);
    }
    // For each backup, the backups it ranks above; for each, how many of
    // the backups that rank above it are not yet placed.
    let mut below: Vec<Vec<usize>> = vec![Vec::new(); backups.len()];
    let mut above = vec![0usize; backups.len()];
    for (y, b) in backups.iter().enumerate() {
        let counted = { b.taken_after.iter() }
            .flat_map(|t| {
                { by_file.get(t.file.as_str()).into_iter().flatten() }.map(move |&x| (x, t))
            })
            .filter(|&(x, t)| {
                let x = &backups[x];
                x.sha256 == t.sha256 && x.of == b.of && x.created_at > b.created_at
            })
            .map(|(x, _)| x);
        below[y].extend(counted);
        below[y].sort_unstable();
        below[y].dedup();
        for &x in &below[y] {
            above[x] += 1;
        }
    }
    let key = |i: usize| (backups[i].created_at, backups[i].file, Reverse(i));
    let mut ready: BinaryHeap<_> = { (0..backups.len()).filter(|&i| above[i] == 0) }
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(backups.len());
    while let Some((_, _, Reverse(y))) = ready.pop() {
        order.push(y);
        for &x in &below[y] {
            above[x] -= 1;
            if above[x] == 0 {
                ready.push(key(x));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn taken_after(records: &[(&str, &str)]) -> Vec<TakenAfter> {
        { records.iter() }
            .map(|(file, sha256)| TakenAfter {
                file: (*file).to_owned(),
                sha256: (*sha256).to_owned(),
            })
            .collect()
    }

    fn dated<'a>(
        file: &'a str,
        when: &str,
        sha256: &'a str,
        records: &'a [TakenAfter],
    ) -> Dated<'a> {
        Dated {
            created_at: at(when),
            file,
            sha256,
            of: ("prod", "qbtime_db_prod"),
            taken_after: records,
        }
    }

    fn names(backups: &[Dated<'_>]) -> Vec<&'static str> {
        let files = ["a", "b", "c", "d"];
        { newest_first(backups).into_iter() }
            .map(|i| files.iter().find(|f| **f == backups[i].file).unwrap())
            .copied()
            .collect()
    }

    /// fxDY: `a` was taken by a clock 40 minutes fast; `b` after the clock
    /// was set right, recording it. Once the clock passes `a`'s date, `b`
    /// is still the newer; `c`, taken later still, is newer than both.
    #[test]
    fn a_backup_ranks_above_the_backup_dated_ahead_it_was_taken_after() {
        let none = taken_after(&[]);
        let b_records = taken_after(&[("a", "sha-a")]);
        let a = dated("a", "2026-11-24T12:40:00Z", "sha-a", &none);
        let b = dated("b", "2026-11-24T12:00:00Z", "sha-b", &b_records);
        let c = dated("c", "2026-11-24T12:50:00Z", "sha-c", &none);
        assert_eq!(names(&[a, b]), ["b", "a"]);
        assert_eq!(names(&[a, b, c]), ["c", "b", "a"]);
        // Another backup dated between them keeps its place by date: only
        // the backup recorded moves.
        let d = dated("d", "2026-11-24T12:30:00Z", "sha-d", &none);
        assert_eq!(names(&[a, b, d]), ["d", "b", "a"]);
    }

    /// A record of another file under that name (a sha256 that is not its
    /// manifest's), of a name no backup has, of another database's backup,
    /// or of a backup dated before the one recording it is passed over.
    #[test]
    fn a_record_that_does_not_check_out_changes_nothing() {
        let none = taken_after(&[]);
        let wrong = [
            taken_after(&[("a", "sha-other")]),
            taken_after(&[("nowhere", "sha-a")]),
            taken_after(&[("c", "sha-c")]),
        ];
        let a = dated("a", "2026-11-24T12:40:00Z", "sha-a", &none);
        let c = dated("c", "2026-11-24T11:00:00Z", "sha-c", &none);
        for records in &wrong {
            let b = dated("b", "2026-11-24T12:00:00Z", "sha-b", records);
            assert_eq!(names(&[a, b, c]), ["a", "b", "c"], "{records:?}");
        }
        let b_records = taken_after(&[("a", "sha-a")]);
        let b = dated("b", "2026-11-24T12:00:00Z", "sha-b", &b_records);
        let staging = Dated {
            of: ("prod", "qbtime_db_staging"),
            ..a
        };
        assert_eq!(names(&[staging, b]), ["a", "b"]);
    }

    /// `a` records `b` and `b` records `a`: only the earlier-dated one's
    /// record counts, so `a` ranks above `b`, whichever comes first; with
    /// equal dates neither counts, and the order is by name. Nothing
    /// loops.
    #[test]
    fn records_of_each_other_never_loop() {
        let a_records = taken_after(&[("b", "sha-b")]);
        let b_records = taken_after(&[("a", "sha-a")]);
        let a = dated("a", "2026-11-24T12:00:00Z", "sha-a", &a_records);
        let b = dated("b", "2026-11-24T12:40:00Z", "sha-b", &b_records);
        assert_eq!(names(&[a, b]), ["a", "b"]);
        assert_eq!(names(&[b, a]), ["a", "b"]);
        let b = dated("b", "2026-11-24T12:00:00Z", "sha-b", &b_records);
        assert_eq!(names(&[a, b]), ["b", "a"]);
    }

    /// A manifest may record any number of backups, each counted once:
    /// a hundred thousand records of one backup, and as many of names no
    /// backup has, place every backup once.
    #[test]
    fn many_records_place_each_backup_once() {
        let none = taken_after(&[]);
        let mut records: Vec<(String, &str)> = (0..100_000)
            .map(|i| (format!("backup-prod-20261124-1240-{i}.sql"), "sha-a"))
            .collect();
        records.extend((0..100_000).map(|_| ("a".to_owned(), "sha-a")));
        let records: Vec<(&str, &str)> = records.iter().map(|(f, s)| (f.as_str(), *s)).collect();
        let b_records = taken_after(&records);
        let a = dated("a", "2026-11-24T12:40:00Z", "sha-a", &none);
        let b = dated("b", "2026-11-24T12:00:00Z", "sha-b", &b_records);
        assert_eq!(names(&[a, b, a]), ["b", "a", "a"]);
    }
}
