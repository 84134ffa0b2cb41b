//! The rows a migration changes in tables it never names, through a foreign
//! key's `ON DELETE` or `ON UPDATE` action.
//!
//! D1 enforces foreign keys during a migration, whatever the migration's
//! own `PRAGMA foreign_keys=OFF` says, so a `DROP TABLE` deletes the table's
//! rows first and every action of the keys that reference it runs: Prisma's
//! redefinition of a table (`CREATE TABLE "new_User" …; DROP TABLE "User";
//! ALTER TABLE "new_User" RENAME TO "User"`) sets `Post.authorId` to NULL in
//! every post (`ON DELETE SET NULL`), or deletes them (`CASCADE`). A row
//! count after the migration sees the second, never the first.
//!
//! SQLite codes those actions when it prepares the statement, and tells
//! each write to its authorizer. The pending migrations are prepared in
//! memory, on an empty copy of the target's schema with foreign keys on,
//! one statement at a time, and the writes each statement was coded to
//! make to another table, outside any trigger, are its actions'
//! ([`side_writes`]). Only statements that change the schema run there
//! (rows do not change what a statement is coded to do), all of them
//! within [`TRIAL_SECONDS`] ([`trial_ends`]), the one budget of every
//! in-memory run of the migrations; one that does not prepare or run is
//! told, without its text, and the rest go on.
//!
//! The same authorizer tells a statement that writes, alters, drops or puts
//! a trigger on the migrations table ([`Found::migrations_table`]): wrangler
//! records each migration there itself, so one that writes it makes a
//! later migration never apply, or a restore's plan misread when one was
//! applied.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// One write SQLite coded a statement to make, as its authorizer told it:
/// the statement's own, a trigger's (`inner` names the trigger) or a
/// foreign key's action (`inner` is `None`, the table another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub kind: WriteKind,
    pub table: String,
    /// The column an UPDATE sets.
    pub column: Option<String>,
    /// The innermost trigger or view the write is coded in.
    pub inner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Update,
    Delete,
    DropTable,
}

impl Write {
    fn of(ctx: &AuthContext<'_>) -> Option<Write> {
        let (kind, table, column) = match ctx.action {
            AuthAction::Insert { table_name } => (WriteKind::Insert, table_name, None),
            AuthAction::Update {
                table_name,
                column_name,
            } => (WriteKind::Update, table_name, Some(column_name)),
            AuthAction::Delete { table_name } => (WriteKind::Delete, table_name, None),
            AuthAction::DropTable { table_name } => (WriteKind::DropTable, table_name, None),
            _ => return None,
        };
        Some(Write {
            kind,
            table: table.to_owned(),
            column: column.map(str::to_owned),
            inner: ctx.accessor.map(str::to_owned),
        })
    }
}

/// How long the whole trial of the pending migrations may take, and any
/// other run of the migrations in memory (verify's, to learn the triggers
/// they make): without a bound, N statements that never end held the plan
/// (and the backup lock a migrate holds while it plans) for N times a
/// statement's bound (rvBR 2), and a backup's verification for ever
/// (rvBT 1). On tables without rows a migration's statements take
/// milliseconds unless one queries without end (`CREATE TABLE … AS` a
/// recursive query), which D1 stops after 30 seconds.
pub const TRIAL_SECONDS: u64 = 15;

/// The budget of this process's runs of the migrations in memory, in
/// seconds: [`TRIAL_SECONDS`] unless [`set_trial_seconds`] gave another.
static TRIAL_BUDGET: AtomicU64 = AtomicU64::new(TRIAL_SECONDS);

/// Gives every later run of the migrations in memory in this process
/// `seconds` instead of [`TRIAL_SECONDS`] (the caller's setting, read at
/// its edge).
pub fn set_trial_seconds(seconds: u64) {
    TRIAL_BUDGET.store(seconds, Ordering::Relaxed);
}

/// The budget of a run of the migrations in memory, in seconds.
pub fn trial_seconds() -> u64 {
    TRIAL_BUDGET.load(Ordering::Relaxed)
}

/// When an in-memory run of the migrations that starts now stops: the one
/// budget the plan's trial and every other run are held to.
pub fn trial_ends() -> Instant {
    Instant::now() + Duration::from_secs(trial_seconds())
}

/// What ran out in an in-memory run of the migrations before a statement
/// ended ([`Unfinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The run's [`TRIAL_SECONDS`] ([`trial_ends`]).
    Time,
    /// The [`TRIAL_MEMORY`] a statement may take ([`trial_memory`]).
    Memory,
}

/// What a run of the migrations stopped by `by` at `at` (a migration's
/// statement) means: a statement that cannot end on empty tables makes its
/// rows from nothing, and D1 stops a query after 30 seconds. The plan's
/// refusal and verify's skipped check say it so, for time and memory
/// alike (NL: one stopped by its memory was "does not run here", and the
/// plan went on).
pub fn unfinished_said(at: &str, by: Bound) -> String {
    let ran = match by {
        Bound::Time => format!("ran past its {} seconds", trial_seconds()),
        Bound::Memory => format!(
            "took more memory than it may (at most {} MB)",
            TRIAL_MEMORY >> 20
        ),
    };
    format!(
        "running the migrations in memory, on empty tables, {ran} at {at}, so what it and the \
         statements after it do is not known. A statement that runs that long or takes that \
         much on empty tables makes its rows from nothing (a recursive query), and D1 stops a \
         query after 30 seconds: bound it (`WHERE x < 1000`), or make its rows in smaller steps"
    )
}

/// An in-memory run of the migrations stopped by [`trial_ends`] or
/// [`trial_memory`] at a migration's statement, `at`
/// ([`unfinished_said`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub at: String,
    pub by: Bound,
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&unfinished_said(&self.at, self.by))
    }
}

impl std::error::Error for Unfinished {}

/// How much more memory than the process held a statement of an in-memory
/// run of the migrations may take there: rows a schema statement makes
/// (`CREATE TABLE … AS` a query) live in memory.
pub const TRIAL_MEMORY: u64 = 256 << 20;

/// The memory an in-memory run of the migrations that starts now may take
/// the process to ([`TRIAL_MEMORY`] more); `None` when it cannot be told.
pub fn trial_memory() -> Option<crate::room::MemoryCeiling> {
    crate::room::MemoryCeiling::above_own_peak(TRIAL_MEMORY)
}

/// What stopped a statement of a run held to `ends` and `ceiling` that
/// failed: either bound, or neither (it failed of its own).
pub fn stopped_by(ends: Instant, ceiling: Option<crate::room::MemoryCeiling>) -> Option<Bound> {
    if Instant::now() >= ends {
        Some(Bound::Time)
    } else if ceiling.is_some_and(|c| c.passed()) {
        Some(Bound::Memory)
    } else {
        None
    }
}

/// A statement of a migration whose foreign key actions change another
/// table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideWrite {
    pub migration: String,
    /// What the statement is: `DROP TABLE`, `DELETE from`, `UPDATE of` or
    /// `INSERT into` (one that replaces a row).
    pub statement: &'static str,
    /// The table the statement names.
    pub target: String,
    /// The table an action changes.
    pub table: String,
    /// The action deletes rows of `table`.
    pub deletes: bool,
    /// The columns of `table` an action sets (`SET NULL`, `SET DEFAULT`,
    /// `ON UPDATE CASCADE`).
    pub sets: Vec<String>,
}

impl SideWrite {
    /// What the plan says of it, with names only (never a value).
    pub fn describe(&self) -> String {
        let table = crate::names::shown_name(&self.table);
        let mut does = Vec::new();
        if self.deletes {
            does.push(format!("deletes rows of {table}"));
        }
        if !self.sets.is_empty() {
            let columns: Vec<String> = self
                .sets
                .iter()
                .map(|c| format!("{table}.{}", crate::names::shown_name(c)))
                .collect();
            does.push(format!("sets {}", columns.join(", ")));
        }
        format!(
            "{}: {} {} also {} through a foreign key's action",
            crate::names::shown(&self.migration),
            self.statement,
            crate::names::shown(&self.target),
            does.join(" and ")
        )
    }
}

/// What [`side_writes`] found: the side writes, and each statement whose
/// own could not be known (it does not prepare, or run, here), said with
/// its migration, its number and SQLite's reason, never its text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub side_writes: Vec<SideWrite>,
    pub unknown: Vec<String>,
    /// The first of `unknown`, when it is known to fail in D1 too
    /// ([`fails_in_d1`]): every statement before it prepared (and, if it
    /// changes the schema, ran), on a copy that holds every object of the
    /// target's schema, and it names a table, column, index, trigger or
    /// view that is not there, or makes one that is.
    pub fails: Option<String>,
    /// The first statement that calls a function D1 does not allow
    /// ([`crate::gate::D1_FUNCTIONS`]), with its migration and number and
    /// the function: D1 refuses it whatever the schema (rvCI 2: `if()`
    /// passed the plan, and wrangler failed it after the backup).
    pub d1_refuses: Option<String>,
    /// The first statement that writes, alters, drops or puts a trigger on
    /// the migrations table, said with its migration, its number and what
    /// it does to the table ([`touches_migrations_table`]).
    pub migrations_table: Option<String>,
    /// The statement the trial had reached when its [`TRIAL_SECONDS`] ran
    /// out, or that took more than its [`TRIAL_MEMORY`], with its
    /// migration: what it and the rest do is not known.
    pub unfinished: Option<Unfinished>,
    /// The first trigger a pending statement made whose firing statements
    /// still do not prepare once every pending migration has run (its body
    /// names what none makes), said with the statement that made it and
    /// SQLite's reason: whether it writes the migrations table cannot be
    /// known.
    pub unjudged_trigger: Option<String>,
    /// Every trigger or view the target's schema had, whose statements
    /// prepared before the pending migrations, that a pending migration
    /// leaves unable to run ([`Standing`]): each said with the statement that
    /// broke it, what it is and SQLite's reason. D1 applies such a
    /// migration (`DROP TABLE` of a table a trigger's body names), and
    /// every statement that fires the trigger fails from then on. Judged
    /// once every pending migration has run, as wrangler applies them in
    /// one run. Then every foreign key they leave SQLite unable to code
    /// ([`KeyFault`]), said with the statement that first left it so: all
    /// of them in one refusal.
    pub breaks: Option<String>,
    /// The start of `breaks`: the statement and what it leaves unable to
    /// run, without the fix, which is for a migration not yet applied
    /// anywhere (rvCB 2: a fresh clone applies every migration, those
    /// production applied and the tool forbids editing too).
    pub broken: Option<String>,
    /// Each foreign key the target's schema had that SQLite cannot code,
    /// and that is gone, or sound, once every pending migration has run
    /// (`child(columns) REFERENCES parent(columns)`): a backup BAD for it
    /// now is mended by applying them (rvCE).
    pub mended_keys: Vec<String>,
    /// Each external-content FTS5 table the target's schema had that could
    /// not read its content table ([`crate::fts_content::unreadable`]), and
    /// that is gone, or reads it, once every pending migration has run: a
    /// backup BAD for it now is mended by applying them (rvCJ 1).
    pub mended_fts: Vec<String>,
}

