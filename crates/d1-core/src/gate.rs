//! The SQL gate: the one place where SQL that this tool did not write is run.
//!
//! A dump, a manifest's virtual-table DDL and a target's schema are read from
//! files that someone else may have written. Whatever they say, they may only
//! do what loading a D1 dump needs: create tables, indexes, triggers, views
//! and FTS5 tables, insert rows, and reset `sqlite_sequence`. Every SQLite
//! connection that runs such SQL is a [`Gate`]: it runs with
//! `SQLITE_DBCONFIG_DEFENSIVE`, D1's length limits, and an authorizer that
//! denies everything else while it prepares a statement that came from a
//! file:
//!
//! - `ATTACH`, `DETACH` and `VACUUM` (they reach other files);
//! - `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints (they would break the
//!   all-or-nothing load);
//! - pragmas outside [`DUMP_PRAGMAS`];
//! - writes to `sqlite_schema` other than the ones a `CREATE` makes;
//! - any access to `_cf_*` tables, which workerd and D1 keep for themselves;
//! - `UPDATE`, `DELETE`, `DROP` and `ALTER`, except on the tables the repair
//!   itself creates and on `sqlite_sequence`;
//! - temporary objects, and virtual tables other than FTS5;
//! - functions that reach outside SQL values ([`DENIED_FUNCTIONS`]), and
//!   any function D1 does not allow ([`D1_FUNCTIONS`]), for the tool's own
//!   statements too (a migration's replay).
//!
//! The survey in [`crate::repair`] explains a refusal before anything runs;
//! this gate is what enforces it, whatever the survey missed.
//!
//! A row in the shape D1's exports write (see [`d1_sql::literal`]) is not
//! compiled: its values are read in Rust and bound to one prepared
//! statement per table and column list, which the authorizer judges when
//! it is prepared exactly as it would judge the row's own text (the
//! template names the same table and columns, and `replace()` and `char()`
//! are the only functions a row of that shape calls). D1's limits still
//! hold: a statement over 100 KB is run as SQL and fails as before, and a
//! bound value over 2 MB fails as the literal would. Every other statement
//! may change the schema, so it drops the prepared rows, which are then
//! judged again against the new schema (its triggers included).

use std::sync::{Arc, Mutex, PoisonError};

use d1_sql::literal::Row;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, config::DbConfig, limits::Limit};

/// D1 refuses a statement longer than 100 KB.
pub const D1_STATEMENT_LIMIT: i32 = 100_000;
/// The longest statement D1 runs, in bytes as sent, its `;` counted:
/// measured with the pinned wrangler's local D1, a statement of 99,999
/// bytes runs and one of 100,000 is refused (`statement too long:
/// SQLITE_TOOBIG`), with or without its `;`.
pub const D1_LONGEST_STATEMENT: usize = D1_STATEMENT_LIMIT as usize - 1;
/// D1 refuses a string, BLOB or row larger than 2 MB.
pub const D1_VALUE_LIMIT: i32 = 2_000_000;

/// D1's other limits on what a statement may say, each measured with the
/// pinned wrangler's local D1 (workerd sets them with `sqlite3_limit`;
/// SQLite's defaults are far higher, so a plain load passes what D1
/// refuses): a table of 101 columns is `too many columns on t`, an
/// expression 101 deep `Expression tree is too large (maximum depth
/// 100)`, a compound SELECT of 6 terms `too many terms in compound
/// SELECT`, a LIKE pattern of 51 bytes `LIKE or GLOB pattern too complex`;
/// triggers fire at most 10 deep. Each is set while a statement from a
/// file is prepared ([`Gate::set_untrusted`]): D1 refuses it as written,
/// and the tool's own queries of a loaded database (a content digest over
/// a table's 100 columns and its rowid) are not D1's to judge. The run-time
/// ones hold for the whole connection. D1's limit of 100 bound parameters
/// binds nothing a dump holds: a dump's values are literals, and a row
/// bound here binds one value per column, at most 100.
pub const D1_PREPARE_LIMITS: &[(Limit, i32)] = &[
    (Limit::SQLITE_LIMIT_COLUMN, D1_COLUMN_LIMIT),
    (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
    (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 5),
];

/// D1's run-time limits, set on every gated connection (see
/// [`D1_PREPARE_LIMITS`]).
const D1_RUN_LIMITS: &[(Limit, i32)] = &[
    (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50),
    (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 10),
];

/// D1 refuses a table of more than 100 columns.
pub const D1_COLUMN_LIMIT: i32 = 100;

/// What is said after SQLite's `too many columns on t`, which names the
/// table but not the limit.
pub const OVER_D1_COLUMN_LIMIT: &str = "D1 allows at most 100 columns in a table (local \
     SQLite allows 2,000; D1 refuses the CREATE, and a local D1 file holding such a table \
     answers no query at all): split the table into tables of at most 100 columns, joined \
     by its key";

/// What is said of a value or a row over [`D1_VALUE_LIMIT`] (local D1
/// holds one; D1 does not), after what holds it: why no restore can load
/// it, and the fix.
pub const OVER_D1_VALUE_LIMIT: &str = "over D1's limit of 2,000,000 bytes on a string, BLOB \
     or row (local D1 holds more; D1 does not), so no restore can load it into D1. Shrink the \
     value or move it out of D1 (into R2, say, keeping its key in the row)";

/// [`OVER_D1_VALUE_LIMIT`] of a row whose values each fit, not together:
/// the row itself is too big, and no split of its statement makes it fit.
pub const OVER_D1_ROW_LIMIT: &str = "over D1's limit of 2,000,000 bytes on a string, BLOB \
     or row (local D1 holds more; D1 does not), so no restore can load it into D1. The row \
     itself is too big for D1, its values each within the limit but not together: spread its \
     values across rows or tables (a side table keyed by the row's key), or move a large value \
     out of D1 (into R2, say, keeping its key in the row)";

/// [`OVER_D1_VALUE_LIMIT`] of values and rows together: each's fix.
pub const OVER_D1_VALUE_OR_ROW_LIMIT: &str = "over D1's limit of 2,000,000 bytes on a string, \
     BLOB or row (local D1 holds more; D1 does not), so no restore can load it into D1. Shrink \
     a value or move it out of D1 (into R2, say, keeping its key in the row); spread a row too \
     big whose values each fit across rows or tables, or move a large value of it out of D1";

/// What [`OVER_D1_VALUE_LIMIT`] and [`OVER_D1_ROW_LIMIT`] both say first.
pub const OVER_D1_LIMIT: &str = "so no restore can load it into D1";

/// The only pragmas a dump may run.
pub const DUMP_PRAGMAS: &[&str] = &["defer_foreign_keys"];

/// Functions no dump may call: they load code, reach files or expose
/// SQLite's internals (D1 refuses them too).
pub const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "fts5",
    "readfile",
    "writefile",
    "edit",
    "fsdir",
];

/// The functions D1 lets a statement call, as workerd's authorizer lists
/// them (`ALLOWED_SQLITE_FUNCTIONS` in workerd's
/// `src/workerd/util/sqlite.c++`, read at its tag v1.20260822.1), by the
/// SQLite page that documents them. D1 refuses every other, with `not
/// authorized to use function: NAME`: SQLite's `if()` (write `iif()`),
/// `subtype()`, `unistr()`, `json_pretty()`, `json_error_position()`,
/// `fts5_source_id()`, `sqlite_version()`. The pinned wrangler's local D1
/// (workerd 1.20261117.1) refuses and runs what the gate does
/// (`hostile_dumps::the_gate_refuses_the_functions_local_d1_refuses_and_no_others`).
/// Two that workerd lists do not run in D1 all the same: `load_extension`
/// (extension loading is off; D1 answers "not authorized" too, and the
/// gate denies it to everyone, [`DENIED_FUNCTIONS`]) and `soundex` (not
/// compiled in: "no such function", here too). ALTER TABLE's own
/// functions are D1's for its ALTER only: a dump may call none.
pub const D1_FUNCTIONS: &[(&str, &[&str])] = &[
    (
        "core (lang_corefunc.html)",
        &[
            "abs",
            "changes",
            "char",
            "coalesce",
            "concat",
            "concat_ws",
            "format",
            "glob",
            "hex",
            "ifnull",
            "iif",
            "instr",
            "last_insert_rowid",
            "length",
            "like",
            "likelihood",
            "likely",
            "load_extension",
            "lower",
            "ltrim",
            "max_scalar",
            "min_scalar",
            "nullif",
            "octet_length",
            "printf",
            "quote",
            "random",
            "randomblob",
            "replace",
            "round",
            "rtrim",
            "sign",
            "soundex",
            "substr",
            "substring",
            "total_changes",
            "trim",
            "typeof",
            "unhex",
            "unicode",
            "unlikely",
            "upper",
            "zeroblob",
        ],
    ),
    (
        "date and time (lang_datefunc.html)",
        &[
            "date",
            "time",
            "datetime",
            "julianday",
            "unixepoch",
            "strftime",
            "timediff",
            "current_date",
            "current_time",
            "current_timestamp",
        ],
    ),
    (
        "aggregate (lang_aggfunc.html)",
        &[
            "avg",
            "count",
            "group_concat",
            "max",
            "min",
            "string_agg",
            "sum",
            "total",
        ],
    ),
    (
        "window (windowfunctions.html)",
        &[
            "row_number",
            "rank",
            "dense_rank",
            "percent_rank",
            "cume_dist",
            "ntile",
            "lag",
            "lead",
            "first_value",
            "last_value",
            "nth_value",
        ],
    ),
    (
        "math (lang_mathfunc.html)",
        &[
            "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "cos", "cosh",
            "degrees", "exp", "floor", "ln", "log", "log2", "mod", "pi", "pow", "radians", "sin",
            "sinh", "sqrt", "tan", "tanh", "trunc",
        ],
    ),
    (
        "JSON (json1.html)",
        &[
            "json",
            "jsonb",
            "json_array",
            "jsonb_array",
            "json_array_length",
            "json_extract",
            "jsonb_extract",
            "->",
            "->>",
            "json_insert",
            "jsonb_insert",
            "json_object",
            "jsonb_object",
            "json_patch",
            "jsonb_patch",
            "json_remove",
            "jsonb_remove",
            "json_replace",
            "jsonb_replace",
            "json_set",
            "jsonb_set",
            "json_type",
            "json_valid",
            "json_quote",
            "json_group_array",
            "jsonb_group_array",
            "json_group_object",
            "jsonb_group_object",
            "json_each",
            "json_tree",
        ],
    ),
    (
        "FTS5 (fts5.html)",
        &["match", "highlight", "bm25", "snippet"],
    ),
    ("R*Tree (rtree.html)", &["rtreecheck"]),
    ("ALTER TABLE's own (lang_altertable.html)", ALTER_FUNCTIONS),
];

/// Whether D1 lets a statement call the function `name` ([`D1_FUNCTIONS`]).
pub fn d1_allows_function(name: &str) -> bool {
    { D1_FUNCTIONS.iter() }.any(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

/// `NAME(), a function D1 does not allow (…)` of a function SQLite knows
/// (`name`, in lower case) that D1 does not allow ([`D1_FUNCTIONS`]), with
/// what to write instead where there is one: what a refusal of a call says
/// after "calls".
pub fn d1_refused_function(name: &str) -> String {
    let instead = match name {
        "if" => "; write iif(), which D1 allows",
        "unistr" => "; restore rewrites a sqlite3 .dump's unistr('…') in rows with char()",
        _ => "",
    };
    format!(
        "{name}(), a function D1 does not allow (D1 answers `not authorized to use function: \
         {name}`; it allows a list of SQLite's functions, d1_core::gate::D1_FUNCTIONS{instead})"
    )
}

const SCHEMA_WRITE: &str = "it writes sqlite_schema directly, which can corrupt the database";

/// Whether a statement from a file holds a query that could write without
/// end, judged once it is prepared (SQLite reports a query's parts in no
/// fixed order). A dump holds its rows as values: an INSERT of one row
/// holds no query, and one of several rows, or an oversized row's values
/// read by the repair, holds one (its `VALUES`) that reads no table. A
/// query that reads a table (an `INSERT … SELECT`, a subquery, `CREATE
/// TABLE … AS`, `RETURNING`), or two queries (a join of `VALUES` lists, a
/// `MATERIALIZED` CTE), can write rows and temporary files without end,
/// past any bound on the database, in the 120 seconds a statement has. Only
/// the repair's own queries read its own tables, whose names no dump can
/// know. A trigger's body is compiled with the statement that fires it and
/// judged with it: a restore drops the target's triggers before its rows
/// and creates a dump's after them, so none fires on a row.
fn query_refusal(state: &State) -> Option<Refusal> {
    if state.rows_as_values {
        return None;
    }
    let why = |what: String| {
        Some(Refusal(format!(
            "{what}; a dump holds its rows as values, and a query can write rows and temporary \
             files without end"
        )))
    };
    match (&state.reads_other, state.queries) {
        (Some(table), 1..) if !state.reads_own => why(format!(
            "it reads {} in a query",
            crate::names::shown_name(table)
        )),
        (_, 2..) if !state.reads_own => why("it holds queries within a query".to_owned()),
        _ => None,
    }
}

/// Why the gate refused a statement, without its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What running one statement from a file gave.
#[derive(Debug)]
pub enum Outcome {
    Ran,
    /// The gate refused it: the statement is not one a dump may hold.
    Refused(Refusal),
    /// SQLite ran it and failed (a constraint, a missing table, ...).
    Failed(rusqlite::Error),
}

/// How many prepared row statements a gate keeps (a dump's rows come table
/// by table, so one would do).
const ROW_STATEMENTS: usize = 32;

/// How long one statement from a file may run. D1 stops a query after 30
/// seconds; this leaves room for a slower machine.
pub const STATEMENT_SECONDS: u64 = 120;

/// How far the statements of a file may grow their database: by 64 MiB,
/// and by 16 times the SQL read so far (a database loaded from a dump is
/// about its size; its indexes add a few times that at most), never past
/// D1's 10 GB. Time alone bounds a statement too loosely: in its 120
/// seconds an `INSERT … SELECT` over a join or of `zeroblob`s writes tens
/// of gigabytes.
const GROWTH_FLOOR: u64 = 64 << 20;

/// The extended code of the error a statement fails with when it would
/// grow a database held in memory past its bound
/// ([`Gate::hold_in_memory_to`]): `SQLITE_FULL`, so that it is told as
/// the machine's, not the SQL's, with a code of its own no SQLite error
/// has ([`held_to_memory`]).
const HELD_TO_MEMORY: std::ffi::c_int = rusqlite::ffi::SQLITE_FULL | (0xd1 << 8);

/// What a statement that failed at its database's bound in memory
/// ([`Gate::hold_in_memory_to`]) was told: the whole message, with the
/// fix, which no other cause applies to.
pub fn held_to_memory(e: &rusqlite::Error) -> Option<&str> {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(told)) if f.extended_code == HELD_TO_MEMORY => {
            Some(told)
        }
        _ => None,
    }
}
const GROWTH_PER_BYTE: u64 = 16;
const D1_DATABASE_LIMIT: u64 = 10_000_000_000;

/// The memory an FTS5 command from a file may use, its temporary tables
/// and sorts included.
const COMMAND_MEMORY: u64 = 512 << 20;

/// Why an FTS5 command past [`COMMAND_MEMORY`] is refused.
fn command_memory_refusal() -> String {
    format!(
        "it needs more than {} MB of memory to run (the query of an FTS5 table's content, a \
         view that sorts or joins without bound)",
        COMMAND_MEMORY >> 20
    )
}

/// The bound on a gated database's growth, raised as SQL is read.
struct Growth {
    base_pages: u64,
    page_size: u64,
    /// Bytes of SQL from files run so far.
    read: std::cell::Cell<u64>,
    /// When `read` reaches this, the bound is raised.
    next: std::cell::Cell<u64>,
    /// For a database held in memory: the most it may hold, and what a
    /// statement that would grow it further fails with
    /// ([`Gate::hold_in_memory_to`]).
    memory: std::cell::OnceCell<(u64, String)>,
    /// That bound is below the gate's own, so it is what stops a statement.
    memory_binds: std::cell::Cell<bool>,
}

