//! The records the tool keeps of what it did, which `status` reads back:
//! the drill log (tracked in git) and the Time Travel journal (beside the
//! backups). The offsite lock journal is `steps::offsite::LOCK_JOURNAL`.

/// The drill log, relative to the project root. Tracked in git.
pub const DRILL_LOG: &str = "docs/restore-drills.md";

/// The journal of Time Travel restores, in the backup directory.
pub const TIME_TRAVEL_JOURNAL: &str = "time-travel.jsonl";

/// The journal of the migrations `migrate` (and every command that applies
/// them) gave wrangler, in the backup directory: a line per run before
/// wrangler runs, with the sha256 of each migration as it was staged
/// (`steps::migrations::Staged::journal`), and one once it knows which it
/// applied (`steps::migrations::journal_end`).
pub const MIGRATIONS_JOURNAL: &str = "migrations-applied.jsonl";