/// What the statement being prepared does to the migrations table
/// ([`crate::statement::MIGRATIONS_TABLE`]), as the authorizer tells it:
/// writes its rows (itself or through a trigger), alters it, drops it, or
/// creates a trigger on it. Wrangler records each migration it applies
/// there, so any of them makes a later migration never apply, or seem
/// applied when it was not.
fn touches_migrations_table(ctx: &AuthContext<'_>) -> Option<&'static str> {
    let (does, table) = match ctx.action {
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => ("writes", table_name),
        AuthAction::AlterTable { table_name, .. } => ("alters", table_name),
        AuthAction::DropTable { table_name } | AuthAction::DropTempTable { table_name } => {
            ("drops", table_name)
        }
        AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::CreateTempTrigger { table_name, .. } => ("puts a trigger on", table_name),
        _ => return None,
    };
    table
        .eq_ignore_ascii_case(crate::statement::MIGRATIONS_TABLE)
        .then_some(does)
}

/// Whether a statement that did not prepare for SQLite's reason `why`
/// fails in D1 as well, when all before it prepared and ran on a full copy
/// of the schema: a name that is not there is not there in D1 either, and
/// one that is there is there in D1 too (a table, view, index or trigger
/// made again, a column added twice: OA 1, they were warned of, and the
/// migrate took a full backup, then failed in D1). `d1_migrations` is in
/// every copy, as wrangler makes it before it applies one, and
/// `sqlite_sequence` with it; D1's `_cf_KV` is in none (its reads of the
/// schema leave it out), so a statement that makes it again is no known
/// failure here, where D1 refuses its reserved name. Any other reason (a
/// function or module SQLite here lacks, a syntax another SQLite version
/// takes) is only a guess about D1.
pub fn fails_in_d1(why: &str) -> bool {
    const NOT_THERE_OR_THERE: [&str; 7] = [
        "no such table",
        "no such column",
        "no such index",
        "no such trigger",
        "no such view",
        "duplicate column name",
        "there is already ",
    ];
    let made_again = ["table ", "view ", "index ", "trigger "]
        .iter()
        .any(|kind| why.starts_with(kind))
        && why.ends_with(" already exists");
    made_again
        || NOT_THERE_OR_THERE
            .iter()
            .any(|start| why.starts_with(start))
}

/// The foreign keys of `db` that SQLite's reason `why` blames, when a
/// statement did not prepare for a key it cannot code (`foreign key
/// mismatch - "child" referencing "parent"`: an insert into the child, a
/// delete from the parent), each with why D1 refuses it too and the fix;
/// `None` for another reason. SQLite codes each key when it prepares the
/// statement, whatever its rows, and D1 enforces foreign keys whatever a
/// migration's own `PRAGMA foreign_keys=OFF` says (rvCE 4: Drizzle's
/// rebuild of a table, its new table keeping a faulty key, passed the
/// plan, and wrangler failed it after the pre-migration backup).
fn mismatch_said(db: &rusqlite::Connection, why: &str) -> Option<String> {
    if !why.starts_with("foreign key mismatch - ") {
        return None;
    }
    let keys: Vec<String> = { key_faults(db).into_iter() }
        .filter(|k| !k.missing && k.fails(why))
        .map(|k| {
            let parent = crate::names::shown_name(&k.judged.parent);
            format!(
                "the foreign key {} has a parent key that is neither {parent}'s PRIMARY KEY \
                 nor UNIQUE, and D1 enforces foreign keys whatever the migration's own PRAGMA \
                 foreign_keys=OFF says, so it refuses every insert into {} and every delete \
                 from {parent}, with or without rows; make that key reference the primary key \
                 of {parent}, or give {parent} a UNIQUE index on it (`CREATE UNIQUE INDEX … ON \
                 {}`) in that migration, before that statement, or in one before it",
                k.key,
                crate::names::shown_name(&k.judged.child),
                k.parent_key
            )
        })
        .collect();
    Some(match keys.is_empty() {
        true => "D1 enforces foreign keys whatever the migration's own PRAGMA foreign_keys=OFF \
                 says, and refuses it so too"
            .to_owned(),
        false => keys.join("; and "),
    })
}

/// What a statement that did not run for SQLite's reason `why` failed:
/// the kind and name of a trigger or view that SQLite's check of the
/// whole schema after an `ALTER TABLE` found naming a table or column not
/// there (`error in trigger t after drop column: no such column`), which
/// D1's SQLite checks the same (reproduced with the pinned wrangler:
/// DROP COLUMN and RENAME COLUMN fail so in the local D1). Any other
/// reason inside (a function SQLite here lacks) stays a guess about D1.
fn failed_schema_check(why: &str) -> Option<(&'static str, &str)> {
    let (kind, rest) = ["trigger", "view"].into_iter().find_map(|kind| {
        let rest = why.strip_prefix("error in ")?.strip_prefix(kind)?;
        Some((kind, rest.strip_prefix(' ')?))
    })?;
    let (object, reason) = rest.split_once(": ")?;
    let name = object.split(" after ").next().unwrap_or(object);
    fails_in_d1(reason).then_some((kind, name))
}

/// What the plan says of a statement, `said` so far, that did not run for
/// SQLite's reason `why`, when that is a failure of its check of every
/// trigger and view ([`failed_schema_check`]).
fn failed_schema_check_said(said: &str, why: &str) -> Option<String> {
    let (kind, object) = failed_schema_check(why)?;
    let object = crate::names::shown_name(object);
    Some(format!(
        "{said} (SQLite checks every trigger and view against the schema an ALTER TABLE \
         leaves, and {kind} {object} names what is not there then: {})",
        broken_fix(kind, &object)
    ))
}

/// The fix for a statement that breaks trigger or view `name`.
fn broken_fix(kind: &str, name: &str) -> String {
    format!(
        "drop {kind} {name} in the same migration, before that statement (and create it \
         again after it, without what the statement takes away, if it is still wanted)"
    )
}

impl Found {
    /// Notes the statement `at` that did not prepare here for `e`: a call
    /// of a function D1 does not allow (`refuses`), which D1 refuses
    /// whatever the schema, or else a failure D1 shares ([`fails_in_d1`],
    /// [`mismatch_said`]) when nothing before it was unknown, on the
    /// target's `complete` schema (`db`, as the statements before it left
    /// it).
    fn did_not_prepare(
        &mut self,
        db: &rusqlite::Connection,
        at: &str,
        e: &rusqlite::Error,
        complete: bool,
        refuses: Option<String>,
    ) {
        if let Some(name) = refuses {
            let calls = crate::gate::d1_refused_function(&name);
            self.d1_refuses.get_or_insert(format!("{at} calls {calls}"));
            return;
        }
        let why = crate::gate::without_values(e);
        let said = format!("{at} does not prepare here ({why})");
        if self.unknown.is_empty() && complete {
            if fails_in_d1(&why) {
                self.fails = Some(said.clone());
            } else if let Some(keys) = mismatch_said(db, &why) {
                self.fails = Some(format!("{at} does not prepare here ({why}: {keys})"));
            }
        }
        self.unknown.push(said);
    }

    /// Notes the statement `at` that did not run here for `e`: a failure
    /// D1 shares ([`failed_schema_check_said`]) when nothing before it was
    /// unknown, on the target's `complete` schema.
    fn did_not_run(&mut self, at: &str, e: &rusqlite::Error, complete: bool) {
        let why = crate::gate::without_values(e);
        let said = format!("{at} does not run here ({why})");
        if self.unknown.is_empty() && complete {
            self.fails = failed_schema_check_said(&said, &why);
        }
        self.unknown.push(said);
    }
}

/// Whether the copy holds every table, index, view and trigger `schema`
/// creates: one SQLite would not make here (a virtual table of a module it
/// lacks) leaves what names it unknown, not missing.
fn holds_all(copy: &rusqlite::Connection, schema: &[String]) -> Result<bool> {
    let mut named =
        copy.prepare("SELECT 1 FROM main.sqlite_schema WHERE lower(name) = lower(?1)")?;
    for sql in schema {
        let name = crate::statement::created_object(sql)
            .map(|(_, name)| name)
            .or_else(|| crate::statement::created_virtual_table(sql));
        if let Some(name) = name
            && !named.exists([&name])?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The [`SideWrite`]s of `pending` (name, text), prepared in order on an
/// empty copy of the target's `schema` (its `CREATE` statements). A side
/// write of a statement on a table the schema does not hold (one a
/// pending migration made, which has no rows yet) is not told.
pub fn side_writes(schema: &[String], pending: &[(String, String)]) -> Result<Found> {
    side_writes_after(schema, &[], pending)
}

/// [`side_writes`] on the schema that `made_by` (name, text: the applied
/// migrations, when the target's own schema cannot be read) make on
/// `schema`, run first within the same budget; a statement of theirs that
/// does not run here is passed over. Only the statements of `pending` are
/// judged, and none is said to fail in D1 ([`Found::fails`]): the schema is
/// the migrations' word, not the target's.
pub fn side_writes_after(
    schema: &[String],
    made_by: &[(String, String)],
    pending: &[(String, String)],
) -> Result<Found> {
    let mut db = crate::catalog::schema_copy(schema)?;
    let (seen, deadline, ceiling) = watch(&mut db)?;
    let (mut found, trial_ends) = (Found::default(), trial_ends());
    let bounds = (&deadline, trial_ends, ceiling);
    if let Some(unfinished) = run_first(&db, made_by, bounds)? {
        found.unfinished = Some(unfinished);
        return Ok(found);
    }
    let had = tables_in(&db)?;
    let complete = made_by.is_empty() && holds_all(&db, schema)?;
    let mut made = Made::before(&db, &seen, trial_ends)?;
    for (name, sql) in pending {
        db.execute_batch("BEGIN")?;
        for (n, statement) in d1_sql::statements::Statements::new(sql.as_bytes()).enumerate() {
            let at = format!("{name}: its statement {}", n + 1);
            let unknown = |why: String| format!("{at} {why}");
            if let Some(by) = stopped_by(trial_ends, ceiling) {
                found.unfinished = Some(Unfinished { at, by });
                return Ok(found);
            }
            let Ok(statement) = statement else {
                found.unknown.push(unknown("cannot be read".to_owned()));
                break;
            };
            *seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen::default();
            let prepared = db.prepare(&statement.sql);
            let (coded, migrations_table, triggers_on, triggers, refuses) = taken(&seen);
            if let Some(does) = migrations_table {
                found.migrations_table.get_or_insert_with(|| {
                    format!("{at} {does} {}", crate::statement::MIGRATIONS_TABLE)
                });
            }
            let mut stmt = match prepared {
                Ok(stmt) => stmt,
                Err(e) => {
                    found.did_not_prepare(&db, &at, &e, complete, refuses);
                    continue;
                }
            };
            found.side_writes.extend(
                side_writes_of(name, &coded)
                    .into_iter()
                    .filter(|s| had.contains(&s.target.to_lowercase())),
            );
            // Only what changes the schema keeps what it did (PV 2: rows undone).
            if !coded.iter().any(|w| is_schema_table(&w.table)) {
                if let Some(by) = rows_run(&db, &mut stmt, !coded.is_empty(), bounds)? {
                    found.unfinished = Some(Unfinished { at, by });
                    return Ok(found);
                }
                continue;
            }
            let (ran, stopped) = bounded(bounds, || stmt.raw_execute());
            if let Some(by) = stopped {
                found.unfinished = Some(Unfinished { at, by });
                return Ok(found);
            }
            if let Err(e) = ran {
                found.did_not_run(&at, &e, complete);
            } else {
                if found.migrations_table.is_none() {
                    found.migrations_table = trigger_writes(&db, &seen, &triggers_on, &at);
                }
                made.after_statement(&db, &seen, (&coded, &at), trial_ends)?;
            }
            made.record(triggers, &at);
        }
        if made.after_migration(&db, &seen, (&mut found, name), trial_ends)? {
            return Ok(found);
        }
    }
    made.finish(&db, &seen, trial_ends, &mut found)?;
    Ok(found)
}

/// The triggers pending statements made, each with the statement that
/// made it, judged again after each migration (rvBU): a body that first
/// names a table or column a later statement makes does not prepare when
/// its trigger is made, so what it writes is known only once that is there.
#[derive(Default)]
struct Made {
    /// Name and statement, in the order made (one whose statement did not
    /// run is never there to judge).
    triggers: Vec<(String, String)>,
    /// The triggers and views the target had that worked before.
    standing: Standing,
    /// Name and table of each trigger the target had whose firing
    /// statements did not prepare before (its body names what the target
    /// lacks): judged after each pending migration, as one that makes
    /// what it names may turn it into a writer of the migrations table.
    dormant: Vec<(String, String)>,
    /// Of those, each the pending migrations have broken so far (its kind
    /// and name, in lower case), with the statement that first left it
    /// so: one a later statement drops or makes again, in the same
    /// migration or a later pending one, is no breakage, as wrangler
    /// applies every pending migration in one run (rvCA 1: Drizzle
    /// writes a migration per generate, one dropping a table and the next
    /// making it again).
    broken_at: BTreeMap<(String, String), String>,
    /// The foreign keys of the target that D1 could not code before the
    /// pending migrations, as the statements so far left them (renamed,
    /// [`KeyId::is`]): none of theirs (rvCB 1).
    faulty_keys: Vec<KeyId>,
    /// `faulty_keys` as SQL named them before the pending migrations.
    faulty_said: Vec<String>,
    /// Each foreign key the pending statements have left that D1 cannot
    /// code, as they left it, with the statement that first left it so.
    keys_broken_at: Vec<(KeyId, String)>,
    /// The external-content FTS5 tables of the target that could not read
    /// their content table before the pending migrations: none of theirs.
    fts_unreadable: Vec<String>,
    /// Each FTS5 table the pending statements have left unable to read its
    /// content table (in lower case), with the statement that first left
    /// it so (rvCJ 1).
    fts_broken_at: BTreeMap<String, String>,
}

impl Made {
    /// What `db` has before any pending statement runs: the triggers and
    /// views that work, and the foreign keys that SQLite cannot code.
    fn before(db: &rusqlite::Connection, seen: &Recorded, trial_ends: Instant) -> Result<Made> {
        let standing = Standing::of(db, seen, trial_ends)?;
        let dormant =
            { db.prepare("SELECT name, tbl_name FROM main.sqlite_schema WHERE type = 'trigger'")? }
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|(t, _)| {
                    !standing
                        .triggers
                        .iter()
                        .any(|(s, _)| s.eq_ignore_ascii_case(t))
                })
                .collect();
        let (faulty_keys, faulty_said) = { key_faults(db).into_iter() }
            .map(|k| (k.id, k.key))
            .unzip();
        let fts_unreadable = { crate::fts_content::unreadable(db).into_iter() }
            .map(|u| u.table)
            .collect();
        Ok(Made {
            standing,
            dormant,
            faulty_keys,
            faulty_said,
            fts_unreadable,
            ..Made::default()
        })
    }

    /// What every pending migration, all run, leaves in `found`: what
    /// they broke ([`Made::still_broken`]) and the keys they mended.
    fn finish(
        &self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        trial_ends: Instant,
        found: &mut Found,
    ) -> Result<()> {
        (found.broken, found.breaks) = Breakage::split(self.still_broken(db, seen, trial_ends)?);
        found.mended_keys = self.mended(db);
        let now = crate::fts_content::unreadable(db);
        found.mended_fts = { self.fts_unreadable.iter() }
            .filter(|had| !now.iter().any(|u| u.table.eq_ignore_ascii_case(had)))
            .cloned()
            .collect();
        Ok(())
    }

    /// The FTS5 tables of `db` that cannot read their content table and
    /// could before the pending statements (or that one of them made).
    fn fts_theirs(&self, db: &rusqlite::Connection) -> Vec<crate::fts_content::Unreadable> {
        { crate::fts_content::unreadable(db).into_iter() }
            .filter(|u| {
                !{ self.fts_unreadable.iter() }.any(|had| had.eq_ignore_ascii_case(&u.table))
            })
            .collect()
    }

    /// The foreign keys SQLite could not code before the pending
    /// statements and can now, or that are gone ([`Found::mended_keys`]).
    fn mended(&self, db: &rusqlite::Connection) -> Vec<String> {
        let now = key_faults(db);
        { self.faulty_keys.iter().zip(&self.faulty_said) }
            .filter(|(had, _)| !now.iter().any(|k| had.is(&k.id)))
            .map(|(_, said)| said.clone())
            .collect()
    }

    /// Commits the migration just tried (unless it ended the transaction
    /// itself) and [`Made::judge`]s the triggers: whether the trial's
    /// budget ran out doing so.
    fn after_migration(
        &mut self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        (found, migration): (&mut Found, &str),
        trial_ends: Instant,
    ) -> Result<bool> {
        if !db.is_autocommit() {
            db.execute_batch("COMMIT")?;
        }
        found.unfinished = { self.judge(db, seen, found, trial_ends)? }.map(|at| Unfinished {
            at,
            by: Bound::Time,
        });
        if found.migrations_table.is_none() && found.unfinished.is_none() {
            found.migrations_table = self.woken(db, seen, migration);
        }
        Ok(found.unfinished.is_some())
    }

    /// The first trigger the target had whose body did not prepare before
    /// the pending migrations ([`Made::dormant`]) and, once `migration`
    /// has run, prepares to write the migrations table: said with that
    /// migration. It made what the body names (`CREATE TABLE never5` for a
    /// body `INSERT INTO never5 …; DELETE FROM d1_migrations`), and from
    /// then on every statement that fires the trigger deletes wrangler's
    /// record; it used to pass, as only the triggers pending statements
    /// make were judged (OU).
    fn woken(&self, db: &rusqlite::Connection, seen: &Recorded, migration: &str) -> Option<String> {
        self.dormant.iter().find_map(|(trigger, table)| {
            let writer = fire(db, seen, table).writes_migrations_table?;
            let is_it = writer
                .as_deref()
                .is_some_and(|w| w.eq_ignore_ascii_case(trigger));
            is_it.then(|| {
                format!(
                    "{} makes what the body of trigger {} on {}, which the database has, \
                     names: from then on that body writes {}",
                    crate::names::shown(migration),
                    crate::names::shown_name(trigger),
                    crate::names::shown_name(table),
                    crate::statement::MIGRATIONS_TABLE
                )
            })
        })
    }

    /// Notes each standing trigger or view the statement at `at` (just
    /// run, coded to make `writes`) has left unable to run, and each
    /// foreign key it left D1 unable to code ([`key_faults`]), unless a
    /// pending statement before it did.
    fn after_statement(
        &mut self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        (writes, at): (&[Write], &str),
        trial_ends: Instant,
    ) -> Result<()> {
        for KeyFault { id, .. } in key_faults(db) {
            if let Some(had) = self.faulty_keys.iter_mut().find(|k| k.is(&id)) {
                *had = id;
            } else if let Some((made, _)) =
                { self.keys_broken_at.iter_mut() }.find(|(k, _)| k.is(&id))
            {
                *made = id;
            } else {
                self.keys_broken_at.push((id, at.to_owned()));
            }
        }
        for unreadable in self.fts_theirs(db) {
            self.fts_broken_at
                .entry(unreadable.table.to_lowercase())
                .or_insert_with(|| at.to_owned());
        }
        if !may_break(writes) {
            return Ok(());
        }
        for broken in self.standing.broken(db, seen, &self.triggers, trial_ends)? {
            self.broken_at
                .entry(broken.key())
                .or_insert_with(|| at.to_owned());
        }
        Ok(())
    }

    /// Every standing trigger or view the pending migrations leave unable
    /// to run once all of them have run, then every foreign key they leave
    /// D1 unable to code, each said with the statement that first broke it
    /// and its fix: told one at a time, a user fixed one, ran again and
    /// only then learnt of the next (OJ 1). A trigger or view that fails
    /// only by such a key (its body writes the child or the parent) is the
    /// key's fault, told once, as the key.
    fn still_broken(
        &self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        trial_ends: Instant,
    ) -> Result<Option<Breakage>> {
        let keys: Vec<(KeyFault, &String)> = { key_faults(db).into_iter() }
            .filter(|k| !self.faulty_keys.iter().any(|had| had.is(&k.id)))
            .filter_map(|k| {
                let (_, at) = { self.keys_broken_at.iter() }.find(|(made, _)| made.is(&k.id))?;
                Some((k, at))
            })
            .collect();
        let broken = self.standing.broken(db, seen, &self.triggers, trial_ends)?;
        let mut told: Vec<Breakage> = { broken.into_iter() }
            .filter(|b| !keys.iter().any(|(k, _)| k.fails(&b.why)))
            .filter_map(|b| Some(b.said(self.broken_at.get(&b.key())?)))
            .collect();
        told.extend(keys.iter().map(|(k, at)| k.said(at)));
        told.extend({ self.fts_theirs(db).into_iter() }.filter_map(|u| {
            let at = self.fts_broken_at.get(&u.table.to_lowercase())?;
            Some(fts_breakage(&u, at))
        }));
        Ok(Breakage::all(told))
    }

    fn record(&mut self, triggers: Vec<String>, at: &str) {
        for trigger in triggers {
            self.triggers
                .retain(|(t, _)| !t.eq_ignore_ascii_case(&trigger));
            self.triggers.push((trigger, at.to_owned()));
        }
    }

    /// Prepares the statements that fire each table's triggers that
    /// pending statements made and that exist now: one coded to write the
    /// migrations table is told in `found`, with the trigger that writes it
    /// (the innermost that a pending statement made), and the first whose
    /// do not prepare ([`Found::unjudged_trigger`]), with only the triggers
    /// pending statements made there ([`Made::fire_alone`]). Past
    /// `trial_ends`, the statement that made the trigger reached.
    fn judge(
        &self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        found: &mut Found,
        trial_ends: Instant,
    ) -> Result<Option<String>> {
        found.unjudged_trigger = None;
        if found.migrations_table.is_some() {
            return Ok(None);
        }
        let mut on = db
            .prepare("SELECT tbl_name FROM main.sqlite_schema WHERE type = 'trigger' AND name = ?1")
            .ok();
        let mut judged: Vec<String> = Vec::new();
        for (trigger, at) in &self.triggers {
            let Some(table) = { on.as_mut() }
                .and_then(|on| on.query_row([trigger], |r| r.get::<_, String>(0)).ok())
            else {
                continue;
            };
            if judged.iter().any(|t| t.eq_ignore_ascii_case(&table)) {
                continue;
            }
            if Instant::now() >= trial_ends {
                return Ok(Some(at.clone()));
            }
            let mut fired = fire(db, seen, &table);
            if fired.writes_migrations_table.is_none() && fired.does_not_prepare.is_some() {
                if Instant::now() >= trial_ends {
                    return Ok(Some(at.clone()));
                }
                fired = self.fire_alone(db, seen, &table)?;
                if fired.does_not_prepare.is_some()
                    && fired.does_not_prepare == fire_bare(db, seen, &table)?.does_not_prepare
                {
                    // The table's own (a foreign key): told as such.
                    fired.does_not_prepare = None;
                }
            }
            judged.push(table.clone());
            if let Some(writer) = fired.writes_migrations_table {
                let (trigger, at) = { self.triggers.iter() }
                    .find(|(t, _)| writer.as_deref().is_some_and(|w| t.eq_ignore_ascii_case(w)))
                    .map_or((trigger, at), |(t, a)| (t, a));
                found.migrations_table = Some(format!(
                    "{at} creates trigger {}, whose body writes {} once the statements after \
                     it have run",
                    crate::names::shown_name(trigger),
                    crate::statement::MIGRATIONS_TABLE
                ));
                return Ok(None);
            }
            if let Some(why) = fired.does_not_prepare {
                found.unjudged_trigger.get_or_insert_with(|| {
                    format!(
                        "{at} creates trigger {} on {}, whose body does not prepare here once \
                         every pending migration has run ({why})",
                        crate::names::shown_name(trigger),
                        crate::names::shown_name(&table)
                    )
                });
            }
        }
        Ok(None)
    }

    /// [`fire`] with every trigger no pending statement made dropped, in a
    /// savepoint rolled back after: one the target already had whose body
    /// does not prepare (it names a table since dropped, which restore
    /// warns "cannot run") fails every statement that fires it, and a
    /// harmless trigger a pending migration put on its table, or on a table
    /// whose triggers reach it, was refused as unjudged (rvBX). What does
    /// not prepare then is the pending triggers' own.
    fn fire_alone(&self, db: &rusqlite::Connection, seen: &Recorded, table: &str) -> Result<Fired> {
        let others: Vec<String> =
            { db.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'trigger'")? }
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?
                .into_iter()
                .filter(|t| {
                    !self
                        .triggers
                        .iter()
                        .any(|(made, _)| made.eq_ignore_ascii_case(t))
                })
                .collect();
        fire_without(db, seen, table, &others)
    }
}

/// The triggers and views of the target's schema whose statements
/// prepare before any pending statement runs: one a pending statement
/// leaves unable to run is its doing (`DROP TABLE` of a table a trigger's
/// body or a view names, which D1 applies). One broken already (its body
/// names a table dropped long ago) is not judged (rvBX).
#[derive(Default)]
struct Standing {
    /// Name and table of each trigger.
    triggers: Vec<(String, String)>,
    views: Vec<String>,
}

/// A standing trigger or view a pending statement left unable to run.
struct Broken {
    kind: &'static str,
    name: String,
    /// The table a trigger is on.
    table: Option<String>,
    /// SQLite's reason, without values.
    why: String,
}

impl Broken {
    fn key(&self) -> (String, String) {
        (self.kind.to_owned(), self.name.to_lowercase())
    }

    /// What the plan's refusal says of it, after the statement `at`: what
    /// it leaves, then why that matters and the fix ([`Breakage`]).
    fn said(&self, at: &str) -> Breakage {
        let name = crate::names::shown_name(&self.name);
        let (on, fails) = match &self.table {
            Some(table) => (
                format!(" on {}", crate::names::shown_name(table)),
                "every statement that fires it",
            ),
            None => (String::new(), "every query of it"),
        };
        let what = format!(
            "{at} leaves {kind} {name}{on} unable to run ({why})",
            kind = self.kind,
            why = self.why
        );
        let said = format!(
            "{what}: D1 applies it, and from then on {fails} fails, and so does every ALTER \
             TABLE that renames or drops a column (SQLite checks every trigger and view then); \
             {fix}",
            fix = broken_fix(self.kind, &name)
        );
        Breakage { what, said }
    }
}

impl Standing {
    /// The triggers and views of `db` that work now, as far as the trial's
    /// time allows (past `trial_ends`, those not yet tried are left out).
    fn of(db: &rusqlite::Connection, seen: &Recorded, trial_ends: Instant) -> Result<Standing> {
        let all = Standing {
            triggers: {
                db.prepare("SELECT name, tbl_name FROM main.sqlite_schema WHERE type = 'trigger'")?
            }
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?,
            views: { db.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'view'")? }
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?,
        };
        let broken = all.broken(db, seen, &[], trial_ends)?;
        let works = |kind: &str, name: &str| {
            !broken
                .iter()
                .any(|b| b.kind == kind && b.name.eq_ignore_ascii_case(name))
        };
        Ok(Standing {
            triggers: { all.triggers.into_iter() }
                .filter(|(t, _)| works("trigger", t))
                .collect(),
            views: { all.views.into_iter() }
                .filter(|v| works("view", v))
                .collect(),
        })
    }

    /// Those of them still in `db`'s schema that do not prepare now,
    /// triggers first; a trigger a pending statement made (`made`) is
    /// judged as such ([`Made::judge`]), never here. A table whose firing
    /// statements prepare has every trigger working; on one whose do not,
    /// each trigger is tried alone ([`fire_only`]). Past `trial_ends`, the
    /// rest are not tried.
    fn broken(
        &self,
        db: &rusqlite::Connection,
        seen: &Recorded,
        made: &[(String, String)],
        trial_ends: Instant,
    ) -> Result<Vec<Broken>> {
        let mut now_on = db.prepare(
            "SELECT tbl_name FROM main.sqlite_schema WHERE type = 'trigger' AND name = ?1",
        )?;
        let mut on: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (trigger, _) in &self.triggers {
            if made.iter().any(|(m, _)| m.eq_ignore_ascii_case(trigger)) {
                continue;
            }
            if let Ok(table) = now_on.query_row([trigger], |r| r.get::<_, String>(0)) {
                on.entry(table).or_default().push(trigger);
            }
        }
        let mut broken = Vec::new();
        for (table, triggers) in on {
            if Instant::now() >= trial_ends {
                return Ok(broken);
            }
            if fire(db, seen, &table).does_not_prepare.is_none() {
                continue;
            }
            let own = fire_bare(db, seen, &table)?.does_not_prepare;
            for trigger in triggers {
                let why = fire_only(db, seen, trigger, &table)?.does_not_prepare;
                if let Some(why) = why.filter(|why| own.as_ref() != Some(why)) {
                    let (name, table) = (trigger.to_owned(), Some(table.clone()));
                    broken.push(Broken {
                        kind: "trigger",
                        name,
                        table,
                        why,
                    });
                }
            }
        }
        let mut there =
            db.prepare("SELECT 1 FROM main.sqlite_schema WHERE type = 'view' AND name = ?1")?;
        for view in &self.views {
            if Instant::now() >= trial_ends {
                break;
            }
            if !there.exists([view])? {
                continue;
            }
            let select = format!("SELECT * FROM main.{}", crate::statement::quote_ident(view));
            if let Err(e) = db.prepare(&select) {
                let why = crate::gate::without_values(&e);
                broken.push(Broken {
                    kind: "view",
                    name: view.clone(),
                    table: None,
                    why,
                });
            }
        }
        Ok(broken)
    }
}

/// [`fire`] with every trigger but `trigger` dropped, in a savepoint rolled
/// back after: whether its own body prepares.
fn fire_only(
    db: &rusqlite::Connection,
    seen: &Recorded,
    trigger: &str,
    table: &str,
) -> Result<Fired> {
    let others: Vec<String> = {
        db.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'trigger' AND name != ?1")?
    }
    .query_map([trigger], |r| r.get(0))?
    .collect::<rusqlite::Result<_>>()?;
    fire_without(db, seen, table, &others)
}

/// [`fire`] with every trigger dropped, in a savepoint rolled back after:
/// what does not prepare then is the table's own (a foreign key whose
/// parent is not there, or whose parent key is not UNIQUE), which a
/// trigger on it or on its parent was blamed for (rvCA 2).
fn fire_bare(db: &rusqlite::Connection, seen: &Recorded, table: &str) -> Result<Fired> {
    let every: Vec<String> =
        { db.prepare("SELECT name FROM main.sqlite_schema WHERE type = 'trigger'")? }
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    fire_without(db, seen, table, &every)
}

/// A foreign key SQLite cannot code a write of its table with, nor D1,
/// which enforces foreign keys in every statement: its parent table is
/// not there (`no such table`: every insert into the child, and every
/// delete from it, fails), or its parent key is neither the parent's
/// PRIMARY KEY nor UNIQUE (`foreign key mismatch`: every insert into the
/// child and every delete from the parent fails, and so does a backup's
/// check of foreign keys). D1 applies the statement that leaves it so
/// (rvCA 2: a `DROP TABLE` of the parent; a `CREATE TABLE` referencing a
/// column that is not UNIQUE).
struct KeyFault {
    /// `child(column) REFERENCES parent(column)`, as SQL names them.
    key: String,
    /// The parent key, as SQL names it (`parent(column)`).
    parent_key: String,
    /// The parent table is not there (else its key is not UNIQUE).
    missing: bool,
    id: KeyId,
    /// The key, as SQLite judged it.
    judged: crate::foreign_keys::ForeignKey,
}

impl KeyFault {
    /// Whether SQLite's reason `why` (a trigger's or a view's that does
    /// not prepare) is this key's, as SQLite words it
    /// ([`crate::foreign_keys::ForeignKey::fails`]).
    fn fails(&self, why: &str) -> bool {
        self.judged.fails(why)
    }

    /// What the plan's refusal says of it, after the statement `at`: what
    /// it leaves, then why that matters and the fix ([`Breakage`]).
    fn said(&self, at: &str) -> Breakage {
        let (key, child) = (&self.key, crate::names::shown_name(&self.judged.child));
        let parent = crate::names::shown_name(&self.judged.parent);
        let what = match self.missing {
            true => format!(
                "{at} leaves the foreign key {key} without its parent table {parent} (no such \
                 table)"
            ),
            false => format!(
                "{at} leaves the foreign key {key} with a parent key that is neither its \
                 PRIMARY KEY nor UNIQUE (foreign key mismatch: no row can be inserted into \
                 {child}, and once {parent} holds a row a restore of a backup loads none of \
                 {parent}'s rows either, as a dump defers foreign keys)"
            ),
        };
        let said = if self.missing {
            format!(
                "{what}: D1 applies it, and from then on every insert into {child}, and every \
                 delete from it, fails, and a backup's check of foreign keys finds every row \
                 of {child} that names a parent; make {parent} again in that migration or a \
                 later pending one, or drop {child} too, or make {child} again without that \
                 key before that statement (a new table, its rows copied, {child} dropped, \
                 the new one renamed: ALTER TABLE cannot drop a foreign key)"
            )
        } else {
            format!(
                "{what}: D1 applies it, and from then \
                 on every insert into {child} and every delete from {parent} fails, and so does \
                 a backup's check of foreign keys; make the key reference the primary key of \
                 {parent}, or give {parent} a UNIQUE index on it (`CREATE UNIQUE INDEX … ON \
                 {parent_key}`) in that migration or one before it",
                parent_key = self.parent_key
            )
        };
        Breakage { what, said }
    }
}

/// What the plan's refusal says of `unreadable`, an FTS5 table the
/// statement `at` left unable to read its content table: D1 applies it,
/// and from then on every search of it fails, and every backup is BAD, its
/// index rebuilt from what is not there, or (its content table gone) comes
/// back with its index empty (rvCJ 1).
fn fts_breakage(unreadable: &crate::fts_content::Unreadable, at: &str) -> Breakage {
    let table = crate::names::shown_name(&unreadable.table);
    let what = format!(
        "{at} leaves FTS5 table {table} unable to read its content ({}): it reads {}",
        unreadable.why,
        unreadable.reads()
    );
    // A content table not there is in no backup: a restore recreates the
    // FTS5 table with its index empty; a column not there fails the
    // rebuild of every backup.
    let backups = match unreadable.missing.is_empty() {
        true => "a restore of any backup brings it back with its index empty",
        false => "so does the rebuild of its index in every backup (each one BAD)",
    };
    let said = format!(
        "{what}; D1 applies it, and from then on every search of {table} fails, and \
         {backups}; in the same migration, after that statement, {}",
        unreadable.fix()
    );
    Breakage { what, said }
}

/// What a pending statement leaves unable to run, as the plan says it.
struct Breakage {
    /// The statement and what it leaves so, SQLite's reason with it.
    what: String,
    /// `what`, then what fails from then on and the fix in the migrations.
    said: String,
}

impl Breakage {
    /// Each of `told` in one, `None` for none: every one is told in one
    /// refusal (OJ 1).
    fn all(told: Vec<Breakage>) -> Option<Breakage> {
        let joined = |part: fn(&Breakage) -> &String| {
            told.iter()
                .map(part)
                .cloned()
                .collect::<Vec<_>>()
                .join("; and ")
        };
        (!told.is_empty()).then(|| Breakage {
            what: joined(|b| &b.what),
            said: joined(|b| &b.said),
        })
    }

    /// [`Found::broken`] and [`Found::breaks`] of `breakage`.
    fn split(breakage: Option<Breakage>) -> (Option<String>, Option<String>) {
        breakage.map_or((None, None), |b| (Some(b.what), Some(b.said)))
    }
}

/// The foreign keys of `db` that SQLite cannot check, each as its table,
/// the table it names, the key as SQL names it (`c(b) REFERENCES
/// p(code)`), and whether that table is not there (else its key is not
/// UNIQUE): what stops a load inserting the rows of either table.
pub fn faulty_keys(db: &rusqlite::Connection) -> Vec<(String, String, String, bool)> {
    { key_faults(db).into_iter() }
        .map(|f| (f.judged.child, f.judged.parent, f.key, f.missing))
        .collect()
}

/// The foreign keys of `db` that SQLite cannot code ([`KeyFault`]), as
/// SQLite judges them ([`crate::foreign_keys::judged`]): its parent not
/// there, or its parent key not UNIQUE (or a virtual table's). What cannot
/// be read here is no fault.
fn key_faults(db: &rusqlite::Connection) -> Vec<KeyFault> {
    let names = |names: &[String]| {
        { names.iter() }
            .map(|n| crate::names::shown_name(n).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Ok(judged) = crate::foreign_keys::judged(db) else {
        return Vec::new();
    };
    let mut faults = Vec::new();
    for key in judged.faulty() {
        let missing = key.verdict == crate::foreign_keys::Verdict::ParentMissing;
        let id = KeyId::of(db, &key, missing);
        let shown_parent = crate::names::shown_name(&key.parent);
        // A key without columns references the parent's primary key.
        let parent_key = match key.to.iter().cloned().collect::<Option<Vec<String>>>() {
            Some(to) => format!("{shown_parent}({})", names(&to)),
            None => shown_parent.into_owned(),
        };
        faults.push(KeyFault {
            key: format!(
                "{}({}) REFERENCES {parent_key}",
                crate::names::shown_name(&key.child),
                names(&key.from)
            ),
            parent_key,
            missing,
            id,
            judged: key,
        });
    }
    faults
}

/// What a foreign key fault is, whatever the statements since renamed:
/// its child, columns and parent key by name (in lower case), and where
/// they stand, which a rename keeps (the root page of each table, the
/// position of each column). A fault the target had before the pending
/// migrations, its column or table renamed since, is still none of
/// theirs (rvCB 1: a pending `RENAME COLUMN` of a faulty key read as a
/// new fault).
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyId {
    /// `child(columns) REFERENCES parent(columns)`, in lower case.
    key: String,
    child: String,
    from: Vec<String>,
    missing: bool,
    /// The child's root page and its columns' positions.
    child_at: (i64, Vec<Option<i64>>),
    /// The parent's, or its name where it is not there.
    parent_at: Result<(i64, Vec<Option<i64>>), String>,
}

impl KeyId {
    fn of(
        db: &rusqlite::Connection,
        key: &crate::foreign_keys::ForeignKey,
        missing: bool,
    ) -> KeyId {
        let lower = |names: &[Option<String>]| {
            { names.iter() }
                .map(|n| n.as_deref().unwrap_or("").to_lowercase())
                .collect::<Vec<_>>()
        };
        let from: Vec<Option<String>> = key.from.iter().cloned().map(Some).collect();
        let parent = key.parent.to_lowercase();
        let parent_at = match missing {
            true => Err(parent.clone()),
            false => Ok(columns_at(db, &key.parent, &key.to)),
        };
        KeyId {
            key: format!(
                "{}({}) references {parent}({})",
                key.child.to_lowercase(),
                lower(&from).join(","),
                lower(&key.to).join(",")
            ),
            child: key.child.to_lowercase(),
            from: lower(&from),
            missing,
            child_at: columns_at(db, &key.child, &from),
            parent_at,
        }
    }

    /// Whether `other` is the same fault: of the same kind, and named the
    /// same, or standing where it stood with its table or its columns
    /// named the same (a root page a dropped table freed may be a new
    /// table's).
    fn is(&self, other: &KeyId) -> bool {
        self.missing == other.missing
            && (self.key == other.key
                || (self.child_at == other.child_at
                    && self.parent_at == other.parent_at
                    && (self.child == other.child || self.from == other.from)))
    }
}

/// The root page of `table` in `db` and the position of each of its
/// `columns` (`None` for a column not named, or not there).
fn columns_at(
    db: &rusqlite::Connection,
    table: &str,
    columns: &[Option<String>],
) -> (i64, Vec<Option<i64>>) {
    let root = db
        .query_row(
            "SELECT rootpage FROM main.sqlite_schema WHERE type = 'table' \
             AND lower(name) = lower(?1)",
            [table],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let at = |column: &str| {
        db.query_row(
            "SELECT cid FROM pragma_table_info(?1) WHERE lower(name) = lower(?2)",
            [table, column],
            |r| r.get(0),
        )
        .ok()
    };
    let positions = { columns.iter() }
        .map(|c| c.as_deref().and_then(at))
        .collect();
    (root, positions)
}

/// [`fire`] with the triggers `others` dropped, in a savepoint rolled back
/// after.
fn fire_without(
    db: &rusqlite::Connection,
    seen: &Recorded,
    table: &str,
    others: &[String],
) -> Result<Fired> {
    db.execute_batch("SAVEPOINT judged")?;
    let dropped = others.iter().try_for_each(|t| {
        db.execute_batch(&format!(
            "DROP TRIGGER main.{}",
            crate::statement::quote_ident(t)
        ))
    });
    let fired = dropped.map(|()| fire(db, seen, table));
    db.execute_batch("ROLLBACK TO judged; RELEASE judged")?;
    Ok(fired?)
}

/// Whether a statement coded these `writes` may leave a trigger or view
/// unable to run: it deletes or changes rows of the schema table, or drops
/// a table (one that only creates cannot).
fn may_break(writes: &[Write]) -> bool {
    writes.iter().any(|w| {
        w.kind == WriteKind::DropTable || (is_schema_table(&w.table) && w.kind != WriteKind::Insert)
    })
}

/// The bounds of a trial's statements: the deadline the watch reads, the
/// trial's end and its memory ceiling ([`watch`]).
type Bounds<'a> = (&'a Deadline, Instant, Option<crate::room::MemoryCeiling>);

/// `run` under the trial's `bounds`, and which stopped it, if one did.
fn bounded<T>(
    (deadline, ends, ceiling): Bounds<'_>,
    run: impl FnOnce() -> rusqlite::Result<T>,
) -> (rusqlite::Result<T>, Option<Bound>) {
    *deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(ends);
    let ran = run();
    *deadline.lock().unwrap_or_else(PoisonError::into_inner) = None;
    let stopped = ran.is_err().then(|| stopped_by(ends, ceiling)).flatten();
    (ran, stopped)
}

/// Runs `stmt`, a statement that changes no schema, on `db` within the
/// trial's `bounds` when it writes rows (`writes`, as the authorizer told)
/// or reads them (a `SELECT`), and undoes what it did: the bound that
/// stopped it, if one did. An `INSERT … SELECT` of a recursive query, an
/// `UPDATE` or `DELETE` whose subquery is one, never ends on empty tables
/// as a `CREATE TABLE … AS` one does, and passed the trial unrun, so
/// `migrate` took its backup, applied the migrations before it and hung
/// on it (PV 2, rvCN 2). Rows it writes are undone, as before: what it
/// fails of its own is not said (the rows D1 holds are not here).
fn rows_run(
    db: &rusqlite::Connection,
    stmt: &mut rusqlite::Statement<'_>,
    writes: bool,
    bounds: Bounds<'_>,
) -> Result<Option<Bound>> {
    let reads = stmt.readonly() && stmt.column_count() > 0;
    if !(writes || reads) {
        return Ok(None);
    }
    db.execute_batch("SAVEPOINT trial_rows")?;
    let (_, stopped) = bounded(bounds, || {
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        Ok(())
    });
    if stopped.is_some() {
        // An interrupted write may have rolled the transaction back: the
        // run ends here, its database dropped.
        return Ok(stopped);
    }
    // One that failed with `ON CONFLICT ROLLBACK` (or a trigger's
    // `RAISE(ROLLBACK)`) ended the transaction, the savepoint with it.
    if !db.is_autocommit() {
        db.execute_batch("ROLLBACK TO trial_rows; RELEASE trial_rows")?;
    }
    Ok(None)
}

/// Runs `made_by` (name, text) on `db` within `bounds`, passing over a
/// statement that does not run here: the statement a bound stopped, if one
/// did ([`side_writes_after`]).
fn run_first(
    db: &rusqlite::Connection,
    made_by: &[(String, String)],
    bounds: Bounds<'_>,
) -> Result<Option<Unfinished>> {
    for (name, sql) in made_by {
        for (n, statement) in d1_sql::statements::Statements::new(sql.as_bytes()).enumerate() {
            let Ok(statement) = statement else { break };
            if let (_, Some(by)) = bounded(bounds, || db.execute_batch(&statement.sql)) {
                let at = format!("{name}: its statement {}", n + 1);
                return Ok(Some(Unfinished { at, by }));
            }
        }
        if !db.is_autocommit() {
            db.execute_batch("COMMIT")?;
        }
    }
    Ok(None)
}

/// The tables of `db`'s schema, in lower case.
fn tables_in(db: &rusqlite::Connection) -> Result<Vec<String>> {
    Ok(db
        .prepare("SELECT lower(name) FROM main.sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// What the authorizer saw of the statement being prepared: the writes it
/// codes, and what it does to the migrations table.
#[derive(Default)]
struct Seen {
    writes: Vec<Write>,
    /// A function D1 does not allow that the statement calls (denied).
    d1_refuses: Option<String>,
    migrations_table: Option<&'static str>,
    /// The tables the statement creates a trigger on.
    triggers_on: Vec<String>,
    /// The triggers it creates, by name.
    triggers: Vec<String>,
}

/// The statement at `at`, when a trigger it created on one of `tables`
/// writes the migrations table ([`fired_writes_migrations_table`]).
fn trigger_writes(
    db: &rusqlite::Connection,
    seen: &Recorded,
    tables: &[String],
    at: &str,
) -> Option<String> {
    { tables.iter() }
        .any(|table| fire(db, seen, table).writes_migrations_table.is_some())
        .then(|| {
            let table = crate::statement::MIGRATIONS_TABLE;
            format!("{at} creates a trigger that writes {table}")
        })
}

/// What the statements that fire the triggers on `table` are coded to do
/// ([`fire`]).
#[derive(Default)]
struct Fired {
    /// One is coded to write the migrations table, in this trigger (the
    /// innermost, as the authorizer tells it).
    writes_migrations_table: Option<Option<String>>,
    /// SQLite's reason one does not prepare (a trigger's body names what
    /// is not there), without values.
    does_not_prepare: Option<String>,
}

/// Whether a statement that fires the triggers on `table` (an INSERT, an
/// UPDATE of every column, a DELETE), prepared and never run, is coded to
/// write the migrations table, or does not prepare: SQLite codes a trigger's body into each
/// statement that fires it, and tells its writes to the authorizer then,
/// never when the trigger is created (rvBT 3: `CREATE TRIGGER … BEGIN
/// DELETE FROM d1_migrations …; END` passed, and an app's insert made an
/// applied migration pending again). Prepared, not read from the body's
/// text: the names the authorizer tells are SQLite's own, whatever their
/// quoting, case or schema (`main."D1_MIGRATIONS"`).
fn fire(db: &rusqlite::Connection, seen: &Recorded, table: &str) -> Fired {
    let quoted = crate::statement::quote_ident(table);
    let columns: Vec<String> = db
        .prepare(&format!(
            "SELECT name FROM pragma_table_info({})",
            crate::statement::quote_literal(table)
        ))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    let sets: Vec<String> = { columns.iter() }
        .map(|c| format!("{0} = {0}", crate::statement::quote_ident(c)))
        .collect();
    let mut firing = vec![
        format!("INSERT INTO {quoted} DEFAULT VALUES"),
        format!("DELETE FROM {quoted}"),
    ];
    if !sets.is_empty() {
        firing.push(format!("UPDATE {quoted} SET {}", sets.join(", ")));
    }
    let mut fired = Fired::default();
    for sql in &firing {
        *seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen::default();
        let prepared = db.prepare(sql).map(drop);
        let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
        if seen.migrations_table == Some("writes") {
            let written = { seen.writes.iter() }.find(|w| {
                w.table
                    .eq_ignore_ascii_case(crate::statement::MIGRATIONS_TABLE)
            });
            fired.writes_migrations_table = Some(written.and_then(|w| w.inner.clone()));
            return fired;
        }
        match prepared {
            // A view without an INSTEAD OF trigger for this event fires
            // nothing.
            Err(e) if e.to_string().ends_with("because it is a view") => {}
            Err(e) => {
                fired
                    .does_not_prepare
                    .get_or_insert_with(|| crate::gate::without_values(&e));
            }
            Ok(()) => {}
        }
    }
    fired
}

/// The [`Seen`] of the statement being prepared.
type Recorded = Arc<Mutex<Seen>>;

/// What `seen` recorded of the statement just prepared, taken from it.
fn taken(seen: &Recorded) -> Taken {
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    (
        seen.writes,
        seen.migrations_table,
        seen.triggers_on,
        seen.triggers,
        seen.d1_refuses,
    )
}

/// What [`taken`] gives: [`Seen`]'s fields, in its order.
type Taken = (
    Vec<Write>,
    Option<&'static str>,
    Vec<String>,
    Vec<String>,
    Option<String>,
);

/// When the statement now running is stopped, if it is.
type Deadline = Arc<Mutex<Option<Instant>>>;

/// Watches the statements `db` prepares and runs: every write a statement
/// codes is recorded, and what it does to the migrations table (one that
/// attaches a database, or calls a function D1 does not allow, is denied), and one runs until the deadline set,
/// an interrupt, or the memory ceiling returned ([`trial_memory`]);
/// foreign keys are on.
fn watch(
    db: &mut rusqlite::Connection,
) -> Result<(Recorded, Deadline, Option<crate::room::MemoryCeiling>)> {
    let writes: Recorded = Arc::default();
    let seen = Arc::clone(&writes);
    db.authorizer(Some(move |ctx: AuthContext<'_>| {
        if matches!(
            ctx.action,
            AuthAction::Attach { .. } | AuthAction::Detach { .. }
        ) {
            return Authorization::Deny;
        }
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        // D1 refuses to prepare a statement that calls one.
        if let AuthAction::Function { function_name } = ctx.action
            && !crate::gate::d1_allows_function(function_name)
        {
            seen.d1_refuses
                .get_or_insert_with(|| function_name.to_ascii_lowercase());
            return Authorization::Deny;
        }
        seen.writes.extend(Write::of(&ctx));
        if let AuthAction::CreateTrigger {
            table_name,
            trigger_name,
        }
        | AuthAction::CreateTempTrigger {
            table_name,
            trigger_name,
        } = ctx.action
        {
            seen.triggers_on.push(table_name.to_owned());
            seen.triggers.push(trigger_name.to_owned());
        }
        // A DROP TABLE or an ALTER deletes or rewrites the rows first: it
        // is told by what it does to the table.
        if let Some(does) = touches_migrations_table(&ctx)
            && seen.migrations_table.is_none_or(|was| was == "writes")
        {
            seen.migrations_table = Some(does);
        }
        Authorization::Allow
    }))?;
    let deadline: Deadline = Arc::default();
    let watched = Arc::clone(&deadline);
    let ceiling = trial_memory();
    db.progress_handler(
        1000,
        Some(move || {
            let deadline = watched.lock().unwrap_or_else(PoisonError::into_inner);
            crate::interrupt::received().is_some()
                || deadline.is_some_and(|d| Instant::now() > d)
                || ceiling.is_some_and(|c| c.passed())
        }),
    )?;
    db.execute_batch("PRAGMA foreign_keys = ON")?;
    Ok((writes, deadline, ceiling))
}

/// SQLite's schema table, under any of its names.
fn is_schema_table(table: &str) -> bool {
    [
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(table))
}

/// Of the writes one statement was coded to make, those of its foreign
/// keys' actions: the first write outside a trigger is the statement's own
/// (its table is the target); a later one outside a trigger, to another
/// table, is an action's. SQLite's own tables are left out.
pub fn side_writes_of(migration: &str, writes: &[Write]) -> Vec<SideWrite> {
    let mut outside = writes
        .iter()
        .filter(|w| w.inner.is_none() && !w.table.to_ascii_lowercase().starts_with("sqlite_"));
    let Some(own) = outside.next() else {
        return Vec::new();
    };
    let statement = match own.kind {
        WriteKind::DropTable => "DROP TABLE",
        WriteKind::Delete => "DELETE from",
        WriteKind::Update => "UPDATE of",
        WriteKind::Insert => "INSERT into",
    };
    let mut by_table: BTreeMap<String, SideWrite> = BTreeMap::new();
    for write in outside.filter(|w| !w.table.eq_ignore_ascii_case(&own.table)) {
        let side = by_table
            .entry(write.table.clone())
            .or_insert_with(|| SideWrite {
                migration: migration.to_owned(),
                statement,
                target: own.table.clone(),
                table: write.table.clone(),
                deletes: false,
                sets: Vec::new(),
            });
        match (write.kind, &write.column) {
            (WriteKind::Delete, _) => side.deletes = true,
            (WriteKind::Update, Some(column)) if !side.sets.contains(column) => {
                side.sets.push(column.clone())
            }
            _ => {}
        }
    }
    by_table
        .into_values()
        .filter(|s| s.deletes || !s.sets.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE "Post" (id INTEGER PRIMARY KEY,
            authorId INTEGER REFERENCES "User"(id) ON DELETE SET NULL ON UPDATE CASCADE);
        CREATE TABLE "Comment" (id INTEGER PRIMARY KEY,
            postId INTEGER NOT NULL REFERENCES "Post"(id) ON DELETE CASCADE);
        CREATE TABLE "Tag" (id INTEGER PRIMARY KEY, userId INTEGER REFERENCES "User"(id));
        CREATE TABLE "Log" (id INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER post_gone AFTER DELETE ON "Post" BEGIN
            INSERT INTO "Log"(what) VALUES ('post gone'); END;
        CREATE TABLE app_settings (k TEXT PRIMARY KEY, v TEXT);
    "#;

    /// The target's schema, a statement each, as its catalog gives it.
    fn schema() -> Vec<String> {
        d1_sql::statements::Statements::new(SCHEMA.as_bytes())
            .map(|s| s.unwrap().sql)
            .collect()
    }

    /// [`schema`] and the migrations table, as wrangler makes it.
    fn with_migrations_table() -> Vec<String> {
        let mut target = schema();
        target.push(
            "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             name TEXT UNIQUE, applied_at TIMESTAMP)"
                .to_owned(),
        );
        target
    }

    fn migration(sql: &str) -> Vec<(String, String)> {
        vec![("0002_change.sql".to_owned(), sql.to_owned())]
    }

    fn side(sql: &str) -> Vec<SideWrite> {
        let found = side_writes(&schema(), &migration(sql)).unwrap();
        assert_eq!(found.unknown, Vec::<String>::new());
        found.side_writes
    }

    /// Prisma's `RedefineTables`, as `prisma migrate diff` writes it.
    const PRISMA_REDEFINES_USER: &str = r#"
        PRAGMA defer_foreign_keys=ON;
        PRAGMA foreign_keys=OFF;
        CREATE TABLE "new_User" (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
        INSERT INTO "new_User" (id, name) SELECT id, name FROM "User";
        DROP TABLE "User";
        ALTER TABLE "new_User" RENAME TO "User";
        PRAGMA foreign_keys=ON;
        PRAGMA defer_foreign_keys=OFF;
    "#;

    /// rvAJ: a statement's text keeps a block comment written before it
    /// (`/* … */`, as a header or a generated migration has it), so its
    /// first word is `/*`: its cascade is still found, and the plan is not
    /// silent on a DROP TABLE that deletes every comment.
    #[test]
    fn a_statement_after_a_comment_has_its_actions_found() {
        for sql in [
            "/* Post is redefined */ DROP TABLE \"Post\";",
            "/* the old posts go */\nDELETE FROM \"Post\";",
        ] {
            assert!(
                !side(sql).is_empty(),
                "side_writes finds no action of {sql:?}"
            );
        }
    }

    /// rvAJ: a plain INSERT fires the target's triggers, and a trigger
    /// that deletes a parent row runs that key's ON DELETE CASCADE (a
    /// "purge" queue table, a soft-delete log): the plan names the child
    /// rows deleted.
    #[test]
    fn an_insert_whose_trigger_deletes_a_parent_has_its_cascade_found() {
        let schema: Vec<String> = d1_sql::statements::Statements::new(
            "CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (id INTEGER PRIMARY KEY,
                 p INTEGER REFERENCES p(id) ON DELETE CASCADE);
             CREATE TABLE purge (id INTEGER);
             CREATE TRIGGER purge_it AFTER INSERT ON purge BEGIN
                 DELETE FROM p WHERE id = NEW.id; END;"
                .as_bytes(),
        )
        .map(|s| s.unwrap().sql)
        .collect();
        let pending = migration("INSERT INTO purge VALUES (1);");
        let found = side_writes(&schema, &pending).unwrap();
        assert!(!found.side_writes.is_empty(), "{found:?}");
    }

    /// rvAJ: a `CREATE TABLE … AS SELECT` writes the schema, so
    /// `side_writes` runs it, rows and all, in memory. The copy has no
    /// value limit (the verify gate sets D1's 2 MB; `schema_copy` does not)
    /// and the 10 s deadline bounds time, not memory: `SELECT
    /// zeroblob(900000000) FROM` a few rows holds gigabytes before the
    /// deadline looks. D1 refuses any value over 2 MB, so such a
    /// statement cannot run there either: here it should stop as "does not
    /// run here" without allocating it. Shown at 3 MB, which D1 refuses.
    #[test]
    fn a_schema_statement_that_makes_a_value_d1_refuses_does_not_run_in_memory() {
        let found = side_writes(
            &schema(),
            &migration("CREATE TABLE big AS SELECT zeroblob(3000000) AS b;"),
        )
        .unwrap();
        assert_eq!(
            found.unknown.len(),
            1,
            "a 3 MB value, over D1's 2 MB limit, was made in memory: {found:?}"
        );
    }

    /// rvBR 1: each way a statement can change what wrangler reads of the
    /// applied migrations is told, with its migration and number, never
    /// its values (a trigger on another table that writes it, where a
    /// statement fires it); one that only reads the table, or names it in
    /// a value, is not.
    #[test]
    fn a_statement_that_writes_the_migrations_table_is_told_by_what_it_does() {
        let target = with_migrations_table();
        let said = |sql: &str| {
            let sql = format!("SELECT count(*) FROM d1_migrations;\n{sql}");
            side_writes(&target, &migration(&sql))
                .unwrap()
                .migrations_table
        };
        for (sql, at, does) in [
            (
                "INSERT INTO d1_migrations(name) VALUES ('0009_x.sql');",
                2,
                "writes",
            ),
            (
                "UPDATE \"D1_MIGRATIONS\" SET applied_at = 'secret';",
                2,
                "writes",
            ),
            ("DELETE FROM [d1_migrations];", 2, "writes"),
            (
                "ALTER TABLE d1_migrations RENAME COLUMN name TO n;",
                2,
                "alters",
            ),
            ("DROP TABLE d1_migrations;", 2, "drops"),
            (
                "CREATE TRIGGER t AFTER INSERT ON d1_migrations BEGIN SELECT 1; END;",
                2,
                "puts a trigger on",
            ),
            (
                "CREATE TRIGGER t AFTER INSERT ON \"Log\" BEGIN \
                 DELETE FROM d1_migrations; END;\nINSERT INTO \"Log\"(what) VALUES ('x');",
                2,
                "creates a trigger that writes",
            ),
        ] {
            assert_eq!(
                said(sql).as_deref(),
                Some(format!("0002_change.sql: its statement {at} {does} d1_migrations").as_str()),
                "{sql}"
            );
        }
        assert_eq!(
            said("INSERT INTO \"Log\"(what) VALUES ('d1_migrations');"),
            None
        );
    }

    /// rvBU: a trigger's firing statements were prepared right after its
    /// `CREATE TRIGGER` only, so a body that first names a table or column
    /// a later statement (or migration) makes did not prepare then, its
    /// write to d1_migrations was never seen, and the plan passed. Each
    /// trigger the migrations make is judged again after each migration;
    /// one whose body still does not prepare at the end cannot be judged
    /// and is told so. An honest trigger writing a later table passes.
    /// OU: a trigger the target already has whose body names what it
    /// lacks (applied by a first backup, which warns of it, or by hand)
    /// passed the plan once a pending migration made that, though its
    /// body then writes d1_migrations on every insert. It is judged after
    /// each pending migration, and named with the migration that made
    /// its body run; one whose body writes elsewhere passes, and so does
    /// one still unable to run.
    #[test]
    fn a_trigger_the_target_has_is_judged_once_a_pending_migration_makes_what_its_body_names() {
        let mut target = with_migrations_table();
        target.push(
            "CREATE TRIGGER t5 AFTER INSERT ON \"Log\" BEGIN \
             INSERT INTO never5(x) VALUES (1); DELETE FROM d1_migrations; END"
                .to_owned(),
        );
        let pending = |sql: &str| vec![("0003_make.sql".to_owned(), sql.to_owned())];
        let found = side_writes(&target, &pending("CREATE TABLE never5 (x INTEGER);")).unwrap();
        assert_eq!(
            found.migrations_table.as_deref(),
            Some(
                "0003_make.sql makes what the body of trigger t5 on Log, which the database \
                 has, names: from then on that body writes d1_migrations"
            )
        );
        for sql in ["CREATE TABLE other5 (x INTEGER);", "SELECT 1;"] {
            let found = side_writes(&target, &pending(sql)).unwrap();
            assert_eq!(found.migrations_table, None, "{sql}");
        }
        let honest = target[..target.len() - 1].iter().cloned().chain([
            "CREATE TRIGGER t6 AFTER INSERT ON \"Log\" BEGIN \
             INSERT INTO never6(x) VALUES (1); END"
                .to_owned(),
        ]);
        let honest: Vec<String> = honest.collect();
        let found = side_writes(&honest, &pending("CREATE TABLE never6 (x INTEGER);")).unwrap();
        assert_eq!(found.migrations_table, None);
    }

    #[test]
    fn a_trigger_whose_body_names_what_a_later_statement_makes_is_judged_once_it_is_there() {
        let target = with_migrations_table();
        let files = |sql: &[&str]| -> Vec<(String, String)> {
            { sql.iter().enumerate() }
                .map(|(n, sql)| (format!("000{}_x.sql", n + 2), (*sql).to_owned()))
                .collect()
        };
        let later_table = "CREATE TRIGGER t5 AFTER INSERT ON \"Log\" BEGIN \
                           INSERT INTO later5(x) VALUES (1); DELETE FROM d1_migrations; END;";
        let said = "0002_x.sql: its statement 1 creates trigger t5, whose body writes \
                    d1_migrations once the statements after it have run";
        for pending in [
            files(&[&format!("{later_table}\nCREATE TABLE later5 (x INTEGER);")]),
            files(&[later_table, "CREATE TABLE later5 (x INTEGER);"]),
            files(&[
                "CREATE TRIGGER t5 AFTER INSERT ON \"User\" BEGIN \
                 UPDATE \"User\" SET later_col = 1 WHERE id = NEW.id; \
                 UPDATE d1_migrations SET applied_at = 'x'; END;",
                "ALTER TABLE \"User\" ADD COLUMN later_col INTEGER;",
            ]),
            files(&[
                "CREATE TRIGGER t5 AFTER DELETE ON \"Log\" BEGIN \
                 INSERT INTO later5(x) VALUES (1); \
                 INSERT OR REPLACE INTO d1_migrations(name) VALUES ('0009_y.sql'); END;",
                "SELECT 1;",
                "CREATE TABLE later5 (x INTEGER);",
            ]),
        ] {
            let found = side_writes(&target, &pending).unwrap();
            assert_eq!(found.migrations_table.as_deref(), Some(said), "{pending:?}");
        }
        // A body that names what no migration makes cannot be judged,
        // whatever it writes.
        for body in [
            "INSERT INTO never6(x) VALUES (1); DELETE FROM d1_migrations;",
            "INSERT INTO never6(x) VALUES (1);",
        ] {
            let pending = files(&[
                &format!("CREATE TRIGGER t6 AFTER INSERT ON \"Log\" BEGIN {body} END;"),
                "CREATE TABLE later5 (x INTEGER);",
            ]);
            let found = side_writes(&target, &pending).unwrap();
            assert_eq!(found.migrations_table, None, "{body}");
            assert_eq!(
                found.unjudged_trigger.as_deref(),
                Some(
                    "0002_x.sql: its statement 1 creates trigger t6 on Log, whose body does \
                     not prepare here once every pending migration has run (no such table: \
                     main.never6)"
                ),
                "{body}"
            );
        }
        // One that writes a table a later migration makes, and one a later
        // migration drops, are judged and pass.
        let honest = files(&[
            "CREATE TRIGGER t7 AFTER INSERT ON \"Log\" BEGIN \
             INSERT INTO later7(x) VALUES (NEW.id); END;\n\
             CREATE TRIGGER t8 AFTER UPDATE ON \"Log\" BEGIN \
             INSERT INTO never8(x) VALUES (1); END;",
            "CREATE TABLE later7 (x INTEGER);\nDROP TRIGGER t8;",
        ]);
        let found = side_writes(&target, &honest).unwrap();
        assert_eq!(
            (found.migrations_table, found.unjudged_trigger),
            (None, None),
            "{honest:?}"
        );
    }

    /// rvBX: a trigger the target already has whose body names a table
    /// since dropped (restore warns it "cannot run") failed the firing
    /// statements of its table, and a harmless trigger a pending migration
    /// put on that table was refused as unjudged. Each pending trigger is
    /// judged with only the pending triggers there; one whose own body
    /// names what nothing makes, or that writes d1_migrations, still is.
    #[test]
    fn a_broken_trigger_the_target_already_has_leaves_a_pending_one_judged_on_its_own() {
        let mut target = with_migrations_table();
        target.push(
            "CREATE TRIGGER old_ad AFTER DELETE ON \"Log\" BEGIN \
             INSERT INTO old_log VALUES (OLD.id); END"
                .to_owned(),
        );
        let trigger = |name: &str, on: &str, body: &str| {
            format!("CREATE TRIGGER {name} AFTER INSERT ON \"{on}\" BEGIN {body} END;")
        };
        let audit = "CREATE TABLE log_audit (id INTEGER, at INTEGER);";
        for harmless in [
            trigger(
                "log_ai",
                "Log",
                "INSERT INTO log_audit VALUES (NEW.id, unixepoch());",
            ),
            // Its body fires the broken one: that is the target's fault.
            trigger("tag_ai", "Tag", "DELETE FROM \"Log\" WHERE id = NEW.id;"),
        ] {
            let pending = migration(&format!("{audit}\n{harmless}"));
            let found = side_writes(&target, &pending).unwrap();
            assert_eq!(
                (found.migrations_table, found.unjudged_trigger),
                (None, None),
                "{harmless}"
            );
        }
        let never = migration(&trigger(
            "log_ai",
            "Log",
            "INSERT INTO never6(x) VALUES (1);",
        ));
        assert_eq!(
            side_writes(&target, &never)
                .unwrap()
                .unjudged_trigger
                .as_deref(),
            Some(
                "0002_change.sql: its statement 1 creates trigger log_ai on Log, whose body \
                 does not prepare here once every pending migration has run (no such table: \
                 main.never6)"
            )
        );
        let writes = migration(&trigger("log_ai", "Log", "DELETE FROM d1_migrations;"));
        assert_eq!(
            side_writes(&target, &writes)
                .unwrap()
                .migrations_table
                .as_deref(),
            Some("0002_change.sql: its statement 1 creates a trigger that writes d1_migrations")
        );
    }

    #[test]
    fn a_prisma_redefinition_of_a_parent_table_sets_its_childrens_keys() {
        let found = side(PRISMA_REDEFINES_USER);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].describe(),
            "0002_change.sql: DROP TABLE User also sets Post.authorId through a foreign key's \
             action"
        );
    }

    #[test]
    fn dropping_a_table_others_reference_with_cascade_deletes_their_rows() {
        let found = side(r#"DROP TABLE "Post";"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].table, "Comment");
        assert!(found[0].deletes && found[0].sets.is_empty());
    }

    #[test]
    fn a_key_without_an_action_a_trigger_and_a_table_of_its_own_are_no_side_write() {
        // Tag's key has no action; Post's trigger writes Log as the app
        // means it to; a table referenced by none has nothing to change.
        let sql = r#"
            DROP TABLE "Tag"; DROP TABLE "Log"; CREATE TABLE "Log"(id INTEGER PRIMARY KEY);
            DELETE FROM "Comment"; UPDATE "User" SET name = 'x';
            INSERT INTO "User"(id, name) VALUES (1, 'a');
        "#;
        assert_eq!(side(sql), vec![]);
    }

    #[test]
    fn a_delete_an_update_of_a_key_and_a_replace_are_told_as_well() {
        let sql = r#"
            DELETE FROM "User" WHERE id > 10;
            UPDATE "User" SET id = id + 1000;
            INSERT OR REPLACE INTO "Post"(id) VALUES (1);
        "#;
        let said: Vec<(&str, String, String)> = side(sql)
            .into_iter()
            .map(|s| (s.statement, s.target, s.table))
            .collect();
        let said: Vec<(&str, &str, &str)> = said
            .iter()
            .map(|(s, t, c)| (*s, t.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("DELETE from", "User", "Post"),
                ("UPDATE of", "User", "Post"),
                ("INSERT into", "Post", "Comment"),
            ]
        );
    }

    #[test]
    fn migrations_run_in_order_on_the_schema_the_ones_before_made() {
        let pending = vec![
            (
                "0002_a.sql".to_owned(),
                r#"CREATE TABLE "Like" (id INTEGER PRIMARY KEY,
                    postId INTEGER REFERENCES "Post"(id) ON DELETE CASCADE);"#
                    .to_owned(),
            ),
            ("0003_b.sql".to_owned(), r#"DELETE FROM "Post";"#.to_owned()),
            // A table this run makes has no rows for its drop to act on.
            (
                "0004_c.sql".to_owned(),
                r#"CREATE TABLE "Album" (id INTEGER PRIMARY KEY);
                   CREATE TABLE "Photo" (id INTEGER PRIMARY KEY,
                       albumId INTEGER REFERENCES "Album"(id) ON DELETE CASCADE);
                   DROP TABLE "Album";"#
                    .to_owned(),
            ),
        ];
        let found = side_writes(&schema(), &pending).unwrap();
        let tables: Vec<(&str, &str)> = found
            .side_writes
            .iter()
            .map(|s| (s.migration.as_str(), s.table.as_str()))
            .collect();
        assert_eq!(tables, [("0003_b.sql", "Comment"), ("0003_b.sql", "Like")]);
    }

    #[test]
    fn a_statement_that_does_not_prepare_is_told_and_the_rest_are_still_judged() {
        // rvAH: one statement that does not run here threw away what the
        // whole run found. A table the app made outside the migrations is
        // in the target's schema, so a seed into it prepares.
        let pending = vec![
            (
                "0002_a.sql".to_owned(),
                "INSERT INTO nowhere VALUES (1);\nINSERT INTO app_settings VALUES ('t', 'd');"
                    .to_owned(),
            ),
            ("0003_b.sql".to_owned(), PRISMA_REDEFINES_USER.to_owned()),
        ];
        let found = side_writes(&schema(), &pending).unwrap();
        assert_eq!(
            found.unknown,
            ["0002_a.sql: its statement 1 does not prepare here (no such table: nowhere)"]
        );
        assert_eq!(found.side_writes.len(), 1, "{found:?}");
        assert_eq!(found.side_writes[0].migration, "0003_b.sql");
        assert_eq!(
            found.fails.as_ref(),
            found.unknown.first(),
            "a name not there"
        );
    }

    /// Only a statement that names what is not there, after every one
    /// before it prepared and ran, is known to fail in D1 too: after one
    /// that did not run here (a module SQLite here lacks), what it would
    /// have made is unknown, not missing.
    #[test]
    fn a_failure_is_known_only_when_nothing_before_it_was_unknown() {
        let known = vec![(
            "0002_a.sql".to_owned(),
            "CREATE TABLE t (id INTEGER PRIMARY KEY);\nDELETE FROM t WHERE nope = 1;".to_owned(),
        )];
        let found = side_writes(&schema(), &known).unwrap();
        assert_eq!(
            found.fails.as_deref(),
            Some("0002_a.sql: its statement 2 does not prepare here (no such column)")
        );
        let guessed = vec![(
            "0002_a.sql".to_owned(),
            "CREATE VIRTUAL TABLE v USING no_such_module(x);\nDELETE FROM v;".to_owned(),
        )];
        let found = side_writes(&schema(), &guessed).unwrap();
        assert_eq!(found.unknown.len(), 2, "{found:?}");
        assert_eq!(found.fails, None);
        // A target whose own virtual table is not made here: what names
        // it may be there in D1.
        let mut target = schema();
        target.push("CREATE VIRTUAL TABLE w USING no_such_module(x)".to_owned());
        let pending = vec![("0002_a.sql".to_owned(), "DELETE FROM w;".to_owned())];
        assert_eq!(side_writes(&target, &pending).unwrap().fails, None);
    }

    /// Making what the target's full schema holds, or dropping what it
    /// lacks, is known to fail in D1 too (OA 1); on the schema the applied
    /// migrations make (the target's unread), only a guess. The `IF NOT
    /// EXISTS` and `IF EXISTS` forms, and a drop before the same is made
    /// again, are no failure.
    #[test]
    fn making_what_is_there_or_dropping_what_is_not_fails_only_on_the_full_schema() {
        for (sql, why) in [
            ("CREATE TABLE \"Log\" (x);", "table \"Log\" already exists"),
            (
                "CREATE INDEX i ON \"Tag\"(id);\nCREATE INDEX i ON \"Tag\"(userId);",
                "index i already exists",
            ),
            (
                "ALTER TABLE \"Log\" ADD COLUMN what TEXT;",
                "duplicate column name: what",
            ),
            ("DROP INDEX nowhere;", "no such index: nowhere"),
            ("DROP TRIGGER nowhere;", "no such trigger: nowhere"),
            ("DROP VIEW nowhere;", "no such view: nowhere"),
            (
                "CREATE TABLE d1_migrations (x);",
                "table d1_migrations already exists",
            ),
        ] {
            let found = side_writes(&with_migrations_table(), &migration(sql)).unwrap();
            let said = found.fails.unwrap_or_default();
            assert!(
                said.ends_with(&format!("does not prepare here ({why})")),
                "{sql}: {said}"
            );
            let made_by = [("0001_init.sql".to_owned(), SCHEMA.to_owned())];
            let schema = &with_migrations_table()[schema().len()..];
            let guessed = side_writes_after(schema, &made_by, &migration(sql)).unwrap();
            assert_eq!(guessed.fails, None, "{sql}");
            assert_eq!(guessed.unknown.len(), 1, "{sql}: {guessed:?}");
        }
        let fine = "CREATE TABLE IF NOT EXISTS \"Log\" (x);\nDROP INDEX IF EXISTS nowhere;\n\
                    DROP TRIGGER IF EXISTS nowhere;\nDROP VIEW IF EXISTS nowhere;\n\
                    DROP TRIGGER post_gone;\nCREATE TRIGGER post_gone AFTER DELETE ON \"Post\" \
                    BEGIN SELECT 1; END;\nALTER TABLE \"Log\" RENAME TO old_log;\n\
                    CREATE TABLE \"Log\" (id INTEGER PRIMARY KEY, what TEXT);";
        let found = side_writes(&with_migrations_table(), &migration(fine)).unwrap();
        assert_eq!(found.unknown, Vec::<String>::new());
    }

    /// OC 1: a statement that breaks a trigger or view the target had is
    /// judged: one that fails SQLite's check of the schema after an ALTER
    /// TABLE fails in D1 too; one D1 applies that leaves it unable to run
    /// is found with the statement that broke it, unless a later
    /// statement of the same migration drops it; and one broken already
    /// is none of the migration's doing.
    #[test]
    fn a_statement_that_breaks_a_trigger_or_view_already_there_is_found() {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE log (x)",
                "CREATE TABLE gone (x)",
                "CREATE TABLE old (x)",
                "CREATE TRIGGER user_log AFTER INSERT ON \"User\" BEGIN \
                 INSERT INTO log VALUES (NEW.name); END",
                "CREATE TRIGGER log_gone AFTER INSERT ON log BEGIN \
                 INSERT INTO gone VALUES (1); END",
                "CREATE VIEW gone_v AS SELECT x FROM gone",
                "CREATE TRIGGER post_old AFTER INSERT ON \"Post\" BEGIN \
                 INSERT INTO old VALUES (1); END",
                "DROP TABLE old",
            ]
            .map(str::to_owned),
        );
        let found = |sql: &str| side_writes(&target, &migration(sql)).unwrap();
        let drop_column = found("ALTER TABLE \"User\" DROP COLUMN name;");
        assert_eq!(
            drop_column
                .fails
                .as_deref()
                .map(|f| f.split(" (SQLite").next().unwrap()),
            Some(
                "0002_change.sql: its statement 1 does not run here (error in trigger \
                 user_log after drop column: no such column)"
            ),
            "{drop_column:?}"
        );
        assert!(
            drop_column
                .fails
                .unwrap()
                .contains("drop trigger user_log in the same migration")
        );
        let drop_table = found("CREATE TABLE kept (x);\nDROP TABLE gone;");
        let breaks = drop_table.breaks.unwrap();
        assert!(
            breaks.starts_with(
                "0002_change.sql: its statement 2 leaves trigger log_gone on log unable to run \
                 (no such table: main.gone)"
            ),
            "{breaks}"
        );
        let fixed = found("DROP TABLE gone;\nDROP TRIGGER log_gone;\nDROP VIEW gone_v;");
        assert_eq!((fixed.fails, fixed.breaks), (None, None));
        let view = found("DROP TABLE gone;\nDROP TRIGGER log_gone;");
        assert!(
            view.breaks
                .unwrap()
                .starts_with("0002_change.sql: its statement 1 leaves view gone_v unable to run")
        );
    }

    /// rvCA 1, 3: a break is judged once every pending migration has run,
    /// as wrangler applies them all in one run: a view the first leaves
    /// unable to run and the next repairs is no break, one still broken
    /// names the statement that first broke it, and names are quoted as
    /// SQL would take them.
    #[test]
    fn a_break_is_judged_once_every_pending_migration_has_run() {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT)",
                "CREATE VIEW tag_names AS SELECT name FROM tags",
                "CREATE TABLE \"my tags\" (id INTEGER PRIMARY KEY, x TEXT)",
                "CREATE TABLE \"tag log\" (x TEXT)",
                "CREATE TRIGGER \"log tag\" AFTER INSERT ON \"tag log\" BEGIN \
                 INSERT INTO \"my tags\"(x) VALUES (NEW.x); END",
                "CREATE TRIGGER \"note it\" AFTER UPDATE ON \"my tags\" BEGIN \
                 INSERT INTO \"tag log\" VALUES (NEW.x); END",
            ]
            .map(str::to_owned),
        );
        let pending = |migrations: &[(&str, &str)]| {
            let pending: Vec<(String, String)> = { migrations.iter() }
                .map(|(name, sql)| (name.to_string(), sql.to_string()))
                .collect();
            side_writes(&target, &pending).unwrap()
        };
        let drop = ("0006_drop.sql", "DROP TABLE tags;");
        let make = (
            "0007_make.sql",
            "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT, color TEXT);",
        );
        let repaired = pending(&[drop, make]);
        assert_eq!((repaired.fails, repaired.breaks), (None, None));
        let other = ("0007_other.sql", "CREATE TABLE other (x);");
        let breaks = pending(&[drop, other]).breaks.unwrap();
        assert!(
            breaks.starts_with(
                "0006_drop.sql: its statement 1 leaves view tag_names unable to run \
                 (no such table: main.tags)"
            ),
            "{breaks}"
        );
        let breaks = pending(&[("0006_drop.sql", "DROP TABLE \"my tags\";")])
            .breaks
            .unwrap();
        assert!(
            breaks.contains("leaves trigger \"log tag\" on \"tag log\" unable to run")
                && breaks.contains("drop trigger \"log tag\" in the same migration"),
            "{breaks}"
        );
        let fails = pending(&[("0006_x.sql", "ALTER TABLE \"my tags\" DROP COLUMN x;")])
            .fails
            .unwrap();
        assert!(
            fails.contains("trigger \"note it\" names what is not there"),
            "{fails}"
        );
    }

    /// The app's notes and their external-content FTS5 index.
    fn with_notes_fts() -> Vec<String> {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, title TEXT)",
                "CREATE VIRTUAL TABLE notes_fts USING fts5(body, title UNINDEXED, \
                 content='notes', content_rowid='id')",
            ]
            .map(str::to_owned),
        );
        target
    }

    /// rvCJ 1: a statement that leaves an external-content FTS5 table
    /// without what it reads of its content table (the table, a column it
    /// indexes, its content_rowid) passed the plan, and from then on D1
    /// failed every search of it and every backup's rebuild of its index.
    /// It is found with the FTS5 table, what it reads and the fix; made
    /// again in the same migration reading the new names, it is no break.
    #[test]
    fn a_statement_that_leaves_an_fts5_table_without_what_it_reads_is_found() {
        let target = with_notes_fts();
        let breaks = |sql: &str| side_writes(&target, &migration(sql)).unwrap().breaks;
        for (sql, reads, why) in [
            (
                "ALTER TABLE notes RENAME COLUMN body TO text;",
                "column body of notes",
                "no such column: T.body",
            ),
            (
                "ALTER TABLE notes DROP COLUMN title;",
                "column title of notes",
                "no such column: T.title",
            ),
            (
                "ALTER TABLE notes RENAME COLUMN id TO note_id;",
                "column id of notes",
                "no such column: T.id",
            ),
            (
                "ALTER TABLE notes RENAME TO my_notes;",
                "notes, which is not there",
                "no such table: main.notes",
            ),
            (
                "DROP TABLE notes;",
                "notes, which is not there",
                "no such table: main.notes",
            ),
        ] {
            let said = breaks(sql).unwrap_or_else(|| panic!("{sql}: nothing found"));
            assert!(
                said.starts_with(&format!(
                    "0002_change.sql: its statement 1 leaves FTS5 table notes_fts unable to \
                     read its content ({why})"
                )),
                "{sql}: {said}"
            );
            assert!(said.contains(reads), "{sql}: {said}");
            assert!(
                said.contains("INSERT INTO notes_fts(notes_fts) VALUES('rebuild')"),
                "{sql}: {said}"
            );
        }
        let fixed = "ALTER TABLE notes RENAME COLUMN body TO text;\nDROP TABLE notes_fts;\n\
                     CREATE VIRTUAL TABLE notes_fts USING fts5(text, title UNINDEXED, \
                     content='notes', content_rowid='id');\n\
                     INSERT INTO notes_fts(notes_fts) VALUES('rebuild');";
        assert_eq!(breaks(fixed), None);
        assert_eq!(breaks("ALTER TABLE notes ADD COLUMN tags TEXT;"), None);
        assert_eq!(breaks("DROP TABLE notes_fts;\nDROP TABLE notes;"), None);
        let made_broken = "CREATE TABLE docs (id INTEGER PRIMARY KEY, text TEXT);\n\
                           CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs');";
        let said = breaks(made_broken).unwrap();
        assert!(
            said.starts_with(
                "0002_change.sql: its statement 2 leaves FTS5 table docs_fts unable to read \
                 its content (no such column: T.body)"
            ),
            "{said}"
        );
    }

    /// rvCJ 1: an FTS5 table the target had that already reads what its
    /// content table lacks is none of the pending migrations' doing; made
    /// again reading what is there, it is mended (a backup BAD for it
    /// names the migrations that mend it).
    #[test]
    fn an_fts5_table_broken_already_is_not_the_pending_migrations() {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",
                "CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', \
                 content_rowid='id')",
            ]
            .map(str::to_owned),
        );
        let found = side_writes(&target, &migration("CREATE TABLE kept (x);")).unwrap();
        assert_eq!((found.breaks, found.mended_fts), (None, vec![]));
        let again = "DROP TABLE notes_fts;\nCREATE VIRTUAL TABLE notes_fts USING fts5(text, \
                     content='notes', content_rowid='id');";
        let found = side_writes(&target, &migration(again)).unwrap();
        assert_eq!(
            (found.breaks, found.mended_fts),
            (None, vec!["notes_fts".to_owned()])
        );
    }

    /// rvCA 2: a foreign key a pending statement leaves without its parent
    /// table, or with a parent key that is neither PRIMARY KEY nor UNIQUE,
    /// is told as what it is, with the child, its key and the parent, the
    /// same with a trigger on either table or none, and the trigger is not
    /// blamed; one the target had already is none of the migration's doing.
    /// rvCE: a foreign key the target had that SQLite cannot code is
    /// mended once the pending migrations make its table again with a sound
    /// key, or give its parent key a UNIQUE index; not by a migration that
    /// leaves it. A backup BAD for it names the migrations that mend it.
    #[test]
    fn a_faulty_key_the_target_had_is_mended_by_the_migrations_that_repair_it() {
        let target = with_faulty_pc();
        let mended = |sql: &str| side_writes(&target, &migration(sql)).unwrap().mended_keys;
        let key = ["c(b) REFERENCES p(code)"];
        assert_eq!(
            mended(
                "CREATE TABLE c_new (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id));\n\
                 DROP TABLE c;\nALTER TABLE c_new RENAME TO c;"
            ),
            key
        );
        assert_eq!(mended("CREATE UNIQUE INDEX p_code ON p (code);"), key);
        assert!(mended("CREATE TABLE kept (x);").is_empty());
        assert!(mended("ALTER TABLE c RENAME COLUMN b TO code;").is_empty());
    }

    #[test]
    fn a_foreign_key_a_pending_statement_leaves_unable_to_run_is_told_as_such() {
        for trigger in [
            "",
            "CREATE TRIGGER legacy_child_stamp AFTER INSERT ON legacy_child BEGIN \
             UPDATE legacy_child SET note = 1 WHERE id = NEW.id; END",
        ] {
            let mut target = schema();
            target.extend(
                [
                    "CREATE TABLE legacy_parent (id INTEGER PRIMARY KEY)",
                    "CREATE TABLE legacy_child (id INTEGER PRIMARY KEY, \
                     parent_id INTEGER REFERENCES legacy_parent(id), note TEXT)",
                    "CREATE TABLE report_configs (id INTEGER PRIMARY KEY, name TEXT)",
                    "CREATE TRIGGER report_configs_touch AFTER DELETE ON report_configs \
                     BEGIN SELECT 1; END",
                    "CREATE TABLE old_parent (id INTEGER PRIMARY KEY)",
                    "CREATE TABLE old_child (p INTEGER REFERENCES old_parent(id))",
                    "DROP TABLE old_parent",
                    trigger,
                ]
                .map(str::to_owned),
            );
            target.retain(|s| !s.is_empty());
            let found = |sql: &str| side_writes(&target, &migration(sql)).unwrap();
            let dropped = found("CREATE TABLE kept (x);\nDROP TABLE legacy_parent;");
            let breaks = dropped.breaks.unwrap();
            assert!(
                breaks.starts_with(
                    "0002_change.sql: its statement 2 leaves the foreign key \
                     legacy_child(parent_id) REFERENCES legacy_parent(id) without its parent \
                     table legacy_parent"
                ) && !breaks.contains("trigger")
                    && !breaks.contains("ALTER TABLE that renames"),
                "{trigger}: {breaks}"
            );
            let mismatch = found(
                "CREATE TABLE report_refs (id INTEGER PRIMARY KEY, \
                 report_name TEXT REFERENCES report_configs(name));",
            );
            let breaks = mismatch.breaks.unwrap();
            assert!(
                breaks.starts_with(
                    "0002_change.sql: its statement 1 leaves the foreign key \
                     report_refs(report_name) REFERENCES report_configs(name) with a parent key \
                     that is neither its PRIMARY KEY nor UNIQUE (foreign key mismatch"
                ) && breaks.contains("CREATE UNIQUE INDEX")
                    && !breaks.contains("trigger"),
                "{trigger}: {breaks}"
            );
            let repaired = found(
                "CREATE TABLE report_refs (id INTEGER PRIMARY KEY, \
                 report_name TEXT REFERENCES report_configs(name));\n\
                 CREATE UNIQUE INDEX report_configs_name ON report_configs(name);\n\
                 DROP TABLE legacy_parent;\nCREATE TABLE legacy_parent (id INTEGER PRIMARY KEY);",
            );
            assert_eq!((repaired.fails, repaired.breaks), (None, None), "{trigger}");
        }
    }

    /// OJ 1: two foreign keys the pending statements leave unable to run,
    /// in two tables, are both told, each with its statement, its key as
    /// SQL names it and its fix, not the first alone.
    #[test]
    fn every_foreign_key_a_pending_statement_leaves_unable_to_run_is_told() {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE legacy_parent (id INTEGER PRIMARY KEY)",
                "CREATE TABLE legacy_child (id INTEGER PRIMARY KEY, \
                 parent_id INTEGER REFERENCES legacy_parent(id))",
                "CREATE TABLE \"report configs\" (id INTEGER PRIMARY KEY, name TEXT)",
            ]
            .map(str::to_owned),
        );
        let found = side_writes(
            &target,
            &migration(
                "DROP TABLE legacy_parent;\nCREATE TABLE report_refs (id INTEGER PRIMARY KEY, \
                 report_name TEXT REFERENCES \"report configs\"(name));",
            ),
        )
        .unwrap();
        let breaks = found.breaks.unwrap();
        for said in [
            "0002_change.sql: its statement 1 leaves the foreign key legacy_child(parent_id) \
             REFERENCES legacy_parent(id) without its parent table legacy_parent",
            "0002_change.sql: its statement 2 leaves the foreign key report_refs(report_name) \
             REFERENCES \"report configs\"(name) with a parent key that is neither",
            "give \"report configs\" a UNIQUE index on it",
        ] {
            assert!(breaks.contains(said), "{said}: {breaks}");
        }
    }

    #[test]
    fn rows_a_migration_inserts_are_never_run_so_their_keys_fail_nothing() {
        // rvAH: a seed that refers to a row the app made failed here at the
        // end of the migration, naming none. Rows do not change what a
        // statement is coded to do: they are prepared, not run.
        let pending = vec![
            (
                "0002_a.sql".to_owned(),
                r#"INSERT INTO "Post"(id, authorId) VALUES (1, 42);"#.to_owned(),
            ),
            ("0003_b.sql".to_owned(), r#"DROP TABLE "Post";"#.to_owned()),
        ];
        let found = side_writes(&schema(), &pending).unwrap();
        assert_eq!(found.unknown, Vec::<String>::new());
        assert_eq!(found.side_writes.len(), 1, "{found:?}");
    }

    #[test]
    fn a_migration_that_does_not_compile_is_told_without_its_values() {
        let sql = "INSERT INTO \"User\" VALUES (1, 'sk_live_51Hrv4HSecret')\n\
                   INSERT INTO \"User\" VALUES (2, 'second');\n";
        let found = side_writes(&schema(), &migration(sql)).unwrap();
        let said = found.unknown.join("; ");
        assert!(said.contains("0002_change.sql"), "{said}");
        assert!(
            !said.contains("sk_live_51Hrv4HSecret")
                && !said.contains("second")
                && !said.contains('\n'),
            "the plan quotes the migration's values: {said:?}"
        );
    }

    #[test]
    fn a_schema_statement_that_runs_for_ever_is_stopped_and_told() {
        // rvAH: a statement of a migration ran here without bound. A table
        // made `AS` a query that never ends is stopped at its memory
        // ceiling; a query that never ends, once never run (and in D1
        // stopped after 30 seconds), is stopped first (PV 2).
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c;\n\
                   CREATE TABLE numbers AS WITH RECURSIVE c(x) AS \
                   (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;\n";
        let found = side_writes(&schema(), &migration(sql)).unwrap();
        // Stopped by its memory ceiling, or by the trial's time on a loaded
        // machine: either way the plan refuses it (NL), never "does not
        // run here" and on.
        let at = found.unfinished.as_ref().map(|u| u.at.as_str());
        assert_eq!(at, Some("0002_change.sql: its statement 1"), "{found:?}");
        assert!(found.unknown.is_empty(), "{found:?}");
        let table_only = sql.split_inclusive(";\n").nth(1).unwrap();
        let found = side_writes(&schema(), &migration(table_only)).unwrap();
        let at = found.unfinished.as_ref().map(|u| u.at.as_str());
        assert_eq!(at, Some("0002_change.sql: its statement 1"), "{found:?}");
    }

    /// PV 2 (rvCN 2): a statement that writes rows from a query that never
    /// ends (`INSERT … SELECT` of a recursive one) was never run here, as
    /// it changes no schema: it is run, its rows undone, and stopped.
    #[test]
    fn a_row_statement_that_runs_for_ever_is_stopped_and_told() {
        let sql = "CREATE TABLE nums(n INTEGER);\n\
                   INSERT INTO nums VALUES (1);\n\
                   INSERT INTO nums WITH RECURSIVE r(n) AS \
                   (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r;\n";
        let found = side_writes(&schema(), &migration(sql)).unwrap();
        let at = found.unfinished.as_ref().map(|u| u.at.as_str());
        assert_eq!(at, Some("0002_change.sql: its statement 3"), "{found:?}");
        assert!(found.unknown.is_empty(), "{found:?}");
    }

    /// [`schema`] with the key c(b) → p(code), whose parent key is not
    /// UNIQUE.
    fn with_faulty_pc() -> Vec<String> {
        let mut target = schema();
        target.extend(
            [
                "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT)",
                "CREATE TABLE c (id INTEGER PRIMARY KEY, b TEXT REFERENCES p(code))",
            ]
            .map(str::to_owned),
        );
        target
    }

    /// rvCE 4: a statement that does not prepare for a foreign key the
    /// target already had faulty (Drizzle's rebuild copying rows into a
    /// new table that keeps it, a delete from its parent) fails in D1
    /// too, which enforces keys whatever `PRAGMA foreign_keys=OFF` says:
    /// told with the key and its fix. The rebuild with a sound key is not.
    #[test]
    fn a_statement_a_faulty_key_stops_preparing_is_known_to_fail_with_the_key() {
        let target = with_faulty_pc();
        let rebuild = |parent: &str| {
            format!(
                "PRAGMA foreign_keys=OFF;\nCREATE TABLE __new_c (id INTEGER PRIMARY KEY, \
                 b REFERENCES {parent});\nINSERT INTO __new_c SELECT id, b FROM c;\n\
                 DROP TABLE c;\nALTER TABLE __new_c RENAME TO c;\nPRAGMA foreign_keys=ON;"
            )
        };
        let found = |sql: &str| side_writes(&target, &migration(sql)).unwrap();
        let kept = found(&rebuild("p(code)")).fails.unwrap_or_default();
        for said in [
            "0002_change.sql: its statement 3 does not prepare here (foreign key mismatch",
            "the foreign key __new_c(b) REFERENCES p(code) has a parent key",
            "PRAGMA foreign_keys=OFF",
            "`CREATE UNIQUE INDEX … ON p(code)`",
        ] {
            assert!(kept.contains(said), "{said}: {kept}");
        }
        let deleted = found("DELETE FROM p WHERE id = 1;")
            .fails
            .unwrap_or_default();
        assert!(
            deleted.contains("the foreign key c(b) REFERENCES p(code)"),
            "{deleted}"
        );
        let mended = found(&rebuild("p(id)"));
        assert_eq!((mended.fails, mended.unknown), (None, Vec::<String>::new()));
    }
}