#[derive(Debug, Default)]
struct State {
    /// Set while a statement from a file is prepared.
    untrusted: bool,
    /// Set while a statement from a file runs: what SQLite compiles then
    /// (a pragma table's own pragma, FTS5's queries) is judged too.
    running: Option<std::time::Instant>,
    /// Why the last statement was interrupted.
    interrupted: Option<String>,
    /// How long a statement may run, when not STATEMENT_SECONDS (tests).
    budget_seconds: Option<u64>,
    /// An interrupt does not stop its statements ([`Gate::memory_to_finish`]).
    finishes: bool,
    /// When every statement, this tool's own too, stops ([`Gate::until`]).
    until: Option<std::time::Instant>,
    /// The most memory the process may hold while any statement runs
    /// ([`Gate::until`]).
    until_memory: Option<crate::room::MemoryCeiling>,
    /// While an FTS5 command runs: the most memory the process may hold.
    memory_ceiling: Option<crate::room::MemoryCeiling>,
    /// The first action denied in the statement being prepared.
    denied: Option<String>,
    /// The statement writes `sqlite_schema`.
    schema_write: bool,
    /// The queries the statement holds: a SELECT of its own, a subquery, a
    /// multi-row VALUES, a CTE, a trigger body's (see [`query_refusal`]).
    queries: u32,
    /// The statement reads one of the repair's own tables.
    reads_own: bool,
    /// The first other table the statement reads.
    reads_other: Option<String>,
    /// The statement is rows as values, by its text: what SQLite reads to
    /// run it (a self-referencing foreign key, many rows) is not a query.
    rows_as_values: bool,
    /// The statement creates or drops a schema object.
    ddl: bool,
    /// Triggers a statement from a file may drop: those the repair drops
    /// before a clean restore's rows and creates again after them.
    droppable_triggers: std::collections::BTreeSet<String>,
    /// Tables (lower case) a statement from a file may empty (or change,
    /// through a foreign key's action) before any row goes into them: those
    /// a clean restore's migrations seeded, whose rows the dump holds all of.
    emptiable: std::collections::BTreeSet<String>,
    /// Tables (lower case) a row has been inserted into.
    inserted: std::collections::BTreeSet<String>,
    /// The statement empties one of `emptiable`: the rows of other tables
    /// its foreign keys' actions change (SET NULL, CASCADE), which SQLite
    /// asks about while preparing it, are part of that emptying.
    emptying: bool,
    /// The database's virtual tables (lower case), those a statement from
    /// a file creates included.
    virtual_tables: std::collections::BTreeSet<String>,
    /// The statement being prepared writes to a virtual table: an FTS5
    /// table's row or command (see [`Gate::bounded`]).
    writes_virtual: bool,
}

impl State {
    /// Whether a statement has run past [`Gate::until`]'s time or memory.
    fn past_until(&self) -> bool {
        self.until.is_some_and(|t| std::time::Instant::now() >= t)
            || self.until_memory.is_some_and(|ceiling| ceiling.passed())
    }

    /// A state for the next statement: what lasts across statements moved
    /// over, the rest as new.
    fn next(&mut self, untrusted: bool, running: Option<std::time::Instant>) -> State {
        State {
            untrusted,
            running,
            budget_seconds: self.budget_seconds,
            finishes: self.finishes,
            until: self.until,
            until_memory: self.until_memory,
            memory_ceiling: self.memory_ceiling,
            droppable_triggers: std::mem::take(&mut self.droppable_triggers),
            emptiable: std::mem::take(&mut self.emptiable),
            inserted: std::mem::take(&mut self.inserted),
            virtual_tables: std::mem::take(&mut self.virtual_tables),
            ..State::default()
        }
    }
}

/// A SQLite connection that runs SQL from files under the gate's rules.
pub struct Gate {
    db: Connection,
    state: Arc<Mutex<State>>,
    growth: Growth,
}

impl Gate {
    /// Puts `db` under the gate.
    pub fn new(mut db: Connection) -> rusqlite::Result<Gate> {
        db.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, true)?;
        db.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, D1_STATEMENT_LIMIT)?;
        db.set_limit(Limit::SQLITE_LIMIT_LENGTH, D1_VALUE_LIMIT)?;
        db.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        for &(limit, value) in D1_RUN_LIMITS {
            db.set_limit(limit, value)?;
        }
        // One prepared row statement per table and column list.
        db.set_prepared_statement_cache_capacity(ROW_STATEMENTS);
        let state = Arc::new(Mutex::new(State::default()));
        let seen = Arc::clone(&state);
        db.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut state = seen.lock().unwrap_or_else(PoisonError::into_inner);
            let verdict = match state.running {
                Some(_) => judge_running(&ctx),
                None => judge(&mut state, &ctx),
            };
            match verdict {
                Ok(()) => Authorization::Allow,
                Err(why) => {
                    state.denied.get_or_insert(why);
                    Authorization::Deny
                }
            }
        }))?;
        // An interrupt stops any statement, and a statement from a file stops
        // after STATEMENT_SECONDS (a recursive query can run for ever), or
        // an FTS5 command past its memory (see `Gate::bounded`). Every 100
        // steps: a step allocates at most a value of D1_VALUE_LIMIT, so a
        // command overshoots its bound by some tens of MB at most.
        let watched = Arc::clone(&state);
        db.progress_handler(
            100,
            Some(move || {
                let mut state = watched.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(signal) = crate::interrupt::received().filter(|_| !state.finishes) {
                    state.interrupted = Some(format!("interrupted by signal {signal}"));
                    return true;
                }
                if state.memory_ceiling.is_some_and(|ceiling| ceiling.passed()) {
                    state.interrupted = Some(command_memory_refusal());
                    return true;
                }
                if state.past_until() {
                    state.interrupted = Some("it ran out of time or memory".to_owned());
                    return true;
                }
                let budget = state.budget_seconds.unwrap_or(STATEMENT_SECONDS);
                if state
                    .running
                    .is_some_and(|t| t.elapsed().as_secs() >= budget)
                {
                    state.interrupted = Some(format!(
                        "it ran for over {STATEMENT_SECONDS} seconds (D1 stops a query after 30)"
                    ));
                    return true;
                }
                false
            }),
        )?;
        let pragma = |name: &str| {
            db.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(1) as u64)
        };
        let growth = Growth {
            base_pages: pragma("page_count")?,
            page_size: pragma("page_size")?,
            read: 0.into(),
            next: 0.into(),
            memory: std::cell::OnceCell::new(),
            memory_binds: false.into(),
        };
        let gate = Gate { db, state, growth };
        gate.read(0)?;
        gate.connect_virtual_tables()?;
        Ok(gate)
    }

    /// Connects the database's virtual tables as the tool's own: FTS5 reads
    /// its `_config` table in a query when a connection first uses a table,
    /// which within a statement from a file would read as the file's query.
    /// (A virtual table the load creates is connected as it is created.)
    fn connect_virtual_tables(&self) -> rusqlite::Result<()> {
        let names = self
            .db
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND sql LIKE 'CREATE VIRTUAL TABLE%'",
            )?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for name in &names {
            // One that cannot be connected fails where the load uses it.
            let _ = self.db.prepare(&format!(
                "SELECT 1 FROM {} LIMIT 0",
                crate::statement::quote_ident(name)
            ));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .virtual_tables
            .extend(names.iter().map(|n| n.to_lowercase()));
        Ok(())
    }

    /// Counts `bytes` of SQL from a file as read, and raises the bound on
    /// the database's growth with each MiB of it.
    fn read(&self, bytes: usize) -> rusqlite::Result<()> {
        let g = &self.growth;
        let read = g.read.get() + bytes as u64;
        g.read.set(read);
        if read < g.next.get() {
            return Ok(());
        }
        g.next.set(read + (1 << 20));
        self.bound()
    }

    /// Sets the bound on the database's growth: the gate's, for the SQL
    /// read so far, or the memory it is held to, whichever is lower.
    fn bound(&self) -> rusqlite::Result<()> {
        let g = &self.growth;
        let room = GROWTH_FLOOR.saturating_add(g.read.get().saturating_mul(GROWTH_PER_BYTE));
        let gates = (g.base_pages + room / g.page_size)
            .min((D1_DATABASE_LIMIT / g.page_size).max(g.base_pages));
        let memory = { g.memory.get() }.map(|(most, _)| (most / g.page_size).max(g.base_pages));
        g.memory_binds.set(memory.is_some_and(|m| m < gates));
        let pages = memory.map_or(gates, |m| m.min(gates));
        self.db
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
    }

    /// Holds a database in memory to `most` bytes, whatever the SQL read
    /// would allow: a statement that would grow it further fails as SQLite
    /// fails on a full disk (`SQLITE_FULL`, which
    /// [`crate::checks::environmental`] tells from a finding about the
    /// SQL), with `told` as its message. The gate's own bound lets a dump
    /// of real rows grow its database up to D1's 10 GB, which in memory is
    /// more than most machines hold. Set once; later calls are ignored.
    pub fn hold_in_memory_to(&self, most: u64, told: String) -> rusqlite::Result<()> {
        let _ = self.growth.memory.set((most, told));
        self.bound()
    }

    /// Whether the file system that holds the database has `bytes` free
    /// (always, for a database in memory).
    fn disk_holds(&self, bytes: u64) -> bool {
        let Some(file) = self.db.path().filter(|p| !p.is_empty()) else {
            return true;
        };
        let dir = std::path::Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        crate::room::available_bytes(dir).is_some_and(|free| free >= bytes)
    }

    /// A statement that failed because the database reached the bound on
    /// its growth, said as the statement's doing, not the disk's.
    fn grown_too_far(&self, ran: &rusqlite::Result<()>) -> Option<Outcome> {
        // Every row comes here: nothing more is asked of SQLite unless the
        // statement failed as full.
        let full =
            matches!(ran, Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull));
        if !full {
            return None;
        }
        if let Some((_, told)) =
            { self.growth.memory.get() }.filter(|_| self.growth.memory_binds.get())
        {
            return Some(Outcome::Failed(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error {
                    code: rusqlite::ErrorCode::DiskFull,
                    extended_code: HELD_TO_MEMORY,
                },
                Some(told.clone()),
            )));
        }
        // The statement is undone, so the database is back to its size
        // before it: the bound, not the disk, stopped it when the disk has
        // room for all the bound allows.
        if self.disk_holds(self.growth_room().saturating_mul(2)) {
            let mb = |bytes: u64| bytes.div_ceil(1_000_000);
            return Some(Outcome::Refused(Refusal(format!(
                "it grows the database past {} MB: statements from a file may add 64 MB and 16 \
                 times the SQL read so far ({} MB), more than any dump's rows need; it writes \
                 rows the file does not hold (an INSERT … SELECT)",
                mb(self.pragma("max_page_count") * self.growth.page_size),
                mb(self.growth.read.get())
            ))));
        }
        None
    }

    /// The bytes the database may still grow by under its bound.
    fn growth_room(&self) -> u64 {
        self.pragma("max_page_count")
            .saturating_sub(self.pragma("page_count"))
            .saturating_mul(self.growth.page_size)
    }

    /// A numeric pragma's value, 0 when it cannot be read.
    fn pragma(&self, name: &str) -> u64 {
        self.db
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
            .map_or(0, |n| n.max(0) as u64)
    }

    /// Lets statements from a file drop the triggers `names` (and no
    /// other): the repair holds a schema's own triggers off while rows load
    /// into it (`repair::Options::known_triggers`), and creates them again.
    pub fn allow_dropping_triggers<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.droppable_triggers.extend(names.into_iter().cloned());
    }

    /// Lets statements from a file delete the rows of `tables`, each until
    /// a row is inserted into it: the repair empties the tables a clean
    /// restore's migrations seeded before the dump's rows go in. A dump's
    /// own DELETE after its rows is still refused.
    pub fn allow_emptying<'a>(&self, tables: impl IntoIterator<Item = &'a String>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .emptiable
            .extend(tables.into_iter().map(|t| t.to_lowercase()));
    }

    /// A gated database in memory.
    pub fn memory() -> rusqlite::Result<Gate> {
        Gate::new(Connection::open_in_memory()?)
    }

    /// A gated database in memory whose statements an interrupt does not
    /// stop (each is still bounded by STATEMENT_SECONDS): the project's
    /// migrations run in one to learn which triggers they create, for the
    /// way back an interrupted command prints on its way out. Stopped
    /// there, every migration read as one that cannot run here, and the
    /// way back named every trigger as a bypass (MA: `with-backup`
    /// interrupted printed `--allow-trigger` for each of its backup's
    /// triggers, which a failed one did not).
    pub fn memory_to_finish() -> rusqlite::Result<Gate> {
        let gate = Gate::memory()?;
        gate.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finishes = true;
        Ok(gate)
    }

    /// Stops every statement, this tool's own too, at `deadline` or once
    /// the process holds more than `ceiling`: an in-memory run of the
    /// migrations is held to the run's budget
    /// ([`crate::fk_actions::trial_ends`], [`crate::fk_actions::trial_memory`]),
    /// as a statement that never ends (a recursive query) held a backup's
    /// verification without limit.
    pub fn until(&self, deadline: std::time::Instant, ceiling: Option<crate::room::MemoryCeiling>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.until = Some(deadline);
        state.until_memory = ceiling;
    }

    /// The connection, for this tool's own statements (its pragmas, its
    /// transaction and its checks). Functions and `ATTACH` are still denied.
    pub fn db(&self) -> &Connection {
        &self.db
    }

    /// The connection to change, for a test that counts what SQLite does
    /// (a progress handler in place of the gate's own).
    #[cfg(test)]
    pub(crate) fn db_mut(&mut self) -> &mut Connection {
        &mut self.db
    }

    /// Turns the connection to reading what is stored, for the tool's own
    /// checks of a loaded database: from here on no view runs and no
    /// trigger fires. A dump's view is its own SQL, never judged as a
    /// statement (it runs only when read), so a check that read one by its
    /// name (`audit_log`, a table a manifest counts) would run whatever the
    /// dump wrote, with none of a load's bounds; it now fails to prepare,
    /// and the checks read only tables ([`crate::catalog::Kinds`]).
    pub fn only_stored(&self) -> rusqlite::Result<()> {
        only_stored(&self.db)
    }

    /// A gated connection that only reads what is stored in `file`
    /// ([`Gate::only_stored`]), read-only.
    pub fn reading(file: &std::path::Path) -> rusqlite::Result<Gate> {
        let gate = Gate::new(Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)?;
        gate.only_stored()?;
        Ok(gate)
    }

    /// Prepares one statement read from a file under the gate's rules.
    pub fn prepare(&self, sql: &str) -> Result<rusqlite::Statement<'_>, Outcome> {
        self.prepare_judged(sql).map(|(stmt, _)| stmt)
    }

    /// [`Gate::prepare`], and whether the statement writes to a virtual
    /// table.
    fn prepare_judged(&self, sql: &str) -> Result<(rusqlite::Statement<'_>, bool), Outcome> {
        if let Some(why) = crate::statement::refused_kind(sql) {
            // VACUUM has no authorizer action of its own: the statement's
            // real first keyword decides it, and the others, up front.
            return Err(Outcome::Refused(Refusal(why.to_owned())));
        }
        if let Some(why) = body_reaches_outside(sql) {
            return Err(Outcome::Refused(Refusal(why)));
        }
        self.set_untrusted(true);
        self.set_rows_as_values(crate::statement::is_rows_as_values(sql));
        let prepared = self.db.prepare(sql);
        let verdict = self.take_verdict();
        let writes_virtual = self.writes_virtual();
        self.set_untrusted(false);
        match (prepared, verdict) {
            // SQLite stopped it first (a name that exists, say) before the
            // CREATE that would explain its write to sqlite_schema.
            (Err(e), Some(refusal)) if refusal.0 == SCHEMA_WRITE => Err(Outcome::Failed(e)),
            (_, Some(refusal)) => Err(Outcome::Refused(refusal)),
            (Err(rusqlite::Error::MultipleStatement), None) => Err(Outcome::Refused(Refusal(
                "it holds more than one statement".to_owned(),
            ))),
            (Err(e), None) => Err(Outcome::Failed(e)),
            (Ok(stmt), None) => Ok((stmt, writes_virtual)),
        }
    }

    /// Judges one statement read from a file without running it: a row is
    /// judged by its prepared statement, anything else by its own text.
    pub fn judge(&self, sql: &str) -> Outcome {
        if let Some(row) = self.row(sql)
            && self.prepare_row(&row).is_some()
        {
            return Outcome::Ran;
        }
        match self.prepare(sql) {
            Ok(_) => Outcome::Ran,
            Err(outcome) => outcome,
        }
    }

    /// Runs one statement read from a file.
    pub fn run(&self, sql: &str) -> Outcome {
        if let Err(e) = self.read(sql.len()) {
            return Outcome::Failed(e);
        }
        if let Some(row) = self.row(sql)
            && let Some(mut stmt) = self.prepare_row(&row)
        {
            return self.insert_row(&mut stmt, &row);
        }
        self.run_statement(sql)
    }

    /// Binds a row's values to its prepared statement and runs it.
    fn insert_row(&self, stmt: &mut rusqlite::Statement<'_>, row: &Row<'_>) -> Outcome {
        for (i, value) in row.values.iter().enumerate() {
            if let Err(e) = stmt.raw_bind_parameter(i + 1, value) {
                return Outcome::Failed(e);
            }
        }
        self.set_running(true);
        let ran = stmt.raw_execute();
        let (denied, interrupted) = self.set_running(false);
        let ran = ran.map(drop);
        if let Some(refused) = self.grown_too_far(&ran) {
            return refused;
        }
        verdict(ran, denied, interrupted)
    }

    /// Runs a statement that is not a row of the dump's own shape. One
    /// that writes to a virtual table may be an FTS5 command (`INSERT INTO
    /// t(t) VALUES('rebuild')`, however written), or a row of an
    /// external-content table, either of which runs a query SQLite compiles
    /// only then, of the table's content, which may be a view the dump
    /// made: a legal one walks a tree with a recursive WITH, a hostile one
    /// sorts rows without end. It runs with its temporary storage in
    /// memory, and that memory bounded (see [`Gate::bounded`]). The
    /// authorizer tells it when the statement is prepared, whatever its
    /// text; it is prepared again once the bound is set.
    fn run_statement(&self, sql: &str) -> Outcome {
        // It may change the schema: the prepared rows are judged again.
        self.db.flush_prepared_statement_cache();
        match self.prepare_judged(sql) {
            Err(outcome) => outcome,
            Ok((stmt, true)) => {
                drop(stmt);
                self.bounded(|| match self.prepare(sql) {
                    Ok(mut stmt) => self.execute(&mut stmt),
                    Err(outcome) => outcome,
                })
            }
            Ok((mut stmt, false)) => self.execute(&mut stmt),
        }
    }

    /// Runs `run` with SQLite's temporary storage in memory, stopped once
    /// the process's peak resident set passes what it was by
    /// [`COMMAND_MEMORY`] (a process that held more before and gave it
    /// back has that much more room, never less), then with the storage as
    /// it was (an encrypted backup's scratch keeps its in memory); a
    /// statement stopped by the bound is refused as its own doing. A
    /// database kept in memory may first grow to its own bound
    /// ([`Growth`]), which the ceiling adds. (SQLite's own heap limit needs
    /// its memory statistics, which this build turns off for speed.)
    fn bounded(&self, run: impl FnOnce() -> Outcome) -> Outcome {
        let in_memory = self.db.path().is_none_or(str::is_empty);
        let own = if in_memory { self.growth_room() } else { 0 };
        let ceiling =
            crate::room::MemoryCeiling::above_own_peak(COMMAND_MEMORY.saturating_add(own));
        let temp_store = || {
            self.db
                .query_row("PRAGMA temp_store", [], |r| r.get::<_, i64>(0))
        };
        let before = temp_store().unwrap_or(0);
        let restore = || {
            let _ = self
                .db
                .execute_batch(&format!("PRAGMA temp_store = {before};"));
        };
        let in_memory_temp = self
            .db
            .execute_batch("PRAGMA temp_store = MEMORY;")
            .and_then(|()| temp_store());
        let (Some(ceiling), Ok(2)) = (ceiling, in_memory_temp) else {
            restore();
            return Outcome::Refused(Refusal(
                "it runs a query of an FTS5 table's content, and its memory cannot be bounded \
                 here"
                    .to_owned(),
            ));
        };
        self.set_memory_ceiling(Some(ceiling));
        let outcome = run();
        self.set_memory_ceiling(None);
        restore();
        match outcome {
            Outcome::Failed(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OutOfMemory) =>
            {
                // The machine's memory (or a limit on the process) ran
                // out before the bound was reached.
                Outcome::Refused(Refusal(
                    "the memory it needs ran out (the query of an FTS5 table's content, a view \
                     that sorts or joins without bound)"
                        .to_owned(),
                ))
            }
            other => other,
        }
    }

    fn set_memory_ceiling(&self, ceiling: Option<crate::room::MemoryCeiling>) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .memory_ceiling = ceiling;
    }

    /// Runs a statement from a file, prepared.
    fn execute(&self, stmt: &mut rusqlite::Statement<'_>) -> Outcome {
        // Dumps hold no queries, but a SELECT that got through still runs to
        // its end, as it would in D1.
        self.set_running(true);
        let mut rows = stmt.raw_query();
        let ran = loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        drop(rows);
        let (denied, interrupted) = self.set_running(false);
        if let Some(refused) = self.grown_too_far(&ran) {
            return refused;
        }
        verdict(ran, denied, interrupted)
    }

    /// A row of the dump's own shape, read; `None` for any other statement,
    /// and for one over D1's statement limit or with a NUL, which run as SQL
    /// and fail or are refused as such. (A row is not a kind
    /// [`crate::statement::refused_kind`] refuses.)
    pub fn row<'a>(&self, sql: &'a str) -> Option<d1_sql::literal::Row<'a>> {
        if sql.len() > D1_STATEMENT_LIMIT as usize {
            return None;
        }
        let row = d1_sql::literal::parse(sql)?;
        // A virtual table's row may be an FTS5 command (`INSERT INTO "t"
        // ("t") VALUES('rebuild')`): it runs as a statement, bounded.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (!state.virtual_tables.contains(&row.table().to_lowercase())).then_some(row)
    }

    /// The prepared statement for `row`'s table and columns, judged by the
    /// authorizer as a statement from a file when it is first prepared.
    /// `None` when it is refused or cannot be prepared (a missing table, a
    /// wrong number of values): the row's own text then says why; `None`
    /// too when it writes to a virtual table, through a trigger of the
    /// table it goes into, say: it then runs as a statement, bounded.
    pub fn prepare_row(
        &self,
        row: &d1_sql::literal::Row<'_>,
    ) -> Option<rusqlite::CachedStatement<'_>> {
        self.set_untrusted(true);
        self.set_rows_as_values(true);
        let prepared = self.db.prepare_cached(&row.template());
        let verdict = self.take_verdict();
        let writes_virtual = self.writes_virtual();
        self.set_untrusted(false);
        match (prepared, verdict) {
            (Ok(stmt), None) if !writes_virtual => Some(stmt),
            (Ok(stmt), _) => {
                stmt.discard();
                None
            }
            (Err(_), _) => None,
        }
    }

    /// [`Gate::prepare_row`] for a row's template, prepared outside the
    /// statement cache, for a [`Runner`] to keep.
    fn judge_row(&self, template: &str) -> Option<rusqlite::Statement<'_>> {
        self.set_untrusted(true);
        self.set_rows_as_values(true);
        let prepared = self.db.prepare(template);
        let verdict = self.take_verdict();
        let writes_virtual = self.writes_virtual();
        self.set_untrusted(false);
        match (prepared, verdict) {
            (Ok(stmt), None) if !writes_virtual => Some(stmt),
            _ => None,
        }
    }

    /// Whether the statement just prepared writes to a virtual table, its
    /// triggers' bodies included: then it is no row of the fast path, and
    /// runs as a statement, bounded ([`Gate::run_statement`]).
    fn writes_virtual(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writes_virtual
    }

    /// Marks a statement from a file as running, or done; when done, what
    /// was denied or interrupted while it ran.
    fn set_running(&self, on: bool) -> (Option<String>, Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let was = (state.denied.take(), state.interrupted.take());
        *state = state.next(false, on.then(std::time::Instant::now));
        was
    }

    /// Runs one statement read from a file, as a `Result`.
    pub fn run_checked(&self, sql: &str) -> anyhow::Result<()> {
        checked(self.run(sql))
    }

    fn set_untrusted(&self, on: bool) {
        // SQLite checks these limits as it parses: D1's hold exactly while
        // a statement from a file is prepared, SQLite's otherwise.
        for &(limit, value) in D1_PREPARE_LIMITS {
            let _ = self.db.set_limit(limit, if on { value } else { i32::MAX });
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = state.next(on, None);
    }

    /// Marks the statement being prepared as rows as values
    /// ([`crate::statement::is_rows_as_values`]), which no query rule judges.
    fn set_rows_as_values(&self, on: bool) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rows_as_values = on;
    }

    /// Why the gate last denied one of the tool's own statements (a
    /// migration's replay, which fails with SQLite's bare `not
    /// authorized`), taken; `None` when it denied none since.
    pub fn take_denied(&self) -> Option<Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.denied.take().map(Refusal)
    }

    fn take_verdict(&self) -> Option<Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = state.denied.take() {
            return Some(Refusal(why));
        }
        if state.schema_write && !state.ddl {
            return Some(Refusal(SCHEMA_WRITE.to_owned()));
        }
        if state.untrusted {
            return query_refusal(&state);
        }
        None
    }
}

