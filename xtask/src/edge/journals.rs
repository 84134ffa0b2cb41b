//! The records the tool keeps of what it did, which `status` reads back:
//! the drill log (tracked in git) and the Time Travel journal (beside the
//! backups). The offsite lock journal is `steps::offsite::LOCK_JOURNAL`.

/// The drill log, relative to the project root. Tracked in git.
pub const DRILL_LOG: &str = "docs/restore-drills.md";

/// The journal of Time Travel restores, in the backup directory.
pub const TIME_TRAVEL_JOURNAL: &str = "time-travel.jsonl";