/// [`Gate::only_stored`] for any connection the tool reads a database
/// through (a local D1 file that a restore may have filled from a dump).
pub fn only_stored(db: &Connection) -> rusqlite::Result<()> {
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    Ok(())
}

/// Runs a file's statements through a [`Gate`] one after another, as
/// [`Gate::run`] does, but keeps the prepared statement of the last row
/// while rows of the same table and columns follow: a dump's rows come in
/// runs of one table, and asking the statement cache for every row costs
/// about a tenth of a load. The statement was judged by the authorizer when
/// it was prepared, as a cached one was; any other statement may change the
/// schema, so it drops the kept one, and the next row is judged afresh.
pub struct Runner<'g> {
    gate: &'g Gate,
    /// The last row's template and its prepared statement.
    last: Option<(String, rusqlite::Statement<'g>)>,
}

impl<'g> Runner<'g> {
    pub fn new(gate: &'g Gate) -> Runner<'g> {
        Runner { gate, last: None }
    }

    /// [`Gate::run_checked`].
    pub fn run_checked(&mut self, sql: &str) -> anyhow::Result<()> {
        checked(self.run(sql))
    }

    /// The gate, for the tool's tries that change the schema and roll it
    /// back ([`crate::uncomputed::in_row`]): the kept statement is dropped
    /// first, and the next row is judged afresh.
    pub fn gate_for_a_try(&mut self) -> &'g Gate {
        self.last = None;
        self.gate
    }

    /// [`Gate::run`].
    pub fn run(&mut self, sql: &str) -> Outcome {
        if let Err(e) = self.gate.read(sql.len()) {
            return Outcome::Failed(e);
        }
        if let Some(row) = self.gate.row(sql) {
            let template = row.template();
            if let Some((kept, stmt)) = &mut self.last
                && *kept == template
            {
                return self.gate.insert_row(stmt, &row);
            }
            self.last = None;
            if let Some(mut stmt) = self.gate.judge_row(&template) {
                let outcome = self.gate.insert_row(&mut stmt, &row);
                self.last = Some((template, stmt));
                return outcome;
            }
        }
        self.last = None;
        self.gate.run_statement(sql)
    }
}

/// A connection for this tool's own read-only queries over two scratch
/// databases that a [`Gate`] loaded (`diff` compares them), attached as `a`
/// and `b` from their SQLite URIs. Their schemas came from dumps, so
/// nothing in them runs: views and triggers are off, the schema is not
/// trusted (no function a default, a view or a generated column names),
/// the attached files can be neither created nor written, the connection is
/// query-only, and the functions no dump may call are denied here too.
/// Every statement on it is the tool's own; names from a dump reach it only
/// quoted ([`crate::statement::quote_ident`]) or as bound parameters.
pub fn comparison(a: &str, b: &str) -> anyhow::Result<Connection> {
    use anyhow::Context;
    let mut db = Connection::open_in_memory()?;
    for (setting, on) in [
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false),
    ] {
        db.set_db_config(setting, on)?;
    }
    for (uri, schema) in [(a, "a"), (b, "b")] {
        db.execute(&format!("ATTACH DATABASE ?1 AS {schema}"), [uri])
            .with_context(|| format!("cannot open side {schema}'s scratch database"))?;
    }
    db.execute_batch("PRAGMA query_only=ON")?;
    db.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Function { function_name } => {
            let lower = function_name.to_ascii_lowercase();
            if DENIED_FUNCTIONS.contains(&lower.as_str()) || lower.starts_with("sqlite_") {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        AuthAction::Read { table_name, .. } if is_internal_table(table_name) => {
            // The tool reads the schema through these pragma functions.
            let lower = table_name.to_ascii_lowercase();
            if [
                "pragma_table_info",
                "pragma_table_xinfo",
                "pragma_table_list",
            ]
            .contains(&lower.as_str())
            {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Allow,
    }))?;
    // Ctrl-C stops a long comparison query.
    db.progress_handler(10_000, Some(|| crate::interrupt::received().is_some()))?;
    Ok(db)
}

/// An outcome as a `Result`, without the values a failure could quote.
fn checked(outcome: Outcome) -> anyhow::Result<()> {
    match outcome {
        Outcome::Ran => Ok(()),
        Outcome::Refused(r) => Err(anyhow::anyhow!(
            "refused: {}",
            crate::names::shown(&r.to_string())
        )),
        Outcome::Failed(e) => Err(anyhow::anyhow!("{}", without_values(&e))),
    }
}

/// What a statement from a file did, given how it ran and what the gate
/// saw while it ran.
fn verdict(
    ran: rusqlite::Result<()>,
    denied: Option<String>,
    interrupted: Option<String>,
) -> Outcome {
    match (ran, denied, interrupted) {
        (Ok(()), None, None) => Outcome::Ran,
        (_, Some(why), _) => Outcome::Refused(Refusal(why)),
        (_, None, Some(why)) => Outcome::Refused(Refusal(why)),
        (Err(e), None, None) => Outcome::Failed(e),
    }
}

/// SQLite's message for a failed statement, without anything it may quote
/// of the statement (customer data): the SQL text of a syntax error, any
/// quoted operand (`bad JSON path: '…'`), and the word after `no such
/// column:` (a string in double quotes reads as one) or `no such
/// function:`. The names left (a
/// table, a constraint) are shown escaped ([`crate::names::shown`]).
pub fn without_values(e: &rusqlite::Error) -> String {
    if let rusqlite::Error::SqliteFailure(f, _) = e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
    {
        return RAISE_NOT_SHOWN.to_owned();
    }
    // A statement that does not compile is shown by rusqlite as `<msg> in
    // <the whole statement> at offset N`: only SQLite's own message is kept.
    let text = match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        _ => e.to_string(),
    };
    let text = if text.contains("syntax error") {
        "syntax error".to_owned()
    } else if let Some(at) = text.find("unrecognized token") {
        // The token is quoted after a colon; only whether it is a BLOB
        // literal is kept, which says what went wrong.
        let token = text[at..].split_once(": \"").map(|(_, t)| t);
        if token.is_some_and(|t| t.starts_with("X'") || t.starts_with("x'")) {
            BROKEN_BLOB_LITERAL.to_owned()
        } else {
            "unrecognized token".to_owned()
        }
    } else if let Some(at) = text.find("no such column:") {
        format!("{}no such column", &text[..at])
    } else if let Some(at) = text.find("no such function:") {
        // The word is any a row's text holds (`VALUES(1,SECRET('a'))`):
        // SQLite's own functions are named by the gate, which denies any
        // D1 does not allow.
        format!("{}no such function", &text[..at])
    } else if let Some(at) = text.find("hex literal too big") {
        // It quotes the literal.
        format!("{}hex literal too big", &text[..at])
    } else if text.contains("too many columns on ") {
        // It names the table, not D1's limit.
        format!("{text}: {OVER_D1_COLUMN_LIMIT}")
    } else {
        without_quoted(&text)
    };
    crate::names::shown(&text).into_owned()
}

/// What is said of a BLOB literal SQLite cannot read: hex digits that are
/// not whole bytes (a tool that wrote each byte without its leading zero),
/// or a character that is no hex digit.
pub const BROKEN_BLOB_LITERAL: &str = "unrecognized token: a BLOB literal (X'…') that is not \
     whole bytes of hex digits (an odd count of them, or a character that is not one), which \
     SQLite and D1 refuse: whatever wrote this dump wrote that value wrongly, and no restore can \
     tell the digit it left out. Back up the source again with this tool, or correct the value \
     in a copy of the file";

/// What is said in place of a trigger's `RAISE` message: the app writes
/// it, and may build it from the row (`'invalid email: ' || NEW.email`;
/// SQLite 3.47 and later take any expression there).
pub const RAISE_NOT_SHOWN: &str = "a trigger's RAISE refused the statement (its message is not shown: it may quote a row's values)";

/// What is said in place of a constraint's message that cannot be told
/// from a trigger's `RAISE` (remote D1 gives no extended code).
pub const CONSTRAINT_NOT_SHOWN: &str = "a constraint or a trigger's RAISE refused the statement \
     (its message is not shown: a RAISE may quote a row's values)";

/// What is said in place of the start of a failed statement that D1's
/// import quotes: an INSERT's start holds the row's values.
pub const STATEMENT_TEXT_NOT_SHOWN: &str = "(its text is not shown: it may hold a row's values)";

/// `text` with the start of a failed statement that D1's import quotes
/// (`Statement 41 failed: INSERT INTO companies … VALUES ('…', …);`, one
/// line) left out of every line that has it: what follows `failed` is
/// replaced by [`STATEMENT_TEXT_NOT_SHOWN`]. The statement's number stays.
pub fn without_statement_texts(text: &str) -> std::borrow::Cow<'_, str> {
    fn quoted_at(line: &str) -> Option<usize> {
        let mut from = 0;
        while let Some(at) = line[from..].find("Statement ") {
            let rest = &line[from + at + "Statement ".len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with(" failed:") {
                return Some(line.len() - rest.len() + digits + " failed".len());
            }
            from += at + "Statement ".len();
        }
        None
    }
    if !text.lines().any(|l| quoted_at(l).is_some()) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        match quoted_at(body) {
            Some(cut) => {
                out.push_str(&body[..cut]);
                out.push(' ');
                out.push_str(STATEMENT_TEXT_NOT_SHOWN);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out.into()
}

/// `text`, wrangler's report of a failed statement, local (`✘ [ERROR]
/// <message>: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_<KIND>)`),
/// remote (`✘ [ERROR] A request to the Cloudflare API (…) failed.`, a
/// blank line, then `<message>: SQLITE_CONSTRAINT [code: 7500]`), or the
/// text of its `--json` error, without any message a trigger's `RAISE`
/// wrote. Locally SQLite's extended code says which it is: a trigger's
/// (`_TRIGGER`) is replaced by [`RAISE_NOT_SHOWN`], from wrangler's first
/// `[ERROR]` to the code, whatever the message holds; SQLite's own (a
/// CHECK, UNIQUE, NOT NULL, foreign or primary key) is kept. Without it,
/// only a message SQLite's own in shape, naming nothing but columns or a
/// constraint (`UNIQUE constraint failed: accounts.email`), is kept; any
/// other is replaced by [`CONSTRAINT_NOT_SHOWN`].
pub fn without_raise_messages(text: &str) -> std::borrow::Cow<'_, str> {
    const CODE: &str = ": SQLITE_CONSTRAINT";
    const EXTENDED: &str = " (extended";
    let Some(last) = text.rfind(CODE) else {
        return text.into();
    };
    // Local wrangler repeats the code, extended, after it: the last code is
    // then that one, and the statement's own is just before.
    let local = text[..last]
        .strip_suffix(EXTENDED)
        .filter(|before| before.ends_with(CODE));
    let (code_at, extended) = match local {
        Some(before) => {
            let kind: String = text[last + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (before.len() - CODE.len(), Some(kind))
        }
        None => (last, None),
    };
    let start = message_start(&text[..code_at]);
    let message = &text[start..code_at];
    let lead = message.len() - message.trim_start().len();
    let said = match extended.as_deref() {
        Some("SQLITE_CONSTRAINT_TRIGGER") => RAISE_NOT_SHOWN,
        Some(
            "SQLITE_CONSTRAINT_CHECK"
            | "SQLITE_CONSTRAINT_UNIQUE"
            | "SQLITE_CONSTRAINT_NOTNULL"
            | "SQLITE_CONSTRAINT_FOREIGNKEY"
            | "SQLITE_CONSTRAINT_PRIMARYKEY",
        ) => return text.into(),
        _ if is_sqlites_own_constraint_message(message.trim()) => return text.into(),
        _ => CONSTRAINT_NOT_SHOWN,
    };
    format!("{}{said}{}", &text[..start + lead], &text[code_at..]).into()
}

/// Where the failed statement's message starts in `before` (wrangler's
/// report up to the code): after wrangler's first `[ERROR]` opening a line
/// (past the API's header and its blank line, for a remote error, which
/// comes before the message); at 0 for a bare message (a `--json` error's
/// text). Nothing the message quotes comes before its start.
fn message_start(before: &str) -> usize {
    const ERROR: &str = "[ERROR]";
    let first = before.match_indices(ERROR).map(|(i, _)| i).find(|&i| {
        let line = &before[before[..i].rfind('\n').map_or(0, |n| n + 1)..i];
        line.trim_start().trim_start_matches('✘').trim().is_empty()
    });
    let Some(first) = first else {
        return 0;
    };
    let start = first + ERROR.len();
    let rest = &before[start..];
    match rest.find("\n\n") {
        Some(blank)
            if rest
                .trim_start()
                .starts_with("A request to the Cloudflare API") =>
        {
            start + blank + 2
        }
        _ => start,
    }
}

/// Whether `message`, without SQLite's extended code to say, is one SQLite
/// writes for a failed constraint, on one line, naming nothing but columns
/// or a constraint (`NOT NULL constraint failed: t.c`, `CHECK constraint
/// failed: amount_positive`): an unnamed CHECK's expression, or an app's
/// text shaped like one, is not.
fn is_sqlites_own_constraint_message(message: &str) -> bool {
    let names = |rest: &str, more: &[char]| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$') || more.contains(&c))
    };
    let tail = |kind: &str| {
        message
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix(" constraint failed: "))
    };
    message == "FOREIGN KEY constraint failed"
        || ["UNIQUE", "NOT NULL", "PRIMARY KEY"]
            .iter()
            .any(|kind| tail(kind).is_some_and(|rest| names(rest, &['.', ',', ' '])))
        || tail("CHECK").is_some_and(|rest| names(rest, &[]))
}

/// `text` with each part in single quotes written `'…'`.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('\'');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Odd parts are inside quotes ('' inside a literal splits it in two,
    // and both halves are dropped alike).
    for (i, part) in parts.enumerate() {
        if i % 2 == 0 {
            out.push_str("'…'");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn is_schema_table(name: &str) -> bool {
    [
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| name.eq_ignore_ascii_case(t))
}

fn is_reserved(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("_cf_"))
}

/// Eponymous tables that read SQLite's own state rather than data.
fn is_internal_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("pragma_") || lower == "dbstat" || lower == "sqlite_dbpage"
}

/// SQLite does not compile a view's or a trigger's body when it is
/// created, so the authorizer sees it only when something uses it: refuse
/// one whose text names what no dump may reach.
fn body_reaches_outside(sql: &str) -> Option<String> {
    let word = crate::statement::leading_word(sql);
    if !word.eq_ignore_ascii_case("CREATE") {
        return None;
    }
    match crate::statement::created_object(sql) {
        Some(("view" | "trigger", name)) => {
            let lower = sql.to_ascii_lowercase();
            [
                "_cf_",
                "pragma_",
                "sqlite_dbpage",
                "dbstat",
                "load_extension",
                "sqlite_master",
                "sqlite_schema",
            ]
            .iter()
            .find(|needle| lower.contains(*needle))
            .map(|needle| {
                format!(
                    "the view or trigger {} names {needle}, which no dump may reach",
                    crate::names::shown_name(&name)
                )
            })
        }
        _ => None,
    }
}

/// The rule while a statement from a file runs: what SQLite compiles for
/// it then (FTS5's own queries, a pragma table's pragma) may not reach
/// workerd's tables or run a pragma.
fn judge_running(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        // FTS5 reads these of its own database while it works.
        AuthAction::Pragma {
            pragma_name,
            pragma_value: None,
        } if ["data_version", "page_size"]
            .iter()
            .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Ok(())
        }
        AuthAction::Pragma { pragma_name, .. } => Err(format!(
            "PRAGMA {pragma_name} ran inside it (a pragma table), which no dump may run"
        )),
        AuthAction::Analyze { .. } => {
            Err("ANALYZE ran inside it, which no dump may run".to_owned())
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Err("ATTACH reaches outside the database".to_owned())
        }
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if is_reserved(table_name) =>
        {
            not_reserved(table_name)
        }
        AuthAction::Function { function_name } => {
            let lower = function_name.to_ascii_lowercase();
            if DENIED_FUNCTIONS.contains(&lower.as_str()) || lower.starts_with("sqlite_") {
                Err(format!("the function {lower}() reaches outside SQL values"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Tables a dump may change after inserting: `sqlite_sequence`, and the
/// tables the repair makes for itself, whose names no dump can know
/// ([`crate::statement::own_prefix`]).
fn is_repair_owned(name: &str) -> bool {
    name.eq_ignore_ascii_case("sqlite_sequence") || is_own(name)
}

/// A table the repair makes for itself, whose name no dump can know.
fn is_own(name: &str) -> bool {
    let own = crate::statement::own_prefix();
    name.get(..own.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(own))
}

/// The gate's rule for one action; `Err` says why it is denied.
fn judge(state: &mut State, ctx: &AuthContext<'_>) -> Result<(), String> {
    // SQLite's ALTER TABLE runs these functions of its own over the schema;
    // the tool's own statements (a migration) may alter, a dump may not.
    // The tool's own statements are judged this loosely only because none
    // runs after a dump's DDL on the same connection: a dump's trigger
    // would fire inside one. A trusted write after a dump's load would
    // have to run untrusted.
    if let AuthAction::Function { function_name } = ctx.action
        && !state.untrusted
        && ALTER_FUNCTIONS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(function_name))
    {
        return Ok(());
    }
    if let Some(verdict) = judge_for_everyone(ctx.action) {
        return verdict;
    }
    if !state.untrusted {
        return Ok(());
    }
    judge_dump(state, ctx)
}

/// The functions SQLite's ALTER TABLE calls on the schema's text.
const ALTER_FUNCTIONS: &[&str] = &[
    "sqlite_rename_column",
    "sqlite_rename_table",
    "sqlite_rename_test",
    "sqlite_rename_quotefix",
    "sqlite_drop_column",
];

/// The rule for actions denied to everyone, the tool included, and for
/// functions (those D1 does not allow, [`D1_FUNCTIONS`], are denied to a
/// migration's replay as to a dump): `None` when it leaves the action to
/// [`judge_dump`].
fn judge_for_everyone(action: AuthAction<'_>) -> Option<Result<(), String>> {
    // Denied to everyone, the tool included: nothing here needs them.
    match action {
        AuthAction::Attach { .. } => Some(Err("ATTACH reaches outside the database".to_owned())),
        AuthAction::Detach { .. } => Some(Err("DETACH is not part of a dump".to_owned())),
        AuthAction::Function { function_name } => {
            let lower = function_name.to_ascii_lowercase();
            if DENIED_FUNCTIONS.contains(&lower.as_str()) || lower.starts_with("sqlite_") {
                return Some(Err(format!(
                    "the function {lower}() reaches outside SQL values, and D1 refuses it"
                )));
            }
            if !d1_allows_function(&lower) {
                return Some(Err(format!("it calls {}", d1_refused_function(&lower))));
            }
            Some(Ok(()))
        }
        _ => None,
    }
}

/// `Err` when `name` (of a table, index, view or trigger) is one D1 and
/// workerd reserve (`_cf_*`).
fn not_reserved(name: &str) -> Result<(), String> {
    if is_reserved(name) {
        Err(format!(
            "it touches {}, a name D1 and workerd reserve for themselves",
            crate::names::shown_name(name)
        ))
    } else {
        Ok(())
    }
}

/// The rule for an action of an untrusted statement: only what a dump does.
fn judge_dump(state: &mut State, ctx: &AuthContext<'_>) -> Result<(), String> {
    if let AuthAction::Insert { table_name }
    | AuthAction::Update { table_name, .. }
    | AuthAction::Delete { table_name } = ctx.action
        && state.virtual_tables.contains(&table_name.to_lowercase())
    {
        state.writes_virtual = true;
    }
    if let Some(verdict) = judge_dump_schema(state, ctx.action) {
        return verdict;
    }
    match ctx.action {
        AuthAction::Select => {
            state.queries += 1;
            Ok(())
        }
        // CREATE INDEX asks for REINDEX of the new index.
        AuthAction::Reindex { .. } => Ok(()),
        // A dump holds its rows as values; a recursive WITH makes rows of
        // its own, without end if it likes. (A view or a trigger may hold
        // one: it is not run when created.)
        AuthAction::Recursive => Err(
            "a recursive WITH makes rows of its own; a dump holds its rows as values".to_owned(),
        ),
        AuthAction::Read { table_name, .. } => judge_dump_read(state, table_name),
        AuthAction::Insert { table_name } => {
            if is_schema_table(table_name) {
                state.schema_write = true;
                Ok(())
            } else {
                state.inserted.insert(table_name.to_lowercase());
                not_reserved(table_name)
            }
        }
        // Emptying one such table may change rows of another through its
        // foreign keys' actions (SET NULL, CASCADE): those are emptied too.
        AuthAction::Delete { table_name }
            if state.emptiable.contains(&table_name.to_lowercase())
                && !state.inserted.contains(&table_name.to_lowercase()) =>
        {
            state.emptying = true;
            not_reserved(table_name)
        }
        AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name }
            if state.emptying
                || (state.emptiable.contains(&table_name.to_lowercase())
                    && !state.inserted.contains(&table_name.to_lowercase())) =>
        {
            not_reserved(table_name)
        }
        AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name } => {
            judge_row_change(state, ctx, table_name)
        }
        other => judge_dump_other(other),
    }
}

/// A read of `table_name` by an untrusted statement: of its own rows
/// (noted), of another table (the first noted), never of SQLite's own
/// state nor of a table D1 reserves.
fn judge_dump_read(state: &mut State, table_name: &str) -> Result<(), String> {
    if is_internal_table(table_name) {
        Err(format!(
            "it reads {table_name}, SQLite's own state, which no dump may read"
        ))
    } else if is_own(table_name) {
        state.reads_own = true;
        Ok(())
    } else {
        state
            .reads_other
            .get_or_insert_with(|| table_name.to_owned());
        not_reserved(table_name)
    }
}

/// The rule for the schema a dump makes (tables, views, indexes, triggers,
/// virtual tables) and the drops a repair adds: `None` when the action is
/// none of those, left to [`judge_dump`].
fn judge_dump_schema(state: &mut State, action: AuthAction<'_>) -> Option<Result<(), String>> {
    Some(match action {
        AuthAction::CreateTable { table_name }
        | AuthAction::CreateView {
            view_name: table_name,
        } => {
            state.ddl = true;
            not_reserved(table_name)
        }
        AuthAction::CreateIndex {
            index_name: name,
            table_name,
        }
        | AuthAction::CreateTrigger {
            trigger_name: name,
            table_name,
        } => {
            state.ddl = true;
            not_reserved(name).and_then(|()| not_reserved(table_name))
        }
        AuthAction::CreateVtable {
            table_name,
            module_name,
        } => {
            state.ddl = true;
            state.virtual_tables.insert(table_name.to_lowercase());
            judge_create_vtable(table_name, module_name)
        }
        AuthAction::DropTable { table_name } if is_repair_owned(table_name) => {
            state.ddl = true;
            Ok(())
        }
        AuthAction::DropTrigger { trigger_name, .. }
            if state.droppable_triggers.contains(trigger_name) =>
        {
            state.ddl = true;
            Ok(())
        }
        _ => return None,
    })
}

/// The rule for what else an untrusted statement may ask: a pragma a dump
/// runs; no transaction control, no temporary object, nothing else.
fn judge_dump_other(action: AuthAction<'_>) -> Result<(), String> {
    match action {
        AuthAction::Pragma { pragma_name, .. } => {
            if DUMP_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name))
            {
                Ok(())
            } else {
                Err(format!("PRAGMA {pragma_name} is not one a dump may run"))
            }
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(
            "transaction control would break the all-or-nothing load; the tool runs the transaction"
                .to_owned(),
        ),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => {
            Err("temporary objects are not part of a dump".to_owned())
        }
        other => Err(format!("{} is not part of a dump", action_name(&other))),
    }
}

/// An UPDATE or DELETE: of the schema table (noted), of a table the repair
/// owns or by a trigger, or refused, since a dump only inserts.
fn judge_row_change(
    state: &mut State,
    ctx: &AuthContext<'_>,
    table_name: &str,
) -> Result<(), String> {
    if is_schema_table(table_name) {
        state.schema_write = true;
        Ok(())
    } else if is_repair_owned(table_name) || ctx.accessor.is_some() {
        // A trigger of the target's schema may change rows; the
        // repair creates a dump's own triggers after its rows.
        not_reserved(table_name)
    } else {
        not_reserved(table_name)?;
        Err(format!(
            "it changes rows already in {table_name}; a dump only inserts"
        ))
    }
}

/// A CREATE VIRTUAL TABLE: neither it nor its shadow tables reserved, and
/// only of the fts5 module.
fn judge_create_vtable(table_name: &str, module_name: &str) -> Result<(), String> {
    not_reserved(table_name)?;
    // Its shadow tables are named <name>_data, <name>_idx, ...
    not_reserved(&format!("{table_name}_"))?;
    // fts5vocab holds nothing of its own: it reads an FTS5 table's index.
    if module_name.eq_ignore_ascii_case("fts5") || module_name.eq_ignore_ascii_case("fts5vocab") {
        Ok(())
    } else {
        Err(format!(
            "it creates a virtual table with the module {module_name}; only fts5 and fts5vocab \
             are restored"
        ))
    }
}

fn action_name(action: &AuthAction<'_>) -> String {
    let debug = format!("{action:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap_or("this action");
    match name {
        "DropTable" | "DropIndex" | "DropTrigger" | "DropView" | "DropVtable" => "DROP".to_owned(),
        "AlterTable" => "ALTER TABLE".to_owned(),
        "Analyze" => "ANALYZE".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// verify tells a failure over D1's 2 MB by what both say.
    #[test]
    fn a_value_and_a_row_over_the_limit_say_the_same_first() {
        for said in [
            OVER_D1_VALUE_LIMIT,
            OVER_D1_ROW_LIMIT,
            OVER_D1_VALUE_OR_ROW_LIMIT,
        ] {
            assert!(said.contains(OVER_D1_LIMIT), "{said}");
        }
    }

    #[test]
    fn a_triggers_raise_message_is_never_shown_and_sqlites_own_are() {
        const TRIGGER: &str = "SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)";
        let local = |message: &str| format!("✘ [ERROR] {message}: {TRIGGER}");
        for (said, shown) in [
            // Local: the extended code says it is a trigger's, whatever
            // the message looks like or holds (a blank line, `[ERROR]`,
            // the code, `(extended`).
            (local("invalid email: jane@x"), local(RAISE_NOT_SHOWN)),
            (
                local("bad: jane\n\nsee [ERROR] x: SQLITE_CONSTRAINT y"),
                local(RAISE_NOT_SHOWN),
            ),
            (
                local("CHECK constraint failed: ssn 078-05-1120"),
                local(RAISE_NOT_SHOWN),
            ),
            (
                local("ssn 078-05-1120 (extended: SQLITE_CONSTRAINT"),
                local(RAISE_NOT_SHOWN),
            ),
            // Local, SQLite's own: kept as it is.
            (
                "✘ [ERROR] UNIQUE constraint failed: accounts.email: SQLITE_CONSTRAINT \
                 (extended: SQLITE_CONSTRAINT_UNIQUE)"
                    .to_owned(),
                "✘ [ERROR] UNIQUE constraint failed: accounts.email: SQLITE_CONSTRAINT \
                 (extended: SQLITE_CONSTRAINT_UNIQUE)"
                    .to_owned(),
            ),
            // Remote (no extended code): only SQLite's own shape is kept.
            (
                "✘ [ERROR] A request to the Cloudflare API (/q) failed.\n\n  bad: a\nb: \
                 SQLITE_CONSTRAINT [code: 7500]"
                    .to_owned(),
                format!(
                    "✘ [ERROR] A request to the Cloudflare API (/q) failed.\n\n  \
                     {CONSTRAINT_NOT_SHOWN}: SQLITE_CONSTRAINT [code: 7500]"
                ),
            ),
            (
                "✘ [ERROR] A request to the Cloudflare API (/q) failed.\n\n  UNIQUE constraint \
                 failed: accounts.email: SQLITE_CONSTRAINT [code: 7500]"
                    .to_owned(),
                "✘ [ERROR] A request to the Cloudflare API (/q) failed.\n\n  UNIQUE constraint \
                 failed: accounts.email: SQLITE_CONSTRAINT [code: 7500]"
                    .to_owned(),
            ),
            (
                "CHECK constraint failed: amount_positive: SQLITE_CONSTRAINT".to_owned(),
                "CHECK constraint failed: amount_positive: SQLITE_CONSTRAINT".to_owned(),
            ),
            (
                "CHECK constraint failed: 'jane@x': SQLITE_CONSTRAINT".to_owned(),
                format!("{CONSTRAINT_NOT_SHOWN}: SQLITE_CONSTRAINT"),
            ),
            (
                "UNIQUE constraint failed: jane@x: SQLITE_CONSTRAINT".to_owned(),
                format!("{CONSTRAINT_NOT_SHOWN}: SQLITE_CONSTRAINT"),
            ),
            (
                "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT".to_owned(),
                "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT".to_owned(),
            ),
            (
                "no such table: t: SQLITE_ERROR".to_owned(),
                "no such table: t: SQLITE_ERROR".to_owned(),
            ),
        ] {
            assert_eq!(without_raise_messages(&said), shown, "{said}");
        }
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t(e); CREATE TRIGGER g BEFORE INSERT ON t BEGIN \
             SELECT RAISE(ABORT, 'bad: ' || NEW.e); END;",
        )
        .unwrap();
        let e = db
            .execute("INSERT INTO t VALUES ('jane@x')", [])
            .unwrap_err();
        assert_eq!(without_values(&e), RAISE_NOT_SHOWN);
    }

    /// rvAL: `migrations apply` says `✘ [ERROR] Migration 0005_x.sql
    /// failed with the following errors:` before the statement's own
    /// `✘ [ERROR] <message>: SQLITE_CONSTRAINT`. The message is taken to
    /// start after the first `[ERROR]`, so SQLite's own UNIQUE message, and
    /// the migration's name, are replaced by "a trigger's RAISE refused
    /// the statement".
    #[test]
    fn sqlites_own_message_after_a_migrations_failure_line_is_kept() {
        let said = "✘ [ERROR] Migration 0005_plans.sql failed with the following errors:\n\n\
                    ✘ [ERROR] UNIQUE constraint failed: plans.name: SQLITE_CONSTRAINT \
                    (extended: SQLITE_CONSTRAINT_UNIQUE)\n";
        let shown = without_raise_messages(said);
        assert!(
            shown.contains("UNIQUE constraint failed: plans.name")
                && !shown.contains(RAISE_NOT_SHOWN),
            "{shown}"
        );
    }

    /// rvAL: local wrangler writes the extended code after the message:
    /// `UNIQUE constraint failed: p.name: SQLITE_CONSTRAINT (extended:
    /// SQLITE_CONSTRAINT_UNIQUE)`. The message is taken to end at the
    /// last `: SQLITE_CONSTRAINT`, the one inside `(extended: …)`, so it
    /// holds `: SQLITE_CONSTRAINT (extended` and every local constraint
    /// failure of SQLite's own is told as a trigger's RAISE.
    #[test]
    fn sqlites_own_message_with_locals_extended_code_is_kept() {
        let said = "✘ [ERROR] UNIQUE constraint failed: p.name: SQLITE_CONSTRAINT \
                    (extended: SQLITE_CONSTRAINT_UNIQUE)";
        assert_eq!(without_raise_messages(said), said);
    }

    /// rvAL: SQLite names an unnamed CHECK by its expression (`CHECK
    /// constraint failed: amount >= 0`): schema text, never a row's value.
    /// `>` and `=` are not among the "names" characters, so the commonest
    /// CHECK failure is reported as a trigger's RAISE.
    #[test]
    fn an_unnamed_checks_expression_is_kept() {
        let said = "✘ [ERROR] CHECK constraint failed: amount >= 0: SQLITE_CONSTRAINT \
                    (extended: SQLITE_CONSTRAINT_CHECK)";
        assert_eq!(without_raise_messages(said), said);
    }

    /// rvAL: the text of a `--json` error has no wrangler `[ERROR]` before
    /// it (`{"error":{"text":"<message>: SQLITE_CONSTRAINT"}}`), so an
    /// `[ERROR]` in the value a RAISE quotes is taken for wrangler's, and
    /// everything before it is printed.
    #[test]
    fn a_json_errors_raise_message_holding_error_is_replaced_whole() {
        let said = "invalid email: jane.doe.ssn-078-05-1120 [ERROR] x: SQLITE_CONSTRAINT";
        let shown = without_raise_messages(said);
        assert!(!shown.contains("078-05-1120"), "{shown}");
    }

    /// rvAM: RAISE takes any expression (SQLite 3.47+), so an app's guard
    /// can say `RAISE(ABORT, 'CHECK constraint failed: ssn ' || NEW.ssn)`.
    /// An unnamed CHECK's expression is now kept when it holds only names,
    /// numbers and operators, and `-` is an operator: the value, digits
    /// and dashes (an SSN, a card number, a date), is printed as SQLite's
    /// own schema text (`sqlites_own_constraint_message`).
    #[test]
    fn a_check_shaped_raise_message_quoting_a_number_is_never_shown() {
        for said in [
            "✘ [ERROR] CHECK constraint failed: ssn 078-05-1120: SQLITE_CONSTRAINT",
            "A request to the Cloudflare API (/accounts/a/d1/database/b/query) failed.\n\n  \
             CHECK constraint failed: card 4111-1111-1111-1111: SQLITE_CONSTRAINT [code: 7500]",
        ] {
            let shown = without_raise_messages(said);
            assert!(
                !shown.contains("078-05-1120") && !shown.contains("4111-1111"),
                "{shown}"
            );
        }
    }

    /// rvAM: the code is looked for from the end, skipping any that
    /// follows `(extended`. A RAISE message that ends in `(extended` (the
    /// app's text, with a value before it) makes the real code skipped
    /// too: no code is found and wrangler's report is printed whole.
    #[test]
    fn a_raise_message_ending_in_extended_is_never_shown() {
        for said in [
            "✘ [ERROR] ssn 078-05-1120 (extended: SQLITE_CONSTRAINT \
             (extended: SQLITE_CONSTRAINT_TRIGGER)",
            "✘ [ERROR] ssn 078-05-1120 (extended: SQLITE_CONSTRAINT [code: 7500]",
        ] {
            let shown = without_raise_messages(said);
            assert!(!shown.contains("078-05-1120"), "{shown}");
        }
    }

    /// rvAM: `message_start` is documented as "what the message quotes
    /// cannot move its start", yet a RAISE message whose first line reads
    /// like wrangler's migration header (`Migration <value> failed with the
    /// following errors:`) and whose next line starts with `[ERROR]` and
    /// SQLite's own UNIQUE text moves the start past the value, and the
    /// whole report, value included, is printed.
    #[test]
    fn a_raise_message_shaped_like_a_migration_header_cannot_move_its_start() {
        let said = "✘ [ERROR] Migration for 078-05-1120 failed with the following errors:\n\
                    [ERROR] UNIQUE constraint failed: t.c: SQLITE_CONSTRAINT";
        let shown = without_raise_messages(said);
        assert!(!shown.contains("078-05-1120"), "{shown}");
    }

    /// rvAM: SQLite names an unnamed CHECK by its expression as written in
    /// the schema, line breaks included (`CHECK (b > 0\n  AND b < 10)`
    /// gives `CHECK constraint failed: b > 0\n  AND b < 10`). A line break
    /// is not among the expression's characters, so a CHECK written over
    /// two lines, as migrations often do, is told as a trigger's RAISE.
    #[test]
    fn an_unnamed_check_written_over_two_lines_is_kept() {
        let said = "✘ [ERROR] CHECK constraint failed: b > 0\n  AND b < 10: SQLITE_CONSTRAINT \
                    (extended: SQLITE_CONSTRAINT_CHECK)";
        let shown = without_raise_messages(said);
        assert!(
            shown.contains("CHECK constraint failed: b > 0") && !shown.contains(RAISE_NOT_SHOWN),
            "{shown}"
        );
    }

    /// SQLite's message keeps its kind and names, never an operand it
    /// quotes: a value read by a CHECK, a string read as a column.
    #[test]
    fn sqlite_messages_lose_what_they_quote_of_the_statement() {
        let db = Connection::open_in_memory().unwrap();
        let message = |sql: &str| without_values(&db.execute_batch(sql).unwrap_err());
        let json = message("SELECT json_extract('{}', '123-45-6789 Jane Doe');");
        assert!(
            json.starts_with("bad JSON path") && !json.contains("6789"),
            "{json}"
        );
        let column = message("SELECT jane_doe_6789 FROM sqlite_master;");
        assert_eq!(column, "no such column");
        db.execute_batch("CREATE TABLE t (v TEXT CONSTRAINT \"c\nx\" CHECK (v <> 'a'));")
            .unwrap();
        let check = message("INSERT INTO t VALUES('a');");
        assert_eq!(check, "CHECK constraint failed: c\\u{a}x");
        // A statement that does not compile: rusqlite quotes it whole, with
        // its unquoted numbers; only SQLite's message is kept.
        let prepare = |sql: &str| without_values(&db.prepare(sql).unwrap_err());
        assert_eq!(
            prepare("INSERT INTO t VALUES(4111111111111111 + nosuchfn(1));"),
            "no such function"
        );
        let hex = prepare("SELECT 0x5EC7E7AB5EC7E7AB5EC7E7AB;");
        assert_eq!(hex, "hex literal too big");
        for broken in ["X'5ec7e7a'", "x'5ec7e7zz'"] {
            let blob = message(&format!("INSERT INTO t VALUES({broken});"));
            assert_eq!(blob, BROKEN_BLOB_LITERAL, "{broken}");
        }
        assert_eq!(message("SELECT 1 \\ 2;"), "unrecognized token");
    }

    fn gate() -> Gate {
        let gate = Gate::memory().unwrap();
        gate.db()
            .execute_batch("PRAGMA foreign_keys=ON; BEGIN;")
            .unwrap();
        gate
    }

    fn refused(gate: &Gate, sql: &str) -> String {
        match gate.run(sql) {
            Outcome::Refused(r) => r.0,
            other => panic!("{sql} was not refused: {other:?}"),
        }
    }

    fn failed(gate: &Gate, sql: &str) -> String {
        match gate.run(sql) {
            Outcome::Failed(e) => e.to_string(),
            other => panic!("{sql} did not fail: {other:?}"),
        }
    }

    fn ran(gate: &Gate, sql: &str) {
        match gate.run(sql) {
            Outcome::Ran => {}
            other => panic!("{sql} did not run: {other:?}"),
        }
    }

    /// An FTS5 command runs bounded whatever its spelling, as the
    /// authorizer tells it: a name with a comma or a parenthesis, REPLACE,
    /// OR IGNORE, a schema, comments, a SELECT for VALUES, a dump's row
    /// shape. A row of an ordinary table runs as a row.
    #[test]
    fn writes_to_virtual_tables_are_told_however_written() {
        let g = gate();
        ran(&g, "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);");
        ran(
            &g,
            "CREATE VIRTUAL TABLE \"feed,f(t)s\" USING fts5(body, content='docs', \
             content_rowid='id');",
        );
        for sql in [
            "INSERT INTO \"feed,f(t)s\"(\"feed,f(t)s\") VALUES('rebuild');",
            "REPLACE INTO \"FEED,F(T)S\"(\"feed,f(t)s\") VALUES('optimize');",
            "INSERT OR IGNORE INTO main.\"feed,f(t)s\"(\"feed,f(t)s\") VALUES('rebuild');",
            "INSERT /* ( */ INTO \"feed,f(t)s\" -- )\n (\"feed,f(t)s\") VALUES('rebuild');",
            "INSERT INTO \"feed,f(t)s\"(\"feed,f(t)s\") SELECT 'rebuild';",
            "INSERT INTO \"feed,f(t)s\" (\"feed,f(t)s\") VALUES('rebuild');",
            "INSERT INTO \"feed,f(t)s\"(rowid, body) VALUES(1, 'x');",
        ] {
            assert!(matches!(g.prepare_judged(sql), Ok((_, true))), "{sql}");
            assert!(g.row(sql).is_none(), "{sql}");
            ran(&g, sql);
        }
        let row = "INSERT INTO \"docs\" (\"id\",\"body\") VALUES(2,'rebuild');";
        assert!(matches!(g.prepare_judged(row), Ok((_, false))));
        assert!(g.prepare_row(&g.row(row).unwrap()).is_some());
        // A row whose table's trigger writes to the virtual table runs as
        // a statement, bounded, not on the fast path.
        ran(
            &g,
            "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN \
             INSERT INTO \"feed,f(t)s\"(\"feed,f(t)s\") VALUES('rebuild'); END;",
        );
        let row = "INSERT INTO \"docs\" (\"id\",\"body\") VALUES(3,'x');";
        assert!(matches!(g.prepare_judged(row), Ok((_, true))));
        assert!(g.prepare_row(&g.row(row).unwrap()).is_none());
        assert!(g.judge_row(&g.row(row).unwrap().template()).is_none());
        ran(&g, row);
    }

    #[test]
    fn what_a_d1_dump_holds_runs() {
        let g = gate();
        for sql in [
            "PRAGMA defer_foreign_keys=TRUE;",
            "CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT);",
            "CREATE TABLE c(id INTEGER PRIMARY KEY, a_id REFERENCES a(id));",
            "INSERT INTO \"a\" VALUES(1,replace('x\\ny','\\n',char(10)));",
            "INSERT INTO \"a\" (\"id\",\"b\") VALUES(2,X'00ff');",
            "REPLACE INTO a VALUES(3,'z');",
            "INSERT OR IGNORE INTO a VALUES(3,'z');",
            "DELETE FROM sqlite_sequence;",
            "INSERT INTO \"sqlite_sequence\" VALUES('a',3);",
            "DELETE FROM main.sqlite_sequence;",
            "INSERT INTO main.sqlite_sequence VALUES('a',3);",
            "CREATE INDEX ab ON a(b);",
            "CREATE VIEW v AS SELECT lower(b) FROM a;",
            "CREATE TRIGGER t AFTER INSERT ON c BEGIN UPDATE a SET b = b WHERE id = new.a_id; END;",
            "CREATE VIRTUAL TABLE f USING fts5(b);",
        ] {
            ran(&g, sql);
        }
        let side = format!("\"{}value\"", crate::statement::own_prefix());
        for sql in [
            format!("CREATE TABLE {side}(k INTEGER PRIMARY KEY, v);"),
            format!("UPDATE {side} SET v = v || 'x' WHERE k = 0;"),
            format!("DROP TABLE {side};"),
        ] {
            ran(&g, &sql);
        }
        g.db().execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn a_users_table_named_like_the_repairs_own_is_only_inserted_into() {
        let g = gate();
        // The target's own table, as a partial restore finds it.
        g.db()
            .execute_batch(
                "CREATE TABLE _restore_log(id INTEGER PRIMARY KEY, note TEXT);
                 CREATE TABLE _restore_value(k INTEGER PRIMARY KEY, v);
                 INSERT INTO _restore_log VALUES(1, 'kept');",
            )
            .unwrap();
        ran(&g, "INSERT INTO \"_restore_log\" VALUES(2,'new');");
        for sql in [
            "DELETE FROM _restore_log;",
            "UPDATE _restore_log SET note = 'x';",
            "UPDATE \"_restore_value\" SET v = v || 'x' WHERE k = 0;",
        ] {
            assert!(refused(&g, sql).contains("a dump only inserts"), "{sql}");
        }
        for sql in ["DROP TABLE _restore_log;", "DROP TABLE \"_restore_value\";"] {
            refused(&g, sql);
        }
        let kept: i64 = g
            .db()
            .query_row("SELECT count(*) FROM _restore_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 2);
        assert!(!crate::statement::own_prefix().eq_ignore_ascii_case("_restore_"));
    }

    #[test]
    fn what_reaches_outside_the_load_is_refused() {
        let g = gate();
        ran(&g, "CREATE TABLE a(id INTEGER PRIMARY KEY, b TEXT);");
        // workerd's own table, as a local D1 file has it.
        g.db()
            .execute_batch("CREATE TABLE _cf_METADATA(key INTEGER PRIMARY KEY, value BLOB);")
            .unwrap();
        for (sql, why) in [
            ("ATTACH '/tmp/elsewhere.db' AS o;", "ATTACH"),
            ("/* x */ ATTACH 'x.db' AS o;", "ATTACH"),
            ("DETACH o;", "DETACH"),
            ("VACUUM INTO '/tmp/copy.db';", "VACUUM"),
            ("/**/ VACUUM INTO '/tmp/copy.db';", "VACUUM"),
            ("COMMIT;", "transaction control"),
            ("BEGIN;", "transaction control"),
            ("SAVEPOINT s;", "transaction control"),
            ("ROLLBACK;", "transaction control"),
            ("PRAGMA main.writable_schema=ON;", "writable_schema"),
            ("PRAGMA foreign_keys=OFF;", "foreign_keys"),
            ("PRAGMA journal_mode=OFF;", "journal_mode"),
            ("SELECT load_extension('x');", "load_extension"),
            (
                "INSERT INTO a VALUES(1, sqlite_version());",
                "sqlite_version",
            ),
            ("CREATE TABLE _cf_KV(k, v);", "_cf_KV"),
            (
                "REPLACE INTO \"_cf_METADATA\" VALUES(1, 2);",
                "_cf_METADATA",
            ),
            (
                "INSERT INTO a SELECT key, value FROM _cf_METADATA;",
                "_cf_METADATA",
            ),
            ("DELETE FROM a;", "only inserts"),
            ("UPDATE a SET b = 'x';", "only inserts"),
            ("DROP TABLE a;", "DROP"),
            ("ALTER TABLE a ADD COLUMN c;", "ALTER"),
            ("CREATE TEMP TABLE t(x);", "temporary"),
            ("CREATE VIRTUAL TABLE r USING rtree(id, x0, x1);", "rtree"),
            (
                "INSERT INTO a VALUES(1,'x'); INSERT INTO a VALUES(2,'y');",
                "more than one",
            ),
            ("INSERT INTO a VALUES(1)\0,(99);", "NUL"),
        ] {
            let message = refused(&g, sql);
            assert!(message.contains(why), "{sql}: {message}");
        }
        // SQLite refuses this one itself, before the authorizer is asked.
        for sql in [
            "UPDATE sqlite_schema SET sql = '' WHERE 0;",
            "INSERT INTO sqlite_master VALUES('table','x','x',0,'');",
        ] {
            assert!(matches!(g.run(sql), Outcome::Failed(_)), "{sql}");
        }
        // Nothing of it ran.
        let n: i64 = g
            .db()
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_trigger_or_view_cannot_smuggle_what_a_statement_may_not_do() {
        let g = gate();
        ran(&g, "CREATE TABLE a(id INTEGER PRIMARY KEY, b);");
        ran(&g, "CREATE TABLE counts(n);");
        // A trigger of the schema may keep its bookkeeping...
        ran(
            &g,
            "CREATE TRIGGER tally AFTER INSERT ON a BEGIN UPDATE counts SET n = n + 1; END;",
        );
        ran(&g, "INSERT INTO a VALUES(1, 'x');");
        // ...but not call what a statement may not.
        let message = refused(
            &g,
            "CREATE TRIGGER leak AFTER INSERT ON a BEGIN SELECT load_extension('x'); END;",
        );
        assert!(message.contains("load_extension"), "{message}");
        ran(&g, "INSERT INTO a VALUES(2, 'y');");
        ran(&g, "CREATE VIEW peek AS SELECT sqlite_version() AS v;");
        assert!(
            g.db()
                .query_row("SELECT v FROM peek", [], |r| r.get::<_, String>(0))
                .is_err()
        );
    }

    /// rvAT: an index (or trigger) named `_cf_*` was refused as touching
    /// "a table D1 and workerd reserve"; what they reserve is the name.
    #[test]
    fn a_reserved_index_name_is_called_a_name_not_a_table() {
        let g = gate();
        ran(&g, "CREATE TABLE t(id INTEGER PRIMARY KEY, v);");
        let message = refused(&g, "CREATE INDEX _cf_i ON t(v);");
        assert!(
            message.contains("_cf_i, a name D1 and workerd reserve"),
            "{message}"
        );
        assert!(!message.contains("a table"), "{message}");
    }

    #[test]
    fn what_runs_inside_a_statement_is_judged_too() {
        let g = gate();
        ran(&g, "CREATE TABLE t(id INTEGER PRIMARY KEY, v);");
        g.db()
            .execute_batch("CREATE TABLE _cf_METADATA(key INTEGER PRIMARY KEY, value BLOB);")
            .unwrap();
        for (sql, why) in [
            (
                "INSERT INTO t SELECT 100, count(*) FROM pragma_optimize(0x10002);",
                "pragma_",
            ),
            (
                "INSERT INTO t SELECT 200, file FROM pragma_database_list;",
                "pragma_",
            ),
            ("CREATE VIEW leak AS SELECT * FROM _cf_METADATA;", "_cf_"),
            (
                "CREATE TRIGGER persist AFTER INSERT ON t BEGIN DELETE FROM _cf_METADATA; END;",
                "_cf_",
            ),
            ("CREATE INDEX _cf_idx ON t(v);", "_cf_idx"),
            ("CREATE VIRTUAL TABLE _cf USING fts5(x);", "_cf_"),
        ] {
            let message = refused(&g, sql);
            assert!(message.contains(why), "{sql}: {message}");
        }
        // An FTS5 table whose external content is workerd's own table: its
        // rebuild reads it while the statement runs.
        ran(
            &g,
            "CREATE VIRTUAL TABLE ext USING fts5(value, content='_cf_METADATA', content_rowid='key');",
        );
        let message = refused(&g, "INSERT INTO ext(ext) VALUES('rebuild');");
        assert!(message.contains("_cf_METADATA"), "{message}");
        // FTS5's own work on its own tables is not in the way.
        ran(&g, "CREATE VIRTUAL TABLE f USING fts5(v);");
        ran(&g, "INSERT INTO f(rowid, v) VALUES(1, 'one');");
        ran(
            &g,
            "CREATE VIRTUAL TABLE e USING fts5(v, content='t', content_rowid='id');",
        );
        ran(&g, "INSERT INTO e(e) VALUES('rebuild');");
    }

    /// A clean restore loads rows into a schema another process made (the
    /// migrations wrangler applied): FTS5 reads its config in a query when
    /// the gate's connection first uses the table, which is not the row's.
    #[test]
    fn rows_load_into_fts5_tables_that_another_connection_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d1.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
                 CREATE VIRTUAL TABLE ft USING fts5(body);
                 CREATE VIRTUAL TABLE ext USING fts5(body, content='docs', content_rowid='id');",
            )
            .unwrap();
        let g = Gate::new(Connection::open(&path).unwrap()).unwrap();
        ran(&g, "INSERT INTO \"ft\" VALUES('alpha');");
        ran(&g, "INSERT INTO \"docs\" VALUES(1,'beta');");
        ran(&g, "INSERT INTO ext(ext) VALUES('rebuild');");
    }

    /// A dump's view that sorts rows without end, as an FTS5 table's
    /// external content: its `'rebuild'` is refused for its memory, in a
    /// database on disk and in one kept in memory alike, and undone.
    #[test]
    fn an_fts5_rebuild_over_a_view_that_sorts_without_end_is_refused_for_its_memory() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = Gate::new(Connection::open(dir.path().join("d1.sqlite")).unwrap()).unwrap();
        on_disk.db().execute_batch("BEGIN;").unwrap();
        for g in [on_disk, gate()] {
            // Time stops it too, later: the bound on memory must come first.
            // Far later: on a loaded 2-core machine 15 s came first.
            g.state.lock().unwrap().budget_seconds = Some(300);
            ran(&g, "CREATE TABLE items(id INTEGER PRIMARY KEY, body TEXT);");
            ran(
                &g,
                "CREATE VIEW feed AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL \
                 SELECT n+1 FROM c) SELECT n AS id, 'w' AS body FROM c \
                 ORDER BY randomblob(50000);",
            );
            ran(
                &g,
                "CREATE VIRTUAL TABLE feed_fts USING fts5(body, content='feed', \
                 content_rowid='id');",
            );
            let why = refused(&g, "INSERT INTO feed_fts(feed_fts) VALUES('rebuild');");
            assert!(why.contains("more than 512 MB of memory"), "{why}");
            // The bound is lifted after it (the interrupt undid the
            // transaction): the next command runs.
            ran(&g, "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);");
            ran(&g, "INSERT INTO docs VALUES(1, 'one');");
            ran(
                &g,
                "CREATE VIRTUAL TABLE ft USING fts5(body, content='docs', content_rowid='id');",
            );
            ran(&g, "INSERT INTO ft(ft) VALUES('rebuild');");
            assert_eq!(g.state.lock().unwrap().memory_ceiling, None);
        }
    }

    /// A connection that keeps its temporary storage in memory (an
    /// encrypted backup's verify, diff's side in memory: "temporary tables
    /// and sorts in memory too", README) keeps it there after an FTS5
    /// command ran bounded: the bound sets it back to SQLite's default
    /// (files) instead of to what it was, and every later sort of the
    /// load and its checks (CREATE INDEX, the integrity check) spills the
    /// backup's plaintext to temporary files on disk.
    #[test]
    fn a_bounded_fts5_command_leaves_temporary_storage_where_it_was() {
        let g = Gate::memory().unwrap();
        g.db()
            .execute_batch("PRAGMA temp_store=MEMORY; BEGIN;")
            .unwrap();
        let temp_store = |g: &Gate| -> i64 {
            g.db()
                .query_row("PRAGMA temp_store", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(temp_store(&g), 2);
        ran(&g, "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);");
        ran(&g, "INSERT INTO docs VALUES(1, 'one');");
        ran(
            &g,
            "CREATE VIRTUAL TABLE ft USING fts5(body, content='docs', content_rowid='id');",
        );
        ran(&g, "INSERT INTO ft(ft) VALUES('rebuild');");
        assert_eq!(temp_store(&g), 2, "temp_store after a bounded command");
    }

    #[test]
    fn fts5_tables_of_every_kind_are_created() {
        let g = gate();
        ran(
            &g,
            "CREATE TABLE report_configs(id INTEGER PRIMARY KEY, name TEXT);",
        );
        ran(
            &g,
            "CREATE VIRTUAL TABLE customer_search USING fts5(name, email);",
        );
        ran(
            &g,
            "CREATE VIRTUAL TABLE report_search USING fts5(name, content='report_configs', content_rowid='id');",
        );
        // One that exists already fails as SQLite says, not as a refusal.
        assert!(matches!(
            g.run("CREATE VIRTUAL TABLE customer_search USING fts5(name, email);"),
            Outcome::Failed(_)
        ));
    }

    /// A dump may drop no trigger; the triggers a clean restore holds off
    /// (named by the tool) may be dropped, and no other, statement after
    /// statement.
    #[test]
    fn only_the_triggers_named_may_be_dropped() {
        let gate = Gate::memory().unwrap();
        gate.db()
            .execute_batch(
                "CREATE TABLE t(x); \
                 CREATE TRIGGER held AFTER INSERT ON t BEGIN UPDATE t SET x = 1 WHERE 0; END; \
                 CREATE TRIGGER kept AFTER INSERT ON t BEGIN UPDATE t SET x = 2 WHERE 0; END;",
            )
            .unwrap();
        assert!(refused(&gate, "DROP TRIGGER held;").contains("DROP"));
        gate.allow_dropping_triggers([&"held".to_owned()]);
        ran(&gate, "INSERT INTO t VALUES (1);");
        ran(&gate, "DROP TRIGGER held;");
        assert!(refused(&gate, "DROP TRIGGER kept;").contains("DROP"));
        ran(
            &gate,
            "CREATE TRIGGER held AFTER INSERT ON t BEGIN UPDATE t SET x = 1 WHERE 0; END;",
        );
        assert!(refused(&gate, "DROP TABLE t;").contains("DROP"));
    }

    /// A clean restore's load may empty the tables named (and, through
    /// their foreign keys, change rows of others named), each only until a
    /// row goes into it: a dump's own DELETE after its rows is refused.
    #[test]
    fn only_the_tables_named_may_be_emptied_and_only_before_their_rows() {
        let gate = Gate::memory().unwrap();
        gate.db()
            .execute_batch(
                "CREATE TABLE plans(id INTEGER PRIMARY KEY); \
                 CREATE TABLE uses(plan REFERENCES plans(id) ON DELETE SET NULL); \
                 CREATE TABLE other(x); INSERT INTO plans VALUES (1); INSERT INTO other VALUES (1);",
            )
            .unwrap();
        assert!(refused(&gate, "DELETE FROM plans;").contains("a dump only inserts"));
        gate.allow_emptying(&["Plans".to_owned(), "uses".to_owned()]);
        ran(&gate, "DELETE FROM plans;");
        ran(&gate, "DELETE FROM uses;");
        assert!(refused(&gate, "DELETE FROM other;").contains("a dump only inserts"));
        ran(&gate, "INSERT INTO plans VALUES (2);");
        assert!(refused(&gate, "DELETE FROM plans;").contains("a dump only inserts"));
        assert!(refused(&gate, "UPDATE plans SET id = 3;").contains("a dump only inserts"));
    }

    /// A backup of chosen tables empties only those: emptying one that
    /// other tables reference with an action (SET NULL, CASCADE) changes
    /// their rows too, as part of that DELETE, and was refused ("it changes
    /// rows already in uses"), so such a backup could not be restored
    /// `--clean --partial`. The other tables stay closed to the dump's own
    /// statements.
    #[test]
    fn emptying_a_chosen_table_may_change_the_rows_its_foreign_keys_act_on() {
        let gate = Gate::memory().unwrap();
        gate.db()
            .execute_batch(
                "PRAGMA foreign_keys = ON; CREATE TABLE plans(id INTEGER PRIMARY KEY); \
                 CREATE TABLE uses(plan REFERENCES plans(id) ON DELETE SET NULL); \
                 CREATE TABLE bills(plan REFERENCES plans(id) ON DELETE CASCADE); \
                 INSERT INTO plans VALUES (1); INSERT INTO uses VALUES (1); \
                 INSERT INTO bills VALUES (1);",
            )
            .unwrap();
        gate.allow_emptying(&["plans".to_owned()]);
        ran(&gate, "DELETE FROM plans;");
        assert!(refused(&gate, "DELETE FROM uses;").contains("a dump only inserts"));
        assert!(refused(&gate, "UPDATE bills SET plan = 2;").contains("a dump only inserts"));
        ran(&gate, "INSERT INTO plans VALUES (2);");
        assert!(refused(&gate, "DELETE FROM plans;").contains("a dump only inserts"));
    }

    /// The tool's own statements (a migration applied to a scratch
    /// database) may ALTER TABLE, which runs SQLite's own functions over
    /// the schema; a dump may not call them.
    #[test]
    fn the_tool_may_alter_a_table_and_a_dump_may_not() {
        let gate = Gate::memory().unwrap();
        gate.db()
            .execute_batch(
                "CREATE TABLE t(a, b); ALTER TABLE t RENAME COLUMN a TO c; \
                 ALTER TABLE t DROP COLUMN b; ALTER TABLE t RENAME TO u;",
            )
            .unwrap();
        assert!(!refused(&gate, "ALTER TABLE u RENAME TO v;").is_empty());
        assert!(refused(&gate, "SELECT sqlite_rename_test(1,2,3,4,5,6,7);").contains("sqlite_"));
    }

    #[test]
    fn a_statement_that_runs_for_ever_is_stopped() {
        let g = gate();
        g.state.lock().unwrap().budget_seconds = Some(1);
        // A trigger, slow, fired by a row (a restore creates a dump's
        // triggers after its rows; this one is the tool's own).
        g.db()
            .execute_batch(
                "CREATE TABLE t(v); CREATE TABLE n(v);
                 INSERT INTO n WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c \
                 WHERE x < 50000) SELECT x FROM c;
                 CREATE TRIGGER slow AFTER INSERT ON t BEGIN
                   UPDATE n SET v = length(randomblob(100000));
                 END;",
            )
            .unwrap();
        let message = refused(&g, "INSERT INTO \"t\" VALUES(1);");
        assert!(message.contains("seconds"), "{message}");
    }

    #[test]
    fn queries_over_a_dumps_tables_are_refused_but_may_stand_in_a_view() {
        let g = gate();
        ran(&g, "CREATE TABLE t(v);");
        ran(&g, "INSERT INTO \"t\" VALUES(1);");
        let message = refused(
            &g,
            "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) \
             SELECT x FROM c;",
        );
        assert!(message.contains("recursive WITH"), "{message}");
        for sql in [
            "INSERT INTO t SELECT zeroblob(1000) FROM t a, t b;",
            "INSERT INTO t VALUES((SELECT count(*) FROM (SELECT DISTINCT a.v FROM t a, t b)));",
            "CREATE TABLE copy AS SELECT * FROM t;",
            "SELECT count(*) FROM t;",
            "INSERT INTO t WITH c AS MATERIALIZED (SELECT a.v FROM t a, t b) SELECT count(*) FROM c;",
        ] {
            let message = refused(&g, sql);
            assert!(message.contains(" in a query; "), "{sql}: {message}");
        }
        for sql in [
            "INSERT INTO t SELECT count(*) FROM (VALUES(1),(2)) a, (VALUES(1),(2)) b;",
            "INSERT INTO t VALUES((SELECT count(DISTINCT a.column1) FROM (VALUES(1)) a));",
            "INSERT INTO t WITH c AS MATERIALIZED (VALUES(1),(2)) SELECT * FROM c;",
        ] {
            let message = refused(&g, sql);
            assert!(
                message.contains("queries within a query"),
                "{sql}: {message}"
            );
        }
        // Rows as values, one or several to an INSERT, run.
        ran(&g, "INSERT INTO \"t\" VALUES(3),(4),(zeroblob(10));");
        ran(&g, "REPLACE INTO t VALUES(5);");
        ran(
            &g,
            "CREATE VIEW n AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c \
             WHERE x < 3) SELECT x FROM c;",
        );
    }

    #[test]
    fn statements_that_write_far_more_than_the_file_holds_are_refused_and_undone() {
        let g = gate();
        // A trigger, fired by a row: 100 MB from one short statement.
        let body = "INSERT INTO big VALUES(zeroblob(1000000));".repeat(100);
        g.db()
            .execute_batch(&format!(
                "CREATE TABLE t(v); CREATE TABLE big(v);
                 CREATE TRIGGER grow AFTER INSERT ON t WHEN NEW.v = 'grow' BEGIN {body} END;"
            ))
            .unwrap();
        for i in 0..300 {
            ran(&g, &format!("INSERT INTO \"t\" VALUES({i});"));
        }
        let message = refused(&g, "INSERT INTO \"t\" VALUES('grow');");
        assert!(message.contains("grows the database past"), "{message}");
        let rows: i64 = g
            .db()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 300, "the statement's rows are undone");
        // A dump's own rows, however many, are never bounded by it: each
        // adds its own text to the room.
        let row = format!("INSERT INTO \"t\" VALUES(X'{}');", "00".repeat(40_000));
        for _ in 0..2_000 {
            ran(&g, &row);
        }
    }

    #[test]
    fn values_over_d1s_limits_fail() {
        let g = gate();
        ran(&g, "CREATE TABLE a(b);");
        let big = format!("INSERT INTO a VALUES(zeroblob({}));", D1_VALUE_LIMIT + 1);
        assert!(matches!(g.run(&big), Outcome::Failed(_)));
        let long = format!("INSERT INTO a VALUES('{}');", "x".repeat(100_001));
        assert!(matches!(g.run(&long), Outcome::Failed(_)));
    }

    fn count(g: &Gate, sql: &str) -> i64 {
        g.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn rows_bound_without_compiling_store_what_their_text_stores() {
        let g = gate();
        let plain = rusqlite::Connection::open_in_memory().unwrap();
        let ddl = "CREATE TABLE \"t\"(id INTEGER PRIMARY KEY, a, b TEXT, c REAL, d BLOB);";
        ran(&g, ddl);
        plain.execute_batch(ddl).unwrap();
        for sql in [
            "INSERT INTO \"t\" VALUES(1,-0,'it''s',1e308,X'');",
            "INSERT INTO \"t\" (\"id\",\"a\",\"b\",\"c\",\"d\") VALUES(2,9007199254740993,replace(replace('a\\r\\nb','\\r',char(13)),'\\n',char(10)),-2.5e-7,X'00ff');",
            "INSERT INTO \"t\" VALUES(3,NULL,'日本🦀',4.35,NULL);",
            // Not of the dump's shape: compiled, as before.
            "INSERT INTO \"t\" VALUES(4,abs(-4),'x' || 'y',1,zeroblob(2));",
        ] {
            ran(&g, sql);
            plain.execute_batch(sql).unwrap();
        }
        let rows = |db: &rusqlite::Connection| -> Vec<String> {
            db.prepare("SELECT quote(id), quote(a), quote(b), quote(c), quote(d), typeof(c) FROM t ORDER BY id")
                .unwrap()
                .query_map([], |r| {
                    (0..6)
                        .map(|i| r.get::<_, String>(i))
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .unwrap()
                .map(|row| row.unwrap().join(" "))
                .collect()
        };
        assert_eq!(rows(g.db()), rows(&plain));
        assert_eq!(rows(g.db()).len(), 4);
    }

    #[test]
    fn rows_of_the_dump_shape_are_judged_as_their_text_is() {
        let g = gate();
        ran(&g, "CREATE TABLE a(id INTEGER PRIMARY KEY, b TEXT UNIQUE);");
        g.db()
            .execute_batch("CREATE TABLE _cf_METADATA(key INTEGER PRIMARY KEY, value BLOB);")
            .unwrap();
        let message = refused(&g, "INSERT INTO \"_cf_METADATA\" VALUES(1,X'00');");
        assert!(message.contains("_cf_METADATA"), "{message}");
        assert!(matches!(
            g.judge("INSERT INTO \"_cf_METADATA\" VALUES(1,X'00');"),
            Outcome::Refused(_)
        ));
        let message = refused(&g, "INSERT INTO \"a\" VALUES(1,'x\0y');");
        assert!(message.contains("NUL"), "{message}");
        assert!(matches!(
            g.run("INSERT INTO \"sqlite_master\" VALUES('table','x','x',0,'');"),
            Outcome::Failed(_)
        ));
        // SQLite's own failures, in SQLite's words.
        ran(&g, "INSERT INTO \"a\" VALUES(1,'x');");
        for (sql, why) in [
            (
                "INSERT INTO \"a\" VALUES(2,'x');",
                "UNIQUE constraint failed: a.b",
            ),
            ("INSERT INTO \"a\" VALUES(3,'y',4);", "3 values"),
            (
                "INSERT INTO \"a\" (\"id\",\"nope\") VALUES(3,'y');",
                "no column named nope",
            ),
            ("INSERT INTO \"absent\" VALUES(3);", "no such table"),
        ] {
            let message = failed(&g, sql);
            assert!(message.contains(why), "{sql}: {message}");
        }
        assert_eq!(count(&g, "SELECT count(*) FROM a"), 1);
    }

    #[test]
    fn rows_of_the_dump_shape_keep_d1s_limits() {
        let g = gate();
        ran(&g, "CREATE TABLE a(b);");
        // Over 100 KB of text: refused, however simple the row.
        let long = format!("INSERT INTO \"a\" VALUES('{}');", "x".repeat(100_000));
        assert!(d1_sql::literal::parse(&long).is_some());
        assert!(matches!(g.run(&long), Outcome::Failed(_)));
        // A value over the value limit fails bound as it does written.
        // (SQLite's smallest is 30 bytes.)
        g.db().set_limit(Limit::SQLITE_LIMIT_LENGTH, 30).unwrap();
        ran(&g, "INSERT INTO \"a\" VALUES('under the limit');");
        for wide in [
            format!("INSERT INTO \"a\" VALUES('{}');", "x".repeat(31)),
            format!("INSERT INTO \"a\" VALUES(X'{}');", "ab".repeat(31)),
            format!(
                "INSERT INTO \"a\" VALUES(replace('{}','a',char(233)));",
                "a".repeat(16)
            ),
        ] {
            assert!(d1_sql::literal::parse(&wide).is_some());
            let message = failed(&g, &wide);
            assert!(message.contains("too big"), "{message}");
        }
        assert_eq!(count(&g, "SELECT count(*) FROM a"), 1);
    }

    #[test]
    fn a_trigger_created_between_rows_fires_for_the_rows_after_it() {
        let g = gate();
        ran(&g, "CREATE TABLE a(id INTEGER PRIMARY KEY, b);");
        ran(&g, "CREATE TABLE counts(n);");
        ran(&g, "INSERT INTO \"counts\" VALUES(0);");
        ran(&g, "INSERT INTO \"a\" VALUES(1,'x');");
        ran(
            &g,
            "CREATE TRIGGER tally AFTER INSERT ON a BEGIN UPDATE counts SET n = n + 1; END;",
        );
        ran(&g, "INSERT INTO \"a\" VALUES(2,'y');");
        ran(&g, "INSERT INTO \"a\" VALUES(3,'z');");
        assert_eq!(count(&g, "SELECT n FROM counts"), 2);
        // A trigger the gate refuses is never created, so rows stay rows.
        let message = refused(
            &g,
            "CREATE TRIGGER leak AFTER INSERT ON a BEGIN SELECT load_extension('x'); END;",
        );
        assert!(message.contains("load_extension"), "{message}");
        ran(&g, "INSERT INTO \"a\" VALUES(4,'w');");
        assert_eq!(count(&g, "SELECT n FROM counts"), 3);
    }

    #[test]
    fn a_runner_keeping_the_last_rows_statement_does_what_run_does() {
        let statements = [
            "CREATE TABLE a(id INTEGER PRIMARY KEY, b TEXT UNIQUE);",
            "CREATE TABLE counts(n);",
            "INSERT INTO \"counts\" VALUES(0);",
            "INSERT INTO \"a\" VALUES(1,'x');",
            "INSERT INTO \"a\" VALUES(2,'y');",
            "INSERT INTO \"a\" VALUES(3,'y');",
            "INSERT INTO \"a\" VALUES(4,'z',5);",
            "INSERT INTO \"a\" VALUES(5,'x\0y');",
            "INSERT INTO \"a\" (\"id\",\"b\") VALUES(6,'w');",
            "CREATE TRIGGER tally AFTER INSERT ON a BEGIN UPDATE counts SET n = n + 1; END;",
            "INSERT INTO \"a\" VALUES(7,'v');",
            "INSERT INTO \"a\" VALUES(8,'u');",
            "CREATE TRIGGER leak AFTER INSERT ON a BEGIN SELECT load_extension('x'); END;",
            "INSERT INTO \"a\" VALUES(9,'t');",
            // An index made between rows of the same text binds the later ones.
            "CREATE TABLE c(x);",
            "INSERT INTO \"c\" VALUES(1);",
            "CREATE UNIQUE INDEX cx ON c(x);",
            "INSERT INTO \"c\" VALUES(1);",
            "INSERT INTO \"c\" VALUES(2);",
            "CREATE TABLE _cf_METADATA(key INTEGER PRIMARY KEY, value BLOB);",
            "INSERT INTO \"_cf_METADATA\" VALUES(1,X'00');",
            "INSERT INTO \"absent\" VALUES(3);",
            "INSERT INTO \"a\" VALUES(12,'r');",
        ];
        let outcomes = runner_agrees(&statements);
        // The trigger made between rows fires for the later ones (counts is
        // compared by `runner_agrees`), and the unique index made between
        // rows of the same text binds them.
        let ran = "ran";
        assert_eq!(
            outcomes,
            [
                ran,
                ran,
                ran,
                ran,
                ran,
                "failed: UNIQUE constraint failed: a.b",
                "failed: table a has 2 columns but 3 values were supplied",
                "refused: a NUL byte inside the statement would cut it short",
                ran,
                ran,
                ran,
                ran,
                "refused: the view or trigger leak names load_extension, which no dump may reach",
                ran,
                ran,
                ran,
                ran,
                "failed: UNIQUE constraint failed: c.x",
                ran,
                "refused: it touches _cf_METADATA, a name D1 and workerd reserve for themselves",
                "failed: no such table: _cf_METADATA",
                "failed: no such table: absent",
                ran,
            ]
        );
    }

    /// Every table's rows and the whole schema, as text, to compare two
    /// gates that ran the same statements.
    fn everything(g: &Gate) -> Vec<String> {
        let mut out = Vec::new();
        let names: Vec<String> = {
            let mut stmt = g
                .db()
                .prepare("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        out.extend(names);
        let tables: Vec<String> = {
            let mut stmt = g
                .db()
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for table in tables {
            let mut stmt = g
                .db()
                .prepare(&format!(
                    "SELECT * FROM {}",
                    crate::statement::quote_ident(&table)
                ))
                .unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().unwrap() {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                out.push(format!("{table}: {}", cells.join(",")));
            }
        }
        out
    }

    /// Runs `statements` through a plain gate and through a [`Runner`]:
    /// each statement's outcome, and what the databases hold after, are
    /// the same.
    fn runner_agrees(statements: &[&str]) -> Vec<String> {
        let describe = |outcome: Outcome| match outcome {
            Outcome::Ran => "ran".to_owned(),
            Outcome::Refused(r) => format!("refused: {}", r.0),
            Outcome::Failed(e) => format!("failed: {e}"),
        };
        let plain = gate();
        let kept = gate();
        let mut runner = Runner::new(&kept);
        let mut outcomes = Vec::new();
        for sql in statements {
            let by_runner = describe(runner.run(sql));
            assert_eq!(by_runner, describe(plain.run(sql)), "{sql}");
            outcomes.push(by_runner);
        }
        drop(runner);
        assert_eq!(everything(&kept), everything(&plain));
        outcomes
    }

    #[test]
    fn a_runner_agrees_with_run_on_hostile_sequences() {
        // sqlite_sequence, sqlite_master, _cf_ tables, and rows into them
        // before and after the objects that would let them in.
        let outcomes = runner_agrees(&[
            "CREATE TABLE s(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);",
            "INSERT INTO \"sqlite_sequence\" VALUES('s',5);",
            "INSERT INTO \"sqlite_sequence\" VALUES('s',6);",
            "INSERT INTO \"sqlite_master\" VALUES('table','x','x',0,'CREATE TABLE x(y)');",
            "INSERT INTO \"sqlite_master\" VALUES('table','y','y',0,'CREATE TABLE y(y)');",
            "INSERT INTO \"sqlite_schema\" VALUES('table','y','y',0,'CREATE TABLE y(y)');",
            "INSERT INTO \"_cf_KV\" VALUES('k','v');",
            "CREATE TABLE _cf_KV(key TEXT PRIMARY KEY, value BLOB);",
            "INSERT INTO \"_cf_KV\" VALUES('k','v');",
            "INSERT INTO \"_CF_kv\" VALUES('k','v');",
            "INSERT INTO \"s\" VALUES(NULL,'a');",
            "INSERT INTO \"s\" VALUES(NULL,'b');",
            // The same table in other spellings and column lists.
            "INSERT INTO \"S\" VALUES(NULL,'c');",
            "INSERT INTO \"s\" (\"id\",\"v\") VALUES(NULL,'d');",
            "INSERT INTO \"s\" (\"v\",\"id\") VALUES('e',NULL);",
            "INSERT INTO \"s\" (\"v\",\"id\") VALUES('f',NULL);",
            "INSERT INTO \"s\"(\"v\") VALUES('g');",
            "INSERT INTO \"s\"  VALUES(NULL,'h');",
            "INSERT INTO \"s\" VALUES(NULL,'i',1);",
            "INSERT INTO \"s\" VALUES(NULL);",
            "INSERT INTO \"s\" VALUES(NULL,'j');",
            // A view: refused rows, then an INSTEAD OF trigger lets them in.
            "CREATE VIEW v AS SELECT id, v FROM s;",
            "INSERT INTO \"v\" VALUES(100,'v1');",
            "CREATE TRIGGER vi INSTEAD OF INSERT ON v BEGIN INSERT INTO s VALUES(NEW.id, NEW.v); END;",
            "INSERT INTO \"v\" VALUES(101,'v2');",
            "INSERT INTO \"v\" VALUES(102,'v3');",
            // A trigger whose body calls a function no dump may call, made
            // between two rows of the same text.
            "CREATE TRIGGER bad AFTER INSERT ON s BEGIN SELECT sqlite_version(); END;",
            "INSERT INTO \"v\" VALUES(103,'v4');",
            "INSERT INTO \"s\" VALUES(NULL,'k');",
            "INSERT INTO \"s\" VALUES(NULL,'l');",
            // A trigger that changes other rows: allowed (a trigger may),
            // and it must run for the kept statement too.
            "CREATE TABLE log(n);",
            "INSERT INTO \"log\" VALUES(0);",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
            "CREATE TRIGGER tl AFTER INSERT ON t BEGIN UPDATE log SET n = n + 1; DELETE FROM s WHERE id = NEW.id; END;",
            "INSERT INTO \"t\" VALUES(1,'m');",
            "INSERT INTO \"t\" VALUES(2,'n');",
            "INSERT INTO \"t\" VALUES(3,'o');",
            // A table made by CREATE TABLE AS, then rows into it.
            "CREATE TABLE copy(id INTEGER PRIMARY KEY, v TEXT);",
            "INSERT INTO \"copy\" VALUES(4,'p');",
            "INSERT INTO \"copy\" VALUES(5,'q');",
            // FTS5 and its shadow tables.
            "CREATE VIRTUAL TABLE ft USING fts5(x);",
            "INSERT INTO \"ft\" VALUES('alpha');",
            "INSERT INTO \"ft\" VALUES('beta');",
            "INSERT INTO \"ft_config\" VALUES('version',4);",
            "INSERT INTO \"ft_config\" VALUES('rank','bm25(10.0)');",
            "INSERT INTO \"ft_data\" VALUES(10,X'00');",
            "INSERT INTO \"ft\" VALUES('gamma');",
            // Rows of tables in turn: a, b, a (the cache keeps both).
            "INSERT INTO \"t\" VALUES(6,'r');",
            "INSERT INTO \"copy\" VALUES(6,'s');",
            "INSERT INTO \"t\" VALUES(7,'t');",
            // A trigger into a table that does not exist yet.
            "CREATE TRIGGER later AFTER INSERT ON copy BEGIN INSERT INTO made_later VALUES(NEW.id); END;",
            "INSERT INTO \"copy\" VALUES(8,'u');",
            "CREATE TABLE made_later(id);",
            "INSERT INTO \"copy\" VALUES(9,'v');",
            "INSERT INTO \"copy\" VALUES(10,'w');",
            // The repair's own staging table, dropped between rows.
            "CREATE TABLE _restore_x(id);",
            "INSERT INTO \"_restore_x\" VALUES(1);",
            "DROP TABLE _restore_x;",
            "INSERT INTO \"_restore_x\" VALUES(2);",
            "PRAGMA defer_foreign_keys=ON;",
            "INSERT INTO \"copy\" VALUES(11,'x');",
        ]);
        // The sequence holds the refusals it was written to provoke.
        for (i, expected) in [
            (3, "failed: table sqlite_master may not be modified"),
            (7, "refused: it touches _cf_KV"),
            (18, "failed"),
            (22, "failed"),
            (27, "refused: the function sqlite_version()"),
            (28, "refused: the function sqlite_version()"),
            (29, "refused: the function sqlite_version()"),
            (36, "ran"),
            (43, "failed: table ft_config may not be modified"),
            (51, "failed: no such table: main.made_later"),
            (52, "ran"),
        ] {
            assert!(outcomes[i].starts_with(expected), "{i}: {}", outcomes[i]);
        }
    }

    #[test]
    fn the_tool_keeps_its_own_pragmas_and_transaction() {
        let g = gate();
        g.db().execute_batch("PRAGMA foreign_key_check;").unwrap();
        g.db().execute_batch("COMMIT").unwrap();
        assert!(g.db().execute_batch("ATTACH 'x.db' AS o").is_err());
    }
    #[test]
    fn a_failed_statement_d1_quotes_is_named_without_its_text() {
        let said = "  🌀 Processed 40 queries.\n  🌀 Statement 41 failed: INSERT INTO companies (id,name) VALUES ('secret-value','x');\n✘ [ERROR] datatype mismatch";
        let shown = without_statement_texts(said);
        assert!(!shown.contains("secret-value"), "{shown}");
        assert!(
            shown.contains(&format!("Statement 41 failed {STATEMENT_TEXT_NOT_SHOWN}\n")),
            "{shown}"
        );
        assert!(shown.contains("Processed 40 queries.") && shown.ends_with("datatype mismatch"));
        for kept in [
            "Statement failed: x",
            "Statement 4 was fine",
            "no statement here",
        ] {
            assert_eq!(without_statement_texts(kept), kept);
        }
    }

    /// rvCI 2: the gate let a dump call any function outside a short
    /// denylist, so `verify` said GOOD of a row holding `if(1,'x','b')`,
    /// which D1 refuses (`not authorized to use function: if`). D1 allows
    /// a list of functions and refuses every other; the gate does too.
    mod functions_d1_allows {
        use super::*;

        /// A gate with a table `f` to insert calls into.
        fn with_table() -> Gate {
            let g = gate();
            ran(&g, "CREATE TABLE f(v);");
            g
        }

        /// `call` inserted as a dump's statement (not a row of the dump's
        /// shape: it is compiled, and judged).
        fn insert(call: &str) -> String {
            format!("INSERT INTO f VALUES({call});")
        }

        #[track_caller]
        fn refused_naming(g: &Gate, sql: &str, name: &str) {
            let message = refused(g, sql);
            assert!(
                message.contains(&format!("{name}()")) && message.contains("D1"),
                "{sql}: {message}"
            );
        }

        #[test]
        fn core_functions() {
            let g = with_table();
            for call in [
                "iif(1,'x','b')",
                "concat('a','b')",
                "concat_ws(',','a','b')",
                "format('%d',1)",
                "printf('%d',1)",
                "octet_length('a')",
                "unhex('00')",
                "likely(1)",
                "quote(1)",
                "zeroblob(1)",
                "replace('a','a',char(10))",
                "'a' LIKE 'b'",
                "'a' GLOB 'b'",
            ] {
                ran(&g, &insert(call));
            }
            for (call, name) in [
                ("if(1,'x','b')", "if"),
                ("IF(1,'x','b')", "if"),
                ("subtype(1)", "subtype"),
                ("unistr('a')", "unistr"),
                ("unistr_quote('a')", "unistr_quote"),
            ] {
                refused_naming(&g, &insert(call), name);
            }
        }

        #[test]
        fn date_functions() {
            let g = with_table();
            for call in [
                "date('now')",
                "time('now')",
                "datetime('now')",
                "julianday('now')",
                "unixepoch()",
                "strftime('%Y','now')",
                "timediff('2020-01-01','2020-01-02')",
                "current_timestamp",
            ] {
                ran(&g, &insert(call));
            }
        }

        #[test]
        fn aggregate_and_window_functions() {
            let g = with_table();
            for call in [
                "count(*)",
                "group_concat('a')",
                "string_agg('a',',')",
                "total(1)",
            ] {
                ran(&g, &format!("INSERT INTO f SELECT {call};"));
            }
            // A window is a query within a query, which no dump holds; a
            // migration's query may (the tool's own statements).
            for call in ["row_number() OVER ()", "ntile(2) OVER ()", "lag(1) OVER ()"] {
                g.db()
                    .execute_batch(&format!("INSERT INTO f SELECT {call};"))
                    .unwrap_or_else(|e| panic!("{call}: {e}"));
            }
        }

        #[test]
        fn math_functions() {
            let g = with_table();
            for call in ["pow(2,2)", "sqrt(4)", "ln(1)", "pi()", "trunc(1.5)"] {
                ran(&g, &insert(call));
            }
        }

        #[test]
        fn json_functions() {
            let g = with_table();
            for call in [
                "json('{}')",
                "jsonb('{}')",
                "json_set('{}','$.a',1)",
                "json_extract('{\"a\":1}','$.a')",
                "'{\"a\":1}' -> '$.a'",
                "'{\"a\":1}' ->> '$.a'",
                "json_valid('{}')",
            ] {
                ran(&g, &insert(call));
            }
            for (call, name) in [
                ("json_pretty('{}')", "json_pretty"),
                ("json_error_position('x')", "json_error_position"),
            ] {
                refused_naming(&g, &insert(call), name);
            }
        }

        #[test]
        fn fts5_functions() {
            let g = with_table();
            ran(&g, "CREATE VIRTUAL TABLE doc USING fts5(body);");
            ran(&g, "INSERT INTO doc(rowid, body) VALUES(1, 'one two');");
            refused_naming(&g, &insert("fts5_source_id()"), "fts5_source_id");
            // FTS5's auxiliary functions are D1's, in a view a dump holds.
            ran(
                &g,
                "CREATE VIEW found AS SELECT highlight(doc, 0, '[', ']'), bm25(doc), \
                 snippet(doc, 0, '[', ']', '…', 2) FROM doc WHERE doc MATCH 'one';",
            );
        }

        #[test]
        fn sqlites_own_details() {
            let g = with_table();
            for (call, name) in [
                ("sqlite_version()", "sqlite_version"),
                ("sqlite_source_id()", "sqlite_source_id"),
                (
                    "sqlite_compileoption_used('x')",
                    "sqlite_compileoption_used",
                ),
                ("load_extension('x')", "load_extension"),
            ] {
                let message = refused(&g, &insert(call));
                assert!(message.contains(name), "{call}: {message}");
            }
        }

        /// A migration runs in D1 under the same rule: the tool's own
        /// statements on a gated connection (a migration's replay) may call
        /// no function D1 refuses.
        #[test]
        fn a_migrations_statement_is_held_to_them_too() {
            let g = with_table();
            let e = g
                .db()
                .execute_batch("INSERT INTO f VALUES(if(1,'x','b'));")
                .unwrap_err();
            assert!(e.to_string().contains("not authorized"), "{e}");
            g.db()
                .execute_batch("INSERT INTO f VALUES(iif(1,'x','b'));")
                .unwrap();
        }
    }

    /// rvCI 3: SQLite's `no such function: NAME` quoted a row's text: a
    /// dump's `VALUES(1,SECRETVAL9('a'))` printed the word.
    #[test]
    fn no_such_function_quotes_no_name() {
        let g = gate();
        ran(&g, "CREATE TABLE t(id INTEGER PRIMARY KEY, v);");
        let message = match g.run("INSERT INTO t VALUES(1, SECRETVAL9('a'));") {
            Outcome::Failed(e) => without_values(&e),
            other => panic!("not failed: {other:?}"),
        };
        assert!(
            message.starts_with("no such function") && !message.contains("SECRETVAL9"),
            "{message}"
        );
    }
}
