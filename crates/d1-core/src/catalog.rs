//! The live database's schema, and what it means for an export.
//!
//! wrangler refuses to export a database that has a virtual table (FTS5):
//! `D1 Export error: cannot export databases with Virtual Tables (fts5)`. It
//! does export tables named with `--table`, but then it also drops every
//! index, trigger and view whose own name is not in that list. [`ExportScope`]
//! works around both: it names every real table, every schema object, and the
//! content of each FTS5 table, and it records the virtual tables' DDL so that
//! a restore can recreate and rebuild them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One row of `sqlite_master`, with the kind `PRAGMA table_list` gives tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaObject {
    /// `table`, `index`, `trigger` or `view`.
    pub kind: String,
    pub name: String,
    pub table: String,
    pub sql: Option<String>,
    /// For tables: `table`, `virtual` or `shadow` (from `PRAGMA table_list`).
    pub table_kind: Option<String>,
}

/// The schema of a live database, in creation order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub objects: Vec<SchemaObject>,
}

/// SQL for a schema row's table as the table spells its own name, in
/// `schema`'s `sqlite_schema` read `AS s`: SQLite keeps a trigger's
/// `tbl_name` as its CREATE TRIGGER wrote it (`ON POST` for `Post`), and
/// finds names with ASCII letters in any case, as `COLLATE NOCASE` does.
pub fn spelt_table_sql(schema: &str) -> String {
    format!(
        "coalesce((SELECT t.name FROM {schema}.sqlite_schema AS t WHERE t.type IN ('table', \
         'view') AND t.name = s.tbl_name COLLATE NOCASE), s.tbl_name)"
    )
}

/// The query that reads a [`Catalog`]: two statements, one wrangler call.
pub const CATALOG_SQL: &str =
    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid; PRAGMA table_list;";

impl Catalog {
    /// Parses `wrangler d1 execute --json --command CATALOG_SQL` output: an
    /// array with one `{results: [...]}` per statement.
    pub fn from_wrangler_json(value: &serde_json::Value) -> Result<Catalog> {
        let results = value
            .as_array()
            .filter(|a| a.len() == 2)
            .context("expected wrangler to return two result sets for the schema query")?;
        let master = rows(&results[0])?;
        let table_list = rows(&results[1])?;
        let kinds: BTreeMap<&str, &str> = table_list
            .iter()
            .filter(|r| r.get("schema").and_then(|s| s.as_str()) == Some("main"))
            .filter_map(|r| Some((r.get("name")?.as_str()?, r.get("type")?.as_str()?)))
            .collect();
        let mut objects = Vec::new();
        for row in master {
            let text = |key: &str| -> Result<String> {
                row.get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .with_context(|| format!("schema row without `{key}`: {row}"))
            };
            let name = text("name")?;
            let kind = text("type")?;
            let table_kind = (kind == "table")
                .then(|| kinds.get(name.as_str()).map(|k| (*k).to_owned()))
                .flatten();
            objects.push(SchemaObject {
                table: text("tbl_name")?,
                sql: row.get("sql").and_then(|v| v.as_str()).map(str::to_owned),
                kind,
                name,
                table_kind,
            });
        }
        // SQLite keeps a trigger's `tbl_name` as its CREATE TRIGGER wrote
        // it (`ON POST` for `Post`): it is kept as the table spells itself.
        let spelt: Vec<String> = objects
            .iter()
            .filter(|o| matches!(o.kind.as_str(), "table" | "view"))
            .map(|o| o.name.clone())
            .collect();
        for o in &mut objects {
            if let Some(name) =
                crate::names::as_sqlite_finds(spelt.iter().map(String::as_str), &o.table)
            {
                o.table = name.to_owned();
            }
        }
        Ok(Catalog { objects })
    }

    /// User tables: real tables other than SQLite's, D1's and wrangler's own.
    pub fn user_tables(&self) -> impl Iterator<Item = &SchemaObject> {
        self.objects.iter().filter(|o| {
            o.kind == "table"
                && !o.name.starts_with("sqlite_")
                && !o.name.starts_with("_cf_")
                && !crate::statement::is_migrations_table(&o.name)
        })
    }

    /// The tables the view `name` reads ([`tables_a_view_reads`]), or
    /// `None` when the schema has no view so named.
    pub fn view_reads(&self, name: &str) -> Option<Vec<String>> {
        let view = { self.objects.iter() }
            .find(|o| o.kind == "view" && o.name.eq_ignore_ascii_case(name))?;
        let schema: Vec<String> = { self.objects.iter() }
            .filter_map(|o| o.sql.clone())
            .collect();
        Some(tables_a_view_reads(&schema, &view.name))
    }

    pub fn virtual_tables(&self) -> Vec<VirtualTable> {
        self.objects
            .iter()
            .filter(|o| o.kind == "table" && is_virtual(o))
            .map(VirtualTable::from_object)
            .collect()
    }

    /// The tables SQLite takes for a shadow table of an FTS5 table by their
    /// name (`docs_content` beside `docs`) that the FTS5 table does not make
    /// itself (its content is `''` or another table, or `columnsize=0`), each
    /// with that FTS5 table: an app's own table, created before the FTS5
    /// table, which no export carries (shadow tables are left out) and to
    /// which D1 allows no write. SQLite matches the names in any case.
    pub fn tables_taken_for_shadow_tables(&self) -> Vec<(String, String)> {
        let fts5: Vec<VirtualTable> = { self.virtual_tables().into_iter() }
            .filter(|v| v.module == "fts5")
            .collect();
        // The one FTS5 table whose shadow table the name is, if any: a
        // shadow name holds no `_`, so `docs_x_data` is `docs_x`'s, never
        // `docs`'s (`x_data` is no shadow name).
        let taken = |o: &SchemaObject| {
            let name = o.name.to_ascii_lowercase();
            let (v, suffix) = fts5.iter().find_map(|v| {
                let suffix = name
                    .strip_prefix(&v.name.to_ascii_lowercase())?
                    .strip_prefix('_')?;
                FTS5_SHADOW_TABLES.contains(&suffix).then_some((v, suffix))
            })?;
            (!v.makes_shadow_table(suffix)).then(|| (o.name.clone(), v.name.clone()))
        };
        { self.objects.iter() }
            .filter(|o| o.kind == "table" && o.table_kind.as_deref() == Some("shadow"))
            .filter_map(taken)
            .collect()
    }

    /// The `CREATE TABLE` statements a whole export writes, in its order:
    /// every table's but SQLite's own and those D1 reserves.
    pub fn exported_tables(&self) -> Vec<(String, String)> {
        self.objects
            .iter()
            .filter(|o| o.kind == "table")
            .filter(|o| !o.name.starts_with("sqlite_") && !o.name.starts_with("_cf_"))
            .filter_map(|o| Some((o.name.clone(), o.sql.clone()?)))
            .collect()
    }

    /// The `CREATE` statements of every schema object, but SQLite's and
    /// workerd's own, in creation order (for [`schema_copy`]).
    pub fn schema_statements(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| !o.name.starts_with("sqlite_") && !o.name.starts_with("_cf_"))
            .filter_map(|o| o.sql.clone())
            .collect()
    }

    /// Those of `tables` whose `CREATE TABLE` says `AUTOINCREMENT` (in any
    /// case): the tables that may have a counter in `sqlite_sequence`.
    pub fn autoincrement_tables<'a>(&self, tables: &'a [String]) -> Vec<&'a String> {
        let ddl = self.create_statements();
        tables
            .iter()
            .filter(|t| {
                ddl.get(*t)
                    .is_some_and(|sql| sql.to_ascii_uppercase().contains("AUTOINCREMENT"))
            })
            .collect()
    }

    /// `CREATE TABLE` statements by table name.
    pub fn create_statements(&self) -> BTreeMap<String, String> {
        self.objects
            .iter()
            .filter(|o| o.kind == "table")
            .filter_map(|o| Some((o.name.clone(), o.sql.clone()?)))
            .collect()
    }

    /// The table (or view) of this name, as SQLite finds it: ASCII letters
    /// in any case (`--table post` is the table `Post`). Triggers and
    /// indexes have names of their own, and are never found for one.
    fn find_table(&self, name: &str) -> Option<&SchemaObject> {
        let tables = || {
            self.objects
                .iter()
                .filter(|o| matches!(o.kind.as_str(), "table" | "view"))
        };
        let name = crate::names::as_sqlite_finds(tables().map(|o| o.name.as_str()), name)?;
        tables().find(|o| o.name == name)
    }
}

fn is_virtual(o: &SchemaObject) -> bool {
    o.table_kind.as_deref() == Some("virtual")
        || o.sql.as_deref().is_some_and(|s| {
            s.trim_start()
                .to_ascii_uppercase()
                .starts_with("CREATE VIRTUAL TABLE")
        })
}

fn rows(result: &serde_json::Value) -> Result<&Vec<serde_json::Value>> {
    result
        .get("results")
        .and_then(|r| r.as_array())
        .context("a wrangler result set without `results`")
}

/// The `CREATE` text of each schema object of `kind` (`table`, `trigger`,
/// …) in `db`, by name, as SQLite stores it; empty if it cannot be read.
pub fn created_in(db: &rusqlite::Connection, kind: &str) -> BTreeMap<String, String> {
    let Ok(mut stmt) =
        db.prepare("SELECT name, sql FROM sqlite_master WHERE type = ?1 AND sql NOT NULL")
    else {
        return BTreeMap::new();
    };
    stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// What each schema object of `db`'s `main` schema is (`table`, `view`,
/// `virtual`, `shadow`), by name, read once. Only a `table` or `shadow`
/// holds its rows: reading a view or a virtual table (an FTS5 table over
/// external content) runs a query that the database's own SQL wrote, so
/// the tool's checks read neither.
///
/// Read once for all the tables a check reads, never once a table: SQLite
/// lists tables (`pragma_table_list`, by name or not) only after preparing
/// each view whose columns it does not know, and a view over a dropped
/// table (legal in SQLite, and in real dumps) never prepares, so it is
/// tried again once for each table of the schema at every listing. With
/// 2,000 tables and one such view, a lookup of each of 200 tables took
/// 40 s, and this one read takes 0.3 s
/// (`catalog::object_kind_tests::a_view_that_cannot_be_prepared_costs_one_read_of_the_kinds_not_one_a_table`).
#[derive(Debug, Default, Clone)]
pub struct Kinds {
    /// Each object's kind, by its name in ASCII lower case.
    by_name: BTreeMap<String, String>,
}

impl Kinds {
    /// The kinds of every object of `db`'s `main` schema. The schema table
    /// is listed as `sqlite_schema`, and found by that name only.
    pub fn read(db: &rusqlite::Connection) -> rusqlite::Result<Kinds> {
        let mut stmt =
            db.prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")?;
        let by_name = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?.to_ascii_lowercase(), r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Kinds { by_name })
    }

    /// What the object named `name` is, matched as SQLite matches names
    /// (ASCII letters in any case), or `None` when there is none.
    pub fn of(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether `name` is a table that holds its rows.
    pub fn stores_rows(&self, name: &str) -> bool {
        matches!(self.of(name), Some("table" | "shadow"))
    }
}

/// The triggers a dump creates (by name, its `CREATE TRIGGER` text) that
/// the migrations do not create, or create with other text. A trigger
/// runs on later writes to the database, long after the restore's checks,
/// so a backup's triggers must be the migrations' own. Texts are compared
/// by their tokens ([`crate::statement::without_layout`]), without a final
/// `;`, blanks, comments or line endings outside their strings: a
/// migration saved with CRLF (an editor, git's `autocrlf`) makes a trigger
/// whose text has CRLF, which a dump converted to CRLF or back keeps or
/// loses with every other line; a string's own CRLF is its value. A trigger is the migrations' under any
/// case of its name, as SQLite finds names, and its text must then be
/// theirs (which spells the name as they do).
pub fn foreign_triggers(
    dump: &BTreeMap<String, String>,
    migrations: &BTreeMap<String, String>,
) -> Vec<String> {
    // Compared by their tokens, as tables are ([`schema_changes`]): a CRLF
    // inside a string is the string's.
    let bare = |sql: &str| crate::statement::without_layout(sql.trim().trim_end_matches(';'));
    dump.iter()
        .filter(|(name, sql)| {
            // Names as SQLite finds them: ASCII case ignored.
            let made = { migrations.iter() }.find(|(m, _)| m.eq_ignore_ascii_case(name));
            made.map(|(_, m)| bare(m)) != Some(bare(sql))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A table or an index as `sqlite_schema` holds it: its kind, the table it
/// is on (a table's own name) and its `CREATE` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defined {
    pub kind: String,
    pub table: String,
    pub sql: String,
}

/// The tables and indexes of `db` that have a text (an index SQLite makes
/// for a UNIQUE or PRIMARY KEY has none), by name.
pub fn defined_in(db: &rusqlite::Connection) -> BTreeMap<String, Defined> {
    let Ok(mut stmt) = db.prepare(
        "SELECT name, type, tbl_name, sql FROM sqlite_master \
         WHERE type IN ('table', 'index', 'view') AND sql NOT NULL",
    ) else {
        return BTreeMap::new();
    };
    let rows = stmt.query_map([], |r| {
        let (kind, table, sql) = (r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((r.get(0)?, Defined { kind, table, sql }))
    });
    rows.map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// How a dump's tables and indexes differ from those the migrations make
/// ([`schema_changes`]): names as the dump (`changed`) or the migrations
/// (`missing`) spell them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaChanges {
    /// The dump's tables and indexes that a migration makes with another
    /// text (another CHECK, DEFAULT, UNIQUE, FOREIGN KEY, column).
    pub changed: Vec<String>,
    /// The migrations' indexes on a table the dump holds that the dump
    /// lacks (a UNIQUE index dropped).
    pub missing: Vec<String>,
}

impl SchemaChanges {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty()
    }
}

/// The dump's tables and indexes (`dump`: by name, its `CREATE` text)
/// against those the migrations leave in `sqlite_schema` when run
/// (`made`), as [`foreign_triggers`] compares triggers, and for the same
/// reason: a table's CHECK, DEFAULT, UNIQUE and FOREIGN KEY act on every
/// later write, long after a restore's checks. `made` is what running the
/// migrations leaves, not their files' text: an `ALTER TABLE` rewrites
/// the table's stored text, which is what a dump holds. Texts are compared
/// from the name on ([`crate::statement::after_created_name`]), so that
/// `IF NOT EXISTS` or the name's quoting is no difference, and without
/// their layout ([`crate::statement::without_layout`]): `d1_migrations` is
/// made by whichever wrangler (or tool) came first, indented its own way,
/// and a rehearsal's prod made it with spaces where wrangler has tabs. A table or
/// index no migration makes (made by hand, or by another branch's
/// migration) is not judged.
pub fn schema_changes(
    dump: &BTreeMap<String, String>,
    made: &BTreeMap<String, Defined>,
) -> SchemaChanges {
    let bare = |sql: &str| {
        let sql = sql.trim().trim_end_matches(';').trim_end();
        let after = crate::statement::after_created_name(sql).unwrap_or(sql);
        // What comes before the name says UNIQUE or not, and it only: its
        // words, not a comment's (`/* UNIQUE */ CREATE INDEX` made the
        // migrations' UNIQUE index a plain one unseen).
        let before = crate::statement::without_layout(&sql[..sql.len() - after.len()]);
        let unique = { before.split_whitespace() }.any(|w| w.eq_ignore_ascii_case("UNIQUE"));
        // A CRLF outside quotes is layout; inside a string it is the
        // string's (a CHECK on `'\r\n'` is not one on `'\n'`).
        (unique, crate::statement::without_layout(after))
    };
    // By name, ASCII case ignored as SQLite matches names: looked up, not
    // scanned for each (rvMD 2: tables × objects).
    let made_by_name: BTreeMap<String, &Defined> = { made.iter() }
        .map(|(name, m)| (name.to_ascii_lowercase(), m))
        .collect();
    let dump_names: BTreeSet<String> = dump.keys().map(|d| d.to_ascii_lowercase()).collect();
    let changed = { dump.iter() }
        .filter(|(name, sql)| {
            { made_by_name.get(&name.to_ascii_lowercase()) }
                .is_some_and(|m| bare(&m.sql) != bare(sql))
        })
        .map(|(name, _)| name.clone())
        .collect();
    let holds = |name: &str| dump_names.contains(&name.to_ascii_lowercase());
    let missing = { made.iter() }
        .filter(|(name, m)| m.kind == "index" && holds(&m.table) && !holds(name))
        .map(|(name, _)| name.clone())
        .collect();
    SchemaChanges { changed, missing }
}

/// The indexes a dump creates (`dump`: by name, its `CREATE` text) that no
/// migration makes (none of `made` under any case of its name) on a table
/// a migration makes (`made`'s tables, `d1_migrations` among them), as
/// (UNIQUE ones, plain ones). [`schema_changes`] judges only what a
/// migration makes, so `CREATE UNIQUE INDEX accounts_one_member ON
/// accounts ((role='member')) WHERE role='member'` restored without a
/// word, and a second member account could no longer be made: a UNIQUE
/// index (partial, on an expression, or not) constrains every later write
/// as a table's UNIQUE does. A plain one only slows writes. An index
/// whose table cannot be read from its text is taken as on one of the
/// migrations' (fail closed).
pub fn unmade_indexes(
    dump: &BTreeMap<String, String>,
    made: &BTreeMap<String, Defined>,
) -> (Vec<String>, Vec<String>) {
    let on_made_table = |sql: &str| {
        let table = crate::statement::after_created_name(sql)
            .map(crate::statement::skip_trivia)
            .and_then(|rest| crate::statement::strip_keyword(rest, "ON"))
            .map(crate::statement::skip_trivia)
            .and_then(crate::statement::qualified_name);
        table.is_none_or(|(_, table, _)| makes_table(made, &table))
    };
    let (mut unique, mut plain) = (Vec::new(), Vec::new());
    for (name, sql) in dump {
        let is_index = matches!(crate::statement::created_object(sql), Some(("index", _)));
        let made_so = makes(made, name);
        if !is_index || made_so || !on_made_table(sql) {
            continue;
        }
        // What comes before the name says UNIQUE or not; a comment there
        // naming it is taken as saying so (fail closed).
        let after = crate::statement::after_created_name(sql).unwrap_or_default();
        let before = &sql[..sql.len() - after.len()];
        match before.to_ascii_uppercase().contains("UNIQUE") {
            true => unique.push(name.clone()),
            false => plain.push(name.clone()),
        }
    }
    (unique, plain)
}

/// Whether the migrations make an object named `name` (`made`), ASCII
/// case ignored as SQLite finds names.
fn makes(made: &BTreeMap<String, Defined>, name: &str) -> bool {
    made.keys().any(|m| m.eq_ignore_ascii_case(name))
}

/// Whether the migrations make a table named `name` (`made`), ASCII case
/// ignored.
fn makes_table(made: &BTreeMap<String, Defined>, name: &str) -> bool {
    { made.iter() }.any(|(m, d)| d.kind == "table" && m.eq_ignore_ascii_case(name))
}

/// The tables a dump creates that no migration makes (none of `made`
/// under any case of its name) whose FOREIGN KEY refers to a table a
/// migration makes: `CREATE TABLE account_holds (account_id REFERENCES
/// accounts (id))` restored without a word, and no account it held could
/// be deleted again. It constrains later writes to the migrations' table
/// as a UNIQUE index on it does ([`unmade_indexes`]). A `REFERENCES` whose
/// table cannot be read is taken as one of the migrations' (fail closed).
pub fn unmade_referencing_tables(
    dump: &BTreeMap<String, String>,
    made: &BTreeMap<String, Defined>,
) -> Vec<String> {
    { dump.iter() }
        .filter(|(name, sql)| {
            matches!(crate::statement::created_object(sql), Some(("table", _)))
                && !makes(made, name)
                && crate::statement::referenced_tables(sql)
                    .is_none_or(|tables| tables.iter().any(|t| makes_table(made, t)))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// [`schema_changes`], with the UNIQUE indexes of [`unmade_indexes`] and
/// the tables of [`unmade_referencing_tables`] among `changed`: what
/// restore refuses, verify warns of and a way back carries
/// `--allow-schema-change` for.
pub fn schema_changes_constraining(
    dump: &BTreeMap<String, String>,
    made: &BTreeMap<String, Defined>,
) -> SchemaChanges {
    let mut changes = schema_changes(dump, made);
    changes.changed.extend(unmade_indexes(dump, made).0);
    changes
        .changed
        .extend(unmade_referencing_tables(dump, made));
    changes
}

/// Triggers that cannot run in the database whose schema `db` holds: a
/// trigger of a backup of chosen tables that writes to a table the backup
/// does not hold (a log, an FTS5 index), so that the app's next INSERT,
/// UPDATE or DELETE on its table fails with `no such table`. SQLite checks a
/// trigger's body only when a statement that fires it is prepared; each
/// such statement is prepared here, never run, on an empty copy of the
/// schema in memory (so that nothing of `db` runs, and no rule of a load's
/// judge is asked of the tool's own statements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckTrigger {
    /// The table (or view) the triggers are on.
    pub table: String,
    /// `INSERT into`, `UPDATE of` or `DELETE from`.
    pub statement: &'static str,
    /// The triggers on `table` that name what is missing (all of them when
    /// none does).
    pub triggers: Vec<String>,
    /// SQLite's error: `no such table: main.order_log`.
    pub error: String,
    /// Not what the backup lacks, but an index no backup can carry: the
    /// contentless FTS5 table the triggers delete from comes back empty.
    pub index_comes_back_empty: bool,
}

impl std::fmt::Display for StuckTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self
            .triggers
            .iter()
            .map(|t| crate::names::shown_name(t).into_owned())
            .collect();
        write!(
            f,
            "{} {} on {} cannot run: every {} {} will fail with `{}`",
            ["trigger", "triggers"][usize::from(shown.len() > 1)],
            shown.join(", "),
            crate::names::shown_name(&self.table),
            self.statement,
            crate::names::shown_name(&self.table),
            crate::names::shown(&self.error)
        )
    }
}

/// The statements that make `db`'s schema, as SQLite stores them: every
/// table (a virtual one, not its shadow tables), index, view and trigger,
/// in the order they were made.
pub fn schema_sql(db: &rusqlite::Connection) -> rusqlite::Result<Vec<String>> {
    db.prepare(
        "SELECT sql FROM main.sqlite_schema WHERE sql IS NOT NULL \
         AND name NOT IN (SELECT name FROM pragma_table_list WHERE schema = 'main' \
         AND type = 'shadow') ORDER BY rowid",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// The tables of `db` whose foreign keys reference a table `db` does not
/// hold, as (table, parent), once each. D1 enforces foreign keys, and
/// SQLite then refuses every INSERT into such a table ("no such table:
/// main.parent"), whatever its values: a backup of chosen tables that
/// leaves a parent out restores by no road, and leaves the app unable to
/// write to the table.
pub fn missing_parents(db: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, String)>> {
    db.prepare(
        "SELECT DISTINCT m.name, f.\"table\" FROM main.sqlite_schema AS m, \
         pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' AND NOT EXISTS \
         (SELECT 1 FROM main.sqlite_schema AS p WHERE p.type = 'table' \
         AND p.name = f.\"table\" COLLATE NOCASE) ORDER BY 1, 2",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// [`missing_parents`] said: the tables and the fix, names only.
pub fn missing_parents_said(missing: &[(String, String)]) -> String {
    let (pairs, parents) = pairs_and_parents(missing);
    // A name starting with `-` is typed joined to its option (rvCB 3).
    let mut dashed: Vec<String> = { missing.iter() }
        .filter(|(_, p)| p.starts_with('-'))
        .map(|(_, p)| crate::wording::table_option(p))
        .collect();
    dashed.dedup();
    let typed = match dashed.is_empty() {
        true => String::new(),
        false => format!(" (`{}`)", dashed.join(" ")),
    };
    format!(
        "{pairs}, which the backup does not hold: D1 enforces foreign keys, so no restore can \
         load those rows, nor the app write to those tables, without {}. Take {} with --table \
         too{typed}",
        crate::wording::them(parents.len()),
        parents.join(", ")
    )
}

/// The tables with a foreign key naming a virtual table
/// ([`crate::foreign_keys::Judgement::virtual_parents`]) said: the tables,
/// what follows, and the fix, names only; verify's finding and restore's
/// refusal alike.
pub fn mismatched_parents_said(referencing: &[(String, String)]) -> String {
    let (pairs, _) = pairs_and_parents(referencing);
    format!(
        "{pairs} by a FOREIGN KEY SQLite cannot check: it names a virtual table (FTS5), which \
         no foreign key can refer to. {CANNOT_CHECK_FOLLOWS} In the database it came from, make \
         that FOREIGN KEY refer to a plain table's PRIMARY KEY or UNIQUE columns (or take it out \
         of its CREATE TABLE), and export again"
    )
}

/// [`crate::foreign_keys::Judgement::mismatched`] whose parents are plain
/// tables said: the key
/// names columns that are neither the parent's PRIMARY KEY nor UNIQUE
/// (verify knows which, and no longer says "a virtual table (FTS5)" of
/// one: rvCE), what follows, and the fix, which is the database's: a
/// migration, as ALTER TABLE cannot change a key.
pub fn plain_parents_mismatched_said(referencing: &[(String, String)]) -> String {
    let (pairs, parents) = pairs_and_parents(referencing);
    let named = match parents.as_slice() {
        [parent] => format!("columns of {parent} that are neither its PRIMARY KEY nor UNIQUE"),
        _ => "columns of the table it names that are neither its PRIMARY KEY nor UNIQUE".into(),
    };
    format!(
        "{pairs} by a FOREIGN KEY SQLite cannot check: it names {named}. {CANNOT_CHECK_FOLLOWS} \
         In the database it came from, make that FOREIGN KEY refer to the PRIMARY KEY or UNIQUE \
         columns of the table it names, or give those columns a UNIQUE index, in a migration \
         (ALTER TABLE cannot change a key: the table is made again), and back up again"
    )
}

/// What a foreign key SQLite cannot check does, whatever it names.
const CANNOT_CHECK_FOLLOWS: &str = "SQLite refuses every write to the table that has it \
     (\"foreign key mismatch\"), so D1, which enforces foreign keys, loads none of its rows and \
     the app can write none; nor does a load of a dump, which defers foreign keys, insert any row \
     of the table it names.";

/// [`crate::foreign_keys::Judgement::mismatched`] of tables without rows,
/// said for verify's pass:
/// a load of the dump fails on none of them.
pub fn mismatched_parents_unwritten(referencing: &[(String, String)]) -> String {
    let (pairs, _) = pairs_and_parents(referencing);
    format!(
        "{pairs} by a FOREIGN KEY SQLite cannot check (\"foreign key mismatch\": D1 refuses \
         every write to the table that has it), and {} no rows to check",
        if referencing.len() == 1 {
            "holds"
        } else {
            "they hold"
        }
    )
}

/// [`missing_parents`] of a dump without a manifest (a hand `wrangler d1
/// export --table child`), said: what its rows need, what a restore of it
/// leaves, and the export that holds the parents too, names only (rvBP 5).
pub fn export_without_parents_said(missing: &[(String, String)]) -> String {
    let (pairs, parents) = pairs_and_parents(missing);
    let mut tables: Vec<&str> = { missing.iter() }
        .flat_map(|(t, p)| [p.as_str(), t.as_str()])
        .collect();
    // Parents first, each table once, as they were met.
    tables.sort_by_key(|t| !missing.iter().any(|(_, p)| p == t));
    let mut seen = std::collections::BTreeSet::new();
    tables.retain(|t| seen.insert(t.to_ascii_lowercase()));
    let flags: String = { tables.iter() }
        .map(|t| format!(" {}", crate::wording::table_option(t)))
        .collect();
    format!(
        "{pairs}, which the dump does not hold (an export of chosen tables): D1 enforces \
         foreign keys, so those rows load only into a database that has {}, not into an empty \
         one, and a restore of this dump leaves none (an empty database lacks {}, and --replace \
         drops every table the dump does not hold). Export {} with {} (`wrangler d1 export \
         DATABASE{flags} --output FILE`) and restore that",
        parents.join(", "),
        crate::wording::them(parents.len()),
        parents.join(", "),
        crate::wording::them(tables.len() - parents.len()),
    )
}

/// The pairs of [`missing_parents`] as a message lists them (`child
/// references parent`), and the parents, each once, as shown.
fn pairs_and_parents(missing: &[(String, String)]) -> (String, Vec<String>) {
    let pairs: Vec<String> = missing
        .iter()
        .map(|(table, parent)| {
            format!(
                "{} references {}",
                crate::names::shown_name(table),
                crate::names::shown_name(parent)
            )
        })
        .collect();
    let mut parents: Vec<&str> = missing.iter().map(|(_, p)| p.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    let parents = { parents.iter() }
        .map(|p| crate::names::shown_name(p).into_owned())
        .collect();
    (pairs.join(", "), parents)
}

/// Whether `text` holds `word` as a name of its own: not inside a longer
/// name (`docs_idx` is not in `docs_idx2`). Both lower case.
fn names_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_name)
            && !text[i + word.len()..].chars().next().is_some_and(is_name)
    })
}

/// A table whose rowids no export carries, as it has no `INTEGER PRIMARY
/// KEY` (wrangler's export and `sqlite3 .dump` write no rowid for it), and
/// the triggers that keep its rowids elsewhere (`new.rowid`, `old.oid`, …):
/// a restore gives its rows rowids 1, 2, … in order, and what the triggers
/// kept (an FTS5 index by rowid) then names other rows, once any row was
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowidsKept {
    pub table: String,
    pub triggers: Vec<String>,
    /// The name that reaches the table's rowid (`rowid`, unless a column
    /// of its own takes that name, then `_rowid_` or `oid`).
    pub rowid: &'static str,
}

/// The columns of `tables` that keep a whole REAL (3.0, 1e15, -0.0) as a
/// REAL: those of BLOB affinity (no declared type, `BLOB`), and a STRICT
/// table's `ANY`. D1's export writes such a value through a JavaScript
/// number, as an integer literal (3), which they keep as an INTEGER; every
/// other column turns it back into a REAL, or had made it an INTEGER on
/// insert. Per table, read on a copy of the schema in memory.
pub fn columns_keeping_whole_reals(
    schema: &[String],
    tables: &[String],
) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    columns_where(schema, tables, false, |strict, declared| {
        let declared = declared.to_ascii_uppercase();
        (strict && declared == "ANY") || blob_affinity(&declared)
    })
}

/// Every column of `tables` that an export writes (generated columns are
/// left out), per table: any of them can hold text, whatever its type. A
/// virtual table among them is read as its module shows its columns: an
/// FTS5 table's are the columns of its `_content` shadow table, which the
/// export writes, under the names its user knows ([`ExportScope::read_as`]).
pub fn columns_exported(
    schema: &[String],
    tables: &[String],
) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    columns_where(schema, tables, true, |_, _| true)
}

/// The columns of the ordinary tables among `tables` (and, `virtual_too`,
/// the virtual ones) for which `keep` (whether the table is STRICT, the
/// column's declared type) holds, per table in order, tables with none
/// left out. Read on a copy of the schema in memory.
fn columns_where(
    schema: &[String],
    tables: &[String],
    virtual_too: bool,
    keep: impl Fn(bool, &str) -> bool,
) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    use rusqlite::OptionalExtension as _;
    let copy = schema_copy(schema)?;
    let mut out = Vec::new();
    for table in tables {
        // An ordinary table, unless asked: a virtual table's values are
        // its module's, and one the copy could not make is none.
        let strict: Option<bool> = copy
            .query_row(
                "SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = ?1 \
                 AND (type = 'table' OR (?2 AND type = 'virtual'))",
                rusqlite::params![table, virtual_too],
                |r| r.get(0),
            )
            .optional()?;
        let Some(strict) = strict else {
            continue;
        };
        let columns: Vec<String> = copy
            .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .filter_map(|c| match c {
                Ok((name, declared)) => keep(strict, &declared).then_some(Ok(name)),
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<_>>()?;
        if !columns.is_empty() {
            out.push((table.clone(), columns));
        }
    }
    Ok(out)
}

/// Whether a column declared `declared` (upper case) has BLOB affinity,
/// by SQLite's rules (section 3.1 of "Datatypes In SQLite"), in order.
fn blob_affinity(declared: &str) -> bool {
    let has = |s: &str| declared.contains(s);
    !has("INT")
        && !has("CHAR")
        && !has("CLOB")
        && !has("TEXT")
        && (has("BLOB") || declared.is_empty())
}

/// Read-only queries counting, per table, the whole REALs in `columns`
/// ([`columns_keeping_whole_reals`]) that D1's export writes as integer
/// literals: those within ±2^63 (beyond, JavaScript's digits are too big
/// for an INTEGER, and SQLite reads them back as REALs). `c = CAST(c AS
/// INTEGER)` compares exactly, and the bound keeps CAST from saturating.
/// `abs` is reached only through `CASE` on a REAL: SQL's `AND` evaluates
/// both sides, and `abs` of the INTEGER -9223372036854775808 fails the
/// whole query ("integer overflow").
/// Each query is a `UNION ALL` of rows `(name, n)`, kept under
/// `most_bytes` and [`WHOLE_REALS_MOST_SELECTS`] terms; a table whose own
/// SELECT is over `most_bytes` is left out ([`WholeRealsQueries::left_out`]).
pub fn whole_reals_queries(
    columns: &[(String, Vec<String>)],
    most_bytes: usize,
) -> WholeRealsQueries {
    use crate::statement::{quote_ident, quote_literal};
    let selects = columns.iter().map(|(table, cols)| {
        let whole: Vec<String> = cols
            .iter()
            .map(|c| {
                let c = quote_ident(c);
                format!(
                    "(CASE WHEN typeof({c}) = 'real' THEN abs({c}) < 9223372036854775808.0 \
                     AND {c} = CAST({c} AS INTEGER) ELSE 0 END)"
                )
            })
            .collect();
        format!(
            "SELECT {} AS name, coalesce(sum({}), 0) AS n FROM {}",
            quote_literal(table),
            whole.join(" + "),
            quote_ident(table)
        )
    });
    union_all(
        { columns.iter() }
            .map(|(table, _)| table)
            .zip(selects.map(|s| vec![s])),
        most_bytes,
    )
}

/// `selects` (one or more per table) joined with `UNION ALL` into queries
/// kept under `most_bytes` and [`WHOLE_REALS_MOST_SELECTS`] terms; a table
/// whose own SELECTs are over `most_bytes` is left out.
fn union_all<'a>(
    selects: impl Iterator<Item = (&'a String, Vec<String>)>,
    most_bytes: usize,
) -> WholeRealsQueries {
    let mut made = WholeRealsQueries::default();
    let mut terms = 0;
    for (table, own) in selects {
        let select = own.join(" UNION ALL ");
        if select.len() > most_bytes {
            made.left_out.push(table.clone());
            continue;
        }
        match made.queries.last_mut() {
            Some(q)
                if terms + own.len() <= WHOLE_REALS_MOST_SELECTS
                    && q.len() + " UNION ALL ".len() + select.len() <= most_bytes =>
            {
                q.push_str(" UNION ALL ");
                q.push_str(&select);
                terms += own.len();
                if let Some(tables) = made.tables.last_mut() {
                    tables.push(table.clone());
                }
            }
            _ => {
                made.queries.push(select);
                made.tables.push(vec![table.clone()]);
                terms = own.len();
            }
        }
    }
    made
}

/// Read-only queries reading, in one pass over each table, the bytes (in
/// hex) of its text values that are not all ASCII, in `columns`
/// ([`columns_exported`]), for [`NotUtf8`] to count those that are not
/// UTF-8: D1 hands text to JavaScript, which decodes such bytes as
/// U+FFFD, so its export (and its query API) write another value. No SQL
/// function of D1's tells UTF-8 from not, and `GLOB` decodes every byte
/// over 0x7f as a character outside 1 to 0x7f, so the filter passes every
/// value with such a byte and no ASCII one. One row per piece of a value
/// of [`NON_ASCII_PIECE`] bytes, under D1's 2 MB string limit in hex (a
/// value may hold 2 MB, twice that in hex): `name` (the table), `i` (the
/// column's place in `columns`), `p` (the piece's place, from 0) and `h`,
/// its bytes in hex (`n` NULL); a value's pieces come one after another, in order,
/// as `CROSS JOIN` makes its left side the outer loop (a table has no key
/// every table shares: a WITHOUT ROWID one has no rowid). The table is
/// read as `src` and the places as `keys`, each column qualified: a
/// column of the table's named `column1` (the name SQLite gives a
/// `VALUES` column), `i` or `v` is not ambiguous; the filter runs once a
/// value, before its pieces are joined. Split as [`whole_reals_queries`].
pub fn non_ascii_text_queries(
    columns: &[(String, Vec<String>)],
    most_bytes: usize,
) -> WholeRealsQueries {
    exported_text_queries(columns, &[], most_bytes)
}

/// [`non_ascii_text_queries`] of the tables of `not_utf8`, and of those
/// of `line_breaks` a count per column (`i`, `n`; `p`, `last` and `h`
/// NULL) of the text values holding a line break and the two characters
/// `\n`, or a carriage return and `\r`: D1's export writes a value with a
/// line break as `replace('…\n…','\n',char(10))` (and `\r` with
/// char(13)), which turns such a `\n` into a line break too
/// ([`line_breaks_row`]). A table of both is read by both in the same
/// query, so one run of wrangler asks both. `i` is the column's place in
/// the table's columns, the same in both (each from [`columns_exported`]).
pub fn exported_text_queries(
    not_utf8: &[(String, Vec<String>)],
    line_breaks: &[(String, Vec<String>)],
    most_bytes: usize,
) -> WholeRealsQueries {
    let mut tables: Vec<&String> = Vec::new();
    for (table, _) in not_utf8.iter().chain(line_breaks) {
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    let own = |table: &String| {
        let of = |columns: &[(String, Vec<String>)]| {
            { columns.iter() }
                .find(|(t, _)| t == table)
                .map(|(_, cols)| cols.clone())
        };
        let selects = [
            of(not_utf8).map(|cols| non_ascii_select(table, &cols)),
            of(line_breaks).map(|cols| line_breaks_select(table, &cols)),
        ];
        selects.into_iter().flatten().collect()
    };
    union_all(tables.into_iter().map(|t| (t, own(t))), most_bytes)
}

/// The value of the column at the place `keys.column1` of `cols`, in the
/// table read as `src`.
fn value_at_key(cols: &[String]) -> String {
    use crate::statement::quote_ident;
    format!(
        "CASE keys.column1 {} END",
        { cols.iter().enumerate() }
            .map(|(i, c)| format!("WHEN {i} THEN src.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The places of `cols`, as `VALUES` rows.
fn keys_of(cols: &[String]) -> String {
    let keys: Vec<String> = (0..cols.len()).map(|i| format!("({i})")).collect();
    keys.join(", ")
}

/// [`non_ascii_text_queries`]' SELECT of one table.
fn non_ascii_select(table: &str, cols: &[String]) -> String {
    use crate::statement::{quote_ident, quote_literal};
    let pieces: Vec<String> = (0..NON_ASCII_PIECES).map(|p| format!("({p})")).collect();
    let bytes = "length(CAST(found.v AS BLOB))";
    format!(
        "SELECT found.name AS name, found.i AS i, pieces.column1 AS p, \
         {bytes} <= (pieces.column1 + 1) * {NON_ASCII_PIECE} AS last, \
         hex(substr(CAST(found.v AS BLOB), pieces.column1 * {NON_ASCII_PIECE} + 1, \
         {NON_ASCII_PIECE})) AS h, NULL AS n FROM (SELECT name, i, v FROM (SELECT {} AS name, \
         keys.column1 AS i, {} AS v FROM {} AS src CROSS JOIN (VALUES {}) AS keys) \
         WHERE {}) AS found CROSS JOIN (VALUES {}) AS pieces \
         WHERE pieces.column1 = 0 OR {bytes} > pieces.column1 * {NON_ASCII_PIECE}",
        quote_literal(table),
        value_at_key(cols),
        quote_ident(table),
        keys_of(cols),
        non_ascii_text("v"),
        pieces.join(", "),
    )
}

/// [`exported_text_queries`]' SELECT of one table's text holding a line
/// break and its escape, counted per column. In SQL `'\n'` is the two
/// characters, a backslash and `n`.
fn line_breaks_select(table: &str, cols: &[String]) -> String {
    use crate::statement::{quote_ident, quote_literal};
    format!(
        "SELECT {} AS name, found.i AS i, NULL AS p, NULL AS last, NULL AS h, count(*) AS n \
         FROM (SELECT keys.column1 AS i, {} AS v FROM {} AS src CROSS JOIN (VALUES {}) AS keys) \
         AS found WHERE typeof(found.v) = 'text' AND ((instr(found.v, char(10)) > 0 AND \
         instr(found.v, '\\n') > 0) OR (instr(found.v, char(13)) > 0 AND \
         instr(found.v, '\\r') > 0)) GROUP BY found.i",
        quote_literal(table),
        value_at_key(cols),
        quote_ident(table),
        keys_of(cols),
    )
}

/// Adds a count row of [`exported_text_queries`] (the table, the
/// column's place in its `line_breaks`, the count) to `counts`, per table
/// and column; a row naming no column asked is none.
pub fn line_breaks_row(
    line_breaks: &[(String, Vec<String>)],
    (table, i, n): (&str, usize, u64),
    counts: &mut BTreeMap<String, BTreeMap<String, u64>>,
) {
    let column = { line_breaks.iter() }
        .find(|(t, _)| t == table)
        .and_then(|(_, cols)| cols.get(i));
    if let Some(column) = column
        && n > 0
    {
        *counts
            .entry(table.to_owned())
            .or_default()
            .entry(column.clone())
            .or_default() += n;
    }
}

/// The bytes of a piece of a value [`non_ascii_text_queries`] reads: in
/// hex, 1 MB, half D1's string limit.
pub const NON_ASCII_PIECE: usize = 500_000;

/// The pieces [`non_ascii_text_queries`] reads of a value: D1 holds no
/// string over 2,000,000 bytes.
pub const NON_ASCII_PIECES: usize =
    (crate::gate::D1_VALUE_LIMIT as usize).div_ceil(NON_ASCII_PIECE);

/// Whether the column `c` (quoted) holds text with a byte over 0x7f, or
/// a NUL: `GLOB` reads text as a C string and stops at the first NUL, so
/// a byte after one is read in Rust.
fn non_ascii_text(c: &str) -> String {
    format!(
        "(typeof({c}) = 'text' AND ({c} GLOB '*[^' || char(1) || '-' || char(127) || ']*' \
         OR instr(CAST({c} AS BLOB), x'00') > 0))"
    )
}

/// Counts, per table and per column, the values [`non_ascii_text_queries`]
/// read that are not UTF-8, from its rows in order, one piece a row: a
/// value is whole at its last piece. A value it cannot read (bad hex, a
/// piece missing or out of order) is none.
#[derive(Debug, Default)]
pub struct NotUtf8 {
    /// The value being read: its table, its column's place, the next
    /// piece's place, and its bytes so far (`None` once unreadable).
    value: Option<(String, usize, usize, Option<Vec<u8>>)>,
}

/// One row of [`non_ascii_text_queries`]: the table, the column's place,
/// the piece's place, whether it is the value's last, and its hex.
pub type Piece<'a> = (&'a str, usize, usize, bool, &'a str);

impl NotUtf8 {
    /// Adds one row to the value it is a piece of, and the value it ends
    /// to `counts` if its bytes are not UTF-8. `columns` as given to
    /// [`non_ascii_text_queries`].
    pub fn row(
        &mut self,
        columns: &[(String, Vec<String>)],
        (table, i, p, last, hex): Piece<'_>,
        counts: &mut BTreeMap<String, BTreeMap<String, u64>>,
    ) {
        let value = match (p, self.value.take()) {
            (0, _) => Some((table.to_owned(), i, 1, unhex(hex))),
            (_, Some((t, place, next, Some(mut bytes))))
                if t == table && place == i && next == p =>
            {
                let more = unhex(hex).map(|more| bytes.extend(more));
                Some((t, place, next + 1, more.map(|()| bytes)))
            }
            _ => None,
        };
        match value {
            Some((table, i, _, Some(bytes))) if last => {
                let column = { columns.iter() }
                    .find(|(t, _)| *t == table)
                    .and_then(|(_, cols)| cols.get(i));
                if let Some(column) = column
                    && std::str::from_utf8(&bytes).is_err()
                {
                    *counts
                        .entry(table)
                        .or_default()
                        .entry(column.clone())
                        .or_default() += 1;
                }
            }
            value if !last => self.value = value,
            _ => {}
        }
    }
}

/// The bytes `hex` (SQLite's `hex()`, upper case) spells.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SQLite refuses a compound SELECT of more than 500 terms
/// (`SQLITE_MAX_COMPOUND_SELECT`, "too many terms in compound SELECT").
pub const WHOLE_REALS_MOST_SELECTS: usize = 400;

/// [`whole_reals_queries`]: the queries, and the tables whose own SELECT
/// alone is over the size cap, which are not counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WholeRealsQueries {
    pub queries: Vec<String>,
    pub left_out: Vec<String>,
    /// The tables each query reads, in the order of `queries`.
    pub tables: Vec<Vec<String>>,
}

/// The [`RowidsKept`] of the schema made by `schema` (its `CREATE`
/// statements), read on a copy of it in memory.
pub fn rowids_kept_by_triggers(schema: &[String]) -> rusqlite::Result<Vec<RowidsKept>> {
    let copy = schema_copy(schema)?;
    let tables: Vec<String> = copy
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND wr = 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let triggers: Vec<(String, String, String)> = copy
        .prepare(&format!(
            "SELECT name, {}, sql FROM main.sqlite_schema AS s WHERE type = 'trigger' ORDER BY name",
            spelt_table_sql("main")
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut kept = Vec::new();
    for table in tables {
        // A key that is the rowid (an `INTEGER PRIMARY KEY`, but not one
        // declared `INTEGER PRIMARY KEY DESC`) has no index of its own.
        let aliased: bool = copy.query_row(
            "SELECT (SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0) > 0 \
             AND NOT EXISTS (SELECT 1 FROM pragma_index_list(?1) WHERE origin = 'pk')",
            [&table],
            |r| r.get(0),
        )?;
        if aliased {
            continue;
        }
        // A column of its own named `rowid` is that column, which every
        // export carries: only the names it leaves to the rowid count.
        let columns: Vec<String> = copy
            .prepare("SELECT lower(name) FROM pragma_table_xinfo(?1)")?
            .query_map([&table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let reaching: Vec<&'static str> = ["rowid", "_rowid_", "oid"]
            .into_iter()
            .filter(|id| !columns.iter().any(|c| c == id))
            .collect();
        let Some(&rowid) = reaching.first() else {
            continue;
        };
        let naming: Vec<String> = triggers
            .iter()
            .filter(|(_, on, _)| *on == table)
            .filter(|(_, _, sql)| {
                let sql = without_space_around_dots(&sql.to_lowercase());
                ["new", "old"].iter().any(|row| {
                    reaching.iter().any(|id| {
                        [
                            id.to_string(),
                            format!("\"{id}\""),
                            format!("[{id}]"),
                            format!("`{id}`"),
                        ]
                        .iter()
                        .any(|spelt| names_word(&sql, &format!("{row}.{spelt}")))
                    })
                })
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        if !naming.is_empty() {
            kept.push(RowidsKept {
                table,
                triggers: naming,
                rowid,
            });
        }
    }
    Ok(kept)
}

/// `sql` with no white space before or after a dot: SQLite reads
/// `new . rowid` as `new.rowid`.
fn without_space_around_dots(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut after_dot = false;
    for c in sql.chars() {
        if c == '.' {
            out.truncate(out.trim_end().len());
            after_dot = true;
        } else if after_dot && c.is_whitespace() {
            continue;
        } else {
            after_dot = false;
        }
        out.push(c);
    }
    out
}

/// What a `CREATE TRIGGER` statement's head (the words before `BEGIN`)
/// says: its event (`insert`, `update` or `delete`, lower case) and
/// whether it has a `WHEN` clause. Read word by word, so that a line break
/// before `BEGIN`, a name like `docs_soft_delete` or a column like
/// `deleted_at` is not taken for the event.
struct TriggerHead {
    event: &'static str,
    when: bool,
    /// The body, lower case: what follows `BEGIN`.
    body: String,
}

impl TriggerHead {
    fn of(sql: &str) -> TriggerHead {
        let lower = sql.to_lowercase();
        let is_gap = |c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';';
        // The first `begin` that is a word of its own.
        let begin = lower
            .match_indices("begin")
            .map(|(i, _)| i)
            .find(|&i| {
                lower[..i].chars().next_back().is_some_and(is_gap)
                    && lower[i + 5..].chars().next().is_none_or(is_gap)
            })
            .unwrap_or(lower.len());
        let words: Vec<&str> = lower[..begin]
            .split(is_gap)
            .filter(|w| !w.is_empty())
            .collect();
        let event = words
            .iter()
            .find_map(|w| ["insert", "update", "delete"].into_iter().find(|e| e == w))
            .unwrap_or("");
        TriggerHead {
            event,
            when: words.contains(&"when"),
            body: lower[begin..].to_owned(),
        }
    }
}

/// What a restore gives back otherwise than the app keeps it, of the FTS5
/// tables `virtual_tables` that triggers of the schema `schema` keep in
/// sync (a trigger keeps one in sync when its text names it):
/// - a contentless table (`content=''`) comes back empty, so a trigger's
///   `'delete'` of a row it does not hold fails (`SQLITE_CORRUPT_VTAB`),
///   and with it the app's statement that fires it: a [`StuckTrigger`];
/// - an external-content table is rebuilt from every row of its table,
///   while a trigger with a `WHEN` clause indexes only some (a soft
///   delete): the restored index finds rows the app's did not. Said as
///   a sentence that starts with the table's name.
pub fn fts_kept_otherwise(
    schema: &[String],
    virtual_tables: &[VirtualTable],
) -> rusqlite::Result<(Vec<StuckTrigger>, Vec<String>)> {
    if virtual_tables.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    fts_kept_in(&schema_copy(schema)?, virtual_tables)
}

/// What a restore that loads a backup's rows into a schema of its own,
/// `made` (the migrations', which `--clean` makes), leaves out of the
/// backup: each of its `tables` (those it records rows of) and of the
/// tables its schema statements `dump` create that `made` does not make,
/// then the indexes and triggers `dump` makes on those, then each view of
/// `dump` that `made` lacks; as (kind, name), ASCII case ignored as SQLite
/// finds names. `d1_migrations` (the migrations make their own) and the
/// tables never restored as rows (`sqlite_sequence`, D1's `_cf_`) are not
/// among them. A virtual table of the backup's that is left out
/// (`virtual_left`) is said by its own name, after the tables, and its
/// shadow tables are not.
pub fn left_out_of(
    made: &[String],
    tables: &[&str],
    dump: &[String],
    virtual_left: &[VirtualTable],
) -> Vec<(&'static str, String)> {
    let is_made = made_by(made);
    let created = |kind: &str| -> Vec<String> {
        { dump.iter() }
            .filter_map(|sql| crate::statement::created_object(sql))
            .filter(|(k, _)| *k == kind)
            .map(|(_, name)| name)
            .collect()
    };
    let mut left: Vec<(&'static str, String)> = Vec::new();
    let own = created("table");
    for table in tables.iter().copied().chain(own.iter().map(String::as_str)) {
        let known = |(_, t): &(&str, String)| t.eq_ignore_ascii_case(table);
        if crate::statement::rows_are_checked(table)
            && !crate::statement::is_migrations_table(table)
            && !is_made(table)
            && fts5_shadow_table_of(table, virtual_left).is_none()
            && !left.iter().any(known)
        {
            left.push(("table", table.to_owned()));
        }
    }
    left.extend({ virtual_left.iter() }.map(|v| ("table", v.name.clone())));
    let on_left: Vec<(&'static str, String)> = schema_copy(dump)
        .and_then(|copy| objects_on(&copy, &left))
        .unwrap_or_default();
    let views = { created("view").into_iter() }
        .filter(|v| !is_made(v))
        .map(|v| ("view", v));
    left.extend({ on_left.into_iter() }.filter(|(_, n)| !is_made(n)));
    left.extend(views);
    left
}

/// Whether the schema statements `made` make an object named `name`
/// (ASCII case ignored, as SQLite finds names), an FTS5 table's shadow
/// tables among them, which the schema's text leaves out.
fn made_by(made: &[String]) -> impl Fn(&str) -> bool {
    let names: Vec<String> = { made.iter() }
        .filter_map(|sql| crate::statement::created_any(sql))
        .map(|(_, name)| name)
        .collect();
    let fts5: Vec<VirtualTable> = { made.iter() }
        .filter_map(|sql| {
            let (_, name) = crate::statement::created_any(sql)?;
            VirtualTable::from_sql(&name, sql)
        })
        .collect();
    move |name: &str| {
        names.iter().any(|m| m.eq_ignore_ascii_case(name))
            || fts5_shadow_table_of(name, &fts5).is_some()
    }
}

/// What a restore that drops every object of the target, `existing` (as
/// (kind, name) read from it), and makes the schema `made` (the backup's
/// own) loses besides the tables: each index, trigger and view of the
/// target that `made` does not make again, as [`left_out_of`] says them.
/// SQLite's own objects (`sqlite_autoindex_…`) are not among them.
pub fn dropped_not_made(
    made: &[String],
    existing: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let is_made = made_by(made);
    let kinds = ["index", "trigger", "view"];
    { existing.iter() }
        .filter(|(_, name)| !name.starts_with("sqlite_") && !is_made(name))
        .filter_map(|(kind, name)| Some((*kinds.iter().find(|k| *k == kind)?, name.clone())))
        .collect()
}

/// The rows a backup holds of the virtual table `vt`, as `rows` (its
/// manifest's counts, by table) records them: those of its content
/// shadow table (`<name>_content`); none of the others, whose rows are
/// a plain table's (external content) or not kept at all.
pub fn rows_of_virtual_table(vt: &VirtualTable, rows: &BTreeMap<String, u64>) -> u64 {
    let VirtualContent::Internal { table } = &vt.content else {
        return 0;
    };
    { rows.iter() }
        .filter(|(t, _)| t.eq_ignore_ascii_case(table))
        .map(|(_, n)| *n)
        .sum()
}

/// The indexes and triggers in `copy` (a schema's copy) on one of the
/// `tables`, as (kind, name).
fn objects_on(
    copy: &rusqlite::Connection,
    tables: &[(&'static str, String)],
) -> rusqlite::Result<Vec<(&'static str, String)>> {
    let mut objects = copy.prepare(
        "SELECT type, name, tbl_name FROM main.sqlite_schema \
         WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, rowid",
    )?;
    let rows: Vec<(String, String, String)> = objects
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok({ rows.into_iter() }
        .filter(|(_, _, on)| tables.iter().any(|(_, t)| t.eq_ignore_ascii_case(on)))
        .map(|(kind, name, _)| (if kind == "index" { "index" } else { "trigger" }, name))
        .collect())
}

/// What a restore into the schema `schema` makes gives back otherwise
/// than the app keeps it: its [`stuck_triggers`], then what
/// [`fts_kept_otherwise`] finds (stuck triggers, and sentences), from one
/// copy of the schema.
pub fn restored_otherwise(
    schema: &[String],
    virtual_tables: &[VirtualTable],
) -> rusqlite::Result<(Vec<StuckTrigger>, Vec<String>)> {
    if virtual_tables.is_empty() && !has_trigger(schema) {
        return Ok((Vec::new(), Vec::new()));
    }
    let copy = schema_copy(schema)?;
    let mut stuck = stuck_in(&copy)?;
    let (fts_stuck, said) = fts_kept_in(&copy, virtual_tables)?;
    stuck.extend(fts_stuck);
    Ok((stuck, said))
}

/// [`fts_kept_otherwise`] of the schema in `copy`.
fn fts_kept_in(
    copy: &rusqlite::Connection,
    virtual_tables: &[VirtualTable],
) -> rusqlite::Result<(Vec<StuckTrigger>, Vec<String>)> {
    let (mut stuck, mut said) = (Vec::new(), Vec::new());
    if virtual_tables.is_empty() {
        return Ok((stuck, said));
    }
    let triggers: Vec<(String, String, String)> = copy
        .prepare(&format!(
            "SELECT name, {}, sql FROM main.sqlite_schema AS s WHERE type = 'trigger'",
            spelt_table_sql("main")
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for vt in virtual_tables {
        let name = vt.name.to_lowercase();
        let keeping: Vec<&(String, String, String)> = triggers
            .iter()
            .filter(|(_, _, sql)| names_word(&sql.to_lowercase(), &name))
            .collect();
        let shown = crate::names::shown_name(&vt.name);
        match &vt.content {
            VirtualContent::Contentless => stuck.extend(contentless_stuck(&shown, &keeping)),
            VirtualContent::External { table } => {
                said.extend(external_kept_partial(&shown, table, &keeping));
            }
            _ => {}
        }
    }
    Ok((stuck, said))
}

/// The statements that fail once `shown`, a contentless FTS5 table, comes
/// back empty: each of the `keeping` triggers that deletes from it.
fn contentless_stuck(shown: &str, keeping: &[&(String, String, String)]) -> Vec<StuckTrigger> {
    let mut stuck = Vec::new();
    let mut by: BTreeMap<(&str, &'static str), Vec<String>> = BTreeMap::new();
    for (trigger, table, sql) in keeping {
        let head = TriggerHead::of(sql);
        if !head.body.contains("'delete'") {
            continue;
        }
        let statement = match head.event {
            "delete" => "DELETE from",
            "insert" => "INSERT into",
            _ => "UPDATE of",
        };
        by.entry((table.as_str(), statement))
            .or_default()
            .push(trigger.clone());
    }
    for ((table, statement), triggers) in by {
        stuck.push(StuckTrigger {
            table: table.to_owned(),
            statement,
            triggers,
            error: format!(
                "database disk image is malformed (SQLITE_CORRUPT_VTAB): {shown}, \
                 a contentless FTS5 table, comes back empty and holds none of the \
                 rows they delete from it"
            ),
            index_comes_back_empty: true,
        });
    }
    stuck
}

/// What is said of `shown`, an external-content FTS5 table rebuilt from
/// every row of `table`, when some of the `keeping` triggers index only
/// some rows.
fn external_kept_partial(
    shown: &str,
    table: &str,
    keeping: &[&(String, String, String)],
) -> Option<String> {
    // An index kept partial: an INSERT trigger that indexes
    // only some rows (a WHEN clause), or a trigger on another
    // event that takes rows out (`'delete'`) without putting
    // their new values back (a soft delete). One that
    // re-indexes a changed row, WHEN or not, keeps it whole.
    let partial: Vec<String> = keeping
        .iter()
        .filter(|(_, _, sql)| {
            let head = TriggerHead::of(sql);
            match head.event {
                "insert" => head.when,
                "update" => head.body.contains("'delete'") && !head.body.contains("new."),
                _ => false,
            }
        })
        .map(|(trigger, _, _)| crate::names::shown_name(trigger).into_owned())
        .collect();
    if partial.is_empty() {
        return None;
    }
    Some(format!(
        "{shown} is rebuilt from every row of {}, but {} {} only the rows {} \
         WHEN clause admits (a row deleted softly): the restored index may \
         find rows the app's did not. Index it again as the app does",
        crate::names::shown_name(table),
        partial.join(", "),
        if partial.len() == 1 {
            "indexes"
        } else {
            "index"
        },
        if partial.len() == 1 { "its" } else { "their" },
    ))
}

/// The most VDBE instructions a statement of [`stuck_triggers`] may compile
/// to: far more than a trigger program of any app (a few thousand), and a
/// bound on a schema of views that each read the one before twice, which
/// would otherwise take minutes to compile (rvAE).
const MOST_INSTRUCTIONS: i32 = 250_000;

/// The names an FTS5 table gives its shadow tables, after its own and `_`.
const FTS5_SHADOW_TABLES: [&str; 5] = ["data", "idx", "config", "content", "docsize"];

/// The FTS5 table whose shadow table a dump's plain `CREATE TABLE` looks
/// like: its name is `<fts5 table>_<shadow>` and its columns are the ones
/// FTS5 gives that shadow table, as `wrangler d1 export --table` writes a
/// shadow table named to it (with its rows and no `CREATE VIRTUAL TABLE`).
/// Restored, it is a plain table: no FTS5 table, no search index.
pub fn fts5_table_shadowed_by(name: &str, sql: &str) -> Option<String> {
    let (fts5, suffix) = name.rsplit_once('_')?;
    let columns: String = { sql.get(sql.find('(')? + 1..sql.rfind(')')?)? }
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let shaped = match suffix.to_ascii_lowercase().as_str() {
        "data" => columns == "idintegerprimarykey,blockblob",
        "idx" => columns == "segid,term,pgno,primarykey(segid,term)",
        "config" => columns == "kprimarykey,v",
        "docsize" => [
            "idintegerprimarykey,szblob",
            "idintegerprimarykey,szblob,origininteger",
        ]
        .contains(&columns.as_str()),
        "content" => columns
            .strip_prefix("idintegerprimarykey")
            .is_some_and(|rest| {
                rest.split(',')
                    .skip(1)
                    .enumerate()
                    .all(|(i, c)| c == format!("c{i}"))
                    && rest.starts_with(",c0")
            }),
        _ => false,
    };
    (shaped && !fts5.is_empty()).then(|| fts5.to_owned())
}

/// Whether SQLite takes `name` for a shadow table of an FTS5 table among
/// `virtual_tables` by its name alone (`<fts5 table>_content`, whatever
/// that table's `content=`): no export carries such a table.
pub fn named_as_fts5_shadow_table(name: &str, virtual_tables: &[VirtualTable]) -> bool {
    let name = name.to_ascii_lowercase();
    { virtual_tables.iter() }.any(|v| fts5_shadow_suffix(&name, v).is_some())
}

/// The suffix of a shadow table's name (one of [`FTS5_SHADOW_TABLES`])
/// that `name`, in lower case, has after the FTS5 table `v`'s name and `_`.
fn fts5_shadow_suffix<'n>(name: &'n str, v: &VirtualTable) -> Option<&'n str> {
    let rest = name.strip_prefix(&v.name.to_ascii_lowercase())?;
    let suffix = rest.strip_prefix('_')?;
    (v.module.eq_ignore_ascii_case("fts5") && FTS5_SHADOW_TABLES.contains(&suffix))
        .then_some(suffix)
}

/// The FTS5 table among `virtual_tables` whose shadow table `name` is
/// (SQLite matches the names in any case): a table D1 allows no write to.
pub fn fts5_shadow_table_of<'v>(
    name: &str,
    virtual_tables: &'v [VirtualTable],
) -> Option<&'v VirtualTable> {
    let name = name.to_ascii_lowercase();
    virtual_tables
        .iter()
        .find(|v| fts5_shadow_suffix(&name, v).is_some_and(|suffix| v.makes_shadow_table(suffix)))
}

/// [`StuckTrigger`]s of the schema `schema` makes (its `CREATE` statements,
/// as [`schema_sql`] gives them or as a dump holds them): virtual tables
/// are made first, then the other tables, then indexes, views and
/// triggers, whatever their order.
pub fn stuck_triggers(schema: &[String]) -> rusqlite::Result<Vec<StuckTrigger>> {
    if !has_trigger(schema) {
        return Ok(Vec::new());
    }
    let copy = schema_copy(schema)?;
    stuck_in(&copy)
}

/// Whether one of the `CREATE` statements `schema` makes a trigger.
fn has_trigger(schema: &[String]) -> bool {
    schema
        .iter()
        .any(|sql| matches!(crate::statement::created_object(sql), Some(("trigger", _))))
}

/// An empty copy, in memory, of the schema `schema` makes (its `CREATE`
/// statements): virtual tables first, then the other tables, then indexes,
/// views and triggers, whatever their order. One that SQLite will not make
/// here (a shadow table its virtual table made, `sqlite_sequence`) is left
/// out. It cannot attach a file, a statement on it may compile to at most
/// 250,000 instructions (`MOST_INSTRUCTIONS`), and no value may be longer than D1 allows.
pub fn schema_copy(schema: &[String]) -> rusqlite::Result<rusqlite::Connection> {
    let kinds: Vec<(&str, &str)> = schema
        .iter()
        .map(|sql| {
            let upper = sql
                .trim_start()
                .get(..22)
                .unwrap_or(sql)
                .to_ascii_uppercase();
            let kind = match crate::statement::created_object(sql) {
                _ if upper.starts_with("CREATE VIRTUAL TABLE") => "virtual",
                Some((kind, _)) => kind,
                None => "",
            };
            (kind, sql.as_str())
        })
        .collect();
    let copy = rusqlite::Connection::open_in_memory()?;
    copy.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    copy.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    copy.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_VDBE_OP,
        MOST_INSTRUCTIONS,
    )?;
    // No value D1 would refuse is made here either.
    copy.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
        crate::gate::D1_VALUE_LIMIT,
    )?;
    for kind in ["virtual", "table", "index", "view", "trigger"] {
        for (_, sql) in kinds.iter().filter(|(k, _)| *k == kind) {
            // One that SQLite will not make here (a shadow table its
            // virtual table made, `sqlite_sequence`) is left out; triggers
            // that need what is missing are then told as stuck.
            let _ = copy.execute_batch(sql);
        }
    }
    Ok(copy)
}

/// The ordinary tables the view `view` reads, as SQLite reads them when
/// it runs the view (a view it reads in turn included), in the schema its
/// `CREATE` statements `schema` make; empty when there is no such view or
/// it cannot be run here. An FTS5 table whose `content=` is a view is
/// rebuilt from these tables' rows: a backup or comparison of it needs
/// them, and no `--table` takes the view itself.
pub fn tables_a_view_reads(schema: &[String], view: &str) -> Vec<String> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    use std::sync::{Arc, Mutex, PoisonError};
    let Ok(mut copy) = schema_copy(schema) else {
        return Vec::new();
    };
    let is_view = copy
        .query_row(
            "SELECT count(*) FROM main.sqlite_schema WHERE type = 'view' AND name = ?1",
            [view],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0);
    if !is_view {
        return Vec::new();
    }
    let read: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let seen = Arc::clone(&read);
    let watched = copy.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let AuthAction::Read { table_name, .. } = ctx.action {
            { seen.lock().unwrap_or_else(PoisonError::into_inner) }.insert(table_name.to_owned());
        }
        Authorization::Allow
    }));
    let run = format!("SELECT * FROM main.{}", crate::statement::quote_ident(view));
    let prepared = watched.is_ok() && copy.prepare(&run).is_ok();
    let unwatched = copy.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    if !prepared || unwatched.is_err() {
        return Vec::new();
    }
    let read = std::mem::take(&mut *read.lock().unwrap_or_else(PoisonError::into_inner));
    let ordinary = |t: &String| {
        copy.query_row(
            "SELECT count(*) FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name = ?1 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [t],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
    };
    read.into_iter().filter(ordinary).collect()
}

/// [`stuck_triggers`] of the schema in `copy`.
fn stuck_in(copy: &rusqlite::Connection) -> rusqlite::Result<Vec<StuckTrigger>> {
    let mut objects = copy.prepare(&format!(
        "SELECT type, name, {}, sql FROM main.sqlite_schema AS s \
         WHERE type = 'trigger' ORDER BY rowid",
        spelt_table_sql("main")
    ))?;
    let triggers: Vec<(String, String, String, String)> = objects
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let triggers: Vec<&(String, String, String, String)> = triggers.iter().collect();
    let mut tables: Vec<&str> = triggers.iter().map(|t| t.2.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut stuck = Vec::new();
    for table in tables {
        let quoted = crate::statement::quote_ident(table);
        let columns: Vec<String> = copy
            .prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 0")?
            .query_map([table], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        let set = columns
            .iter()
            .map(|c| format!("{0} = {0}", crate::statement::quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut statements = vec![(
            "INSERT into",
            format!("INSERT INTO {quoted} DEFAULT VALUES"),
        )];
        if !set.is_empty() {
            statements.push(("UPDATE of", format!("UPDATE {quoted} SET {set}")));
        }
        statements.push(("DELETE from", format!("DELETE FROM {quoted}")));
        for (statement, sql) in statements {
            let Err(e) = copy.prepare(&sql) else {
                continue;
            };
            let error = match &e {
                rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
                other => other.to_string(),
            };
            // `cannot modify v because it is a view`: a view without a
            // trigger for that statement is no stuck trigger.
            if !error.starts_with("no such ") {
                continue;
            }
            let missing = error.rsplit([' ', '.']).next().unwrap_or_default();
            let on_table: Vec<&&(String, String, String, String)> =
                triggers.iter().filter(|t| t.2 == table).collect();
            let naming: Vec<String> = on_table
                .iter()
                .filter(|t| {
                    !missing.is_empty() && t.3.to_lowercase().contains(&missing.to_lowercase())
                })
                .map(|t| t.1.clone())
                .collect();
            stuck.push(StuckTrigger {
                table: table.to_owned(),
                statement,
                triggers: match naming.is_empty() {
                    true => on_table.iter().map(|t| t.1.clone()).collect(),
                    false => naming,
                },
                error,
                index_comes_back_empty: false,
            });
        }
    }
    Ok(stuck)
}

/// A virtual table as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualTable {
    pub name: String,
    /// `fts5`, `fts4`, ...
    pub module: String,
    /// The `CREATE VIRTUAL TABLE` statement.
    pub sql: String,
    pub content: VirtualContent,
    /// An FTS5 table's settings other than `version`, as its `<name>_config`
    /// shadow table held them when the backup was taken (a rank function,
    /// secure-delete, automerge...): no export carries that table, and a
    /// restore sets each again before the rows go in. Empty where none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<FtsSetting>,
}

/// The settings FTS5 takes by `INSERT INTO t(t, rank) VALUES(key, value)`
/// (SQLite's `fts5ConfigSetValue`, whose key is matched in any case and
/// kept as typed), each kept in the table's `_config` shadow table.
pub const FTS5_SETTINGS: [&str; 9] = [
    "automerge",
    "crisismerge",
    "deletemerge",
    "hashsize",
    "insttoken",
    "pgsz",
    "rank",
    "secure-delete",
    "usermerge",
];

/// The longest text a setting may hold (a rank function and its
/// arguments): a longer one is no setting this tool wrote.
pub const FTS5_SETTING_TEXT_MAX: usize = 1024;

/// One FTS5 setting: a key of [`FTS5_SETTINGS`] and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtsSetting {
    pub key: String,
    pub value: FtsSettingValue,
}

/// A setting's value, as `_config` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FtsSettingValue {
    Integer(i64),
    Text(String),
}

impl FtsSetting {
    /// The setting read from a `_config` row (`k`, `v` as wrangler's JSON
    /// gives them), or why it cannot be carried: a key FTS5 does not take,
    /// or a value it would refuse. An integer setting held as a text
    /// (`'4'`), which FTS5 reads as its number, is taken as that integer.
    pub fn from_row(key: &str, value: &serde_json::Value) -> Result<FtsSetting> {
        let integer = fts5_setting(key).is_some_and(|k| k != "rank");
        let value = match value {
            serde_json::Value::Number(n) => n.as_i64().map(FtsSettingValue::Integer),
            serde_json::Value::String(t) => match fts5_integer(t) {
                Some(n) if integer => Some(FtsSettingValue::Integer(n)),
                _ => Some(FtsSettingValue::Text(t.clone())),
            },
            _ => None,
        }
        .with_context(|| {
            format!(
                "its setting {} holds a value that is neither an integer nor a text",
                crate::names::shown(key)
            )
        })?;
        let setting = FtsSetting {
            key: key.to_owned(),
            value,
        };
        setting.check()?;
        Ok(setting)
    }

    /// Refuses a setting no restore may set: a key outside
    /// [`FTS5_SETTINGS`] (in any case), a text longer than
    /// [`FTS5_SETTING_TEXT_MAX`] or holding a control character, or a
    /// value `fts5ConfigSetValue` refuses. Never quotes the value.
    pub fn check(&self) -> Result<()> {
        let Some(key) = fts5_setting(&self.key) else {
            bail!(
                "its setting {} is none FTS5 takes ({})",
                crate::names::shown(&self.key),
                FTS5_SETTINGS.join(", ")
            );
        };
        if let FtsSettingValue::Text(t) = &self.value
            && (t.len() > FTS5_SETTING_TEXT_MAX || t.chars().any(char::is_control))
        {
            bail!(
                "its setting {} holds a text of {} bytes{}, no value of an FTS5 setting (at most \
                 {FTS5_SETTING_TEXT_MAX} printable bytes)",
                self.key,
                t.len(),
                match t.chars().any(char::is_control) {
                    true => " with a control character",
                    false => "",
                }
            );
        }
        if let Some(takes) = refused_value(key, &self.value) {
            bail!(
                "its setting {} holds a value FTS5 refuses: {key} takes {takes}",
                self.key
            );
        }
        Ok(())
    }

    /// The statement that sets it on the FTS5 table `table`.
    pub fn statement(&self, table: &str) -> String {
        let name = crate::statement::quote_ident(table);
        let value = match &self.value {
            FtsSettingValue::Integer(n) => n.to_string(),
            FtsSettingValue::Text(t) => crate::statement::quote_literal(t),
        };
        format!(
            "INSERT INTO {name}({name}, rank) VALUES({}, {value});",
            crate::statement::quote_literal(&self.key)
        )
    }

    /// The query that reads `table`'s settings from its `_config` shadow
    /// table, `version` (which the table's creation writes) left out. A
    /// REAL (`4000.0`), which FTS5 ignores, is read as NULL: JSON (remote
    /// wrangler's) would write it `4000`, an integer, so it is left out,
    /// with its warning, however it is read.
    pub fn query(table: &str) -> String {
        format!(
            "SELECT k, CASE typeof(v) WHEN 'real' THEN NULL ELSE v END AS v FROM {} \
             WHERE k <> 'version' ORDER BY k",
            crate::statement::quote_ident(&format!("{table}_config"))
        )
    }
}

/// The integer a text setting is to FTS5 (`sqlite3_value_numeric_type`):
/// the text of an integer within the blanks SQLite skips (space, tab, line
/// breaks, `\v`, `\f`). `None` for any other text: a real (`'4.0'`,
/// `'4e1'`) is no integer to FTS5, which then keeps the default.
fn fts5_integer(text: &str) -> Option<i64> {
    let blank = |c| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r');
    text.trim_matches(blank).parse().ok()
}

/// The key of [`FTS5_SETTINGS`] that `key` names, in any case, as FTS5
/// matches it.
fn fts5_setting(key: &str) -> Option<&'static str> {
    FTS5_SETTINGS
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(key))
}

/// What the setting `key` takes, if `value` is none `fts5ConfigSetValue`
/// sets: each an integer in a range but `rank`, a function `name(args)`.
/// An integer outside 32 bits, which SQLite would cut, is refused too.
fn refused_value(key: &str, value: &FtsSettingValue) -> Option<&'static str> {
    let (takes, range) = match key {
        "rank" => {
            return match value {
                FtsSettingValue::Text(t) if parses_as_rank(t) => None,
                _ => Some("a function and its arguments, name(literal, ...)"),
            };
        }
        "pgsz" => ("an integer from 32 to 65536", 32..=65536),
        "automerge" => ("an integer from 0 to 64", 0..=64),
        "usermerge" => ("an integer from 2 to 16", 2..=16),
        "hashsize" => ("an integer of at least 1", 1..=i64::from(i32::MAX)),
        "deletemerge" => ("an integer", i64::from(i32::MIN)..=i64::from(i32::MAX)),
        // crisismerge, secure-delete, insttoken
        _ => ("an integer of at least 0", 0..=i64::from(i32::MAX)),
    };
    // A text of an integer, as FTS5 reads one (a manifest written before
    // integers were recorded as such holds `'4'` as a text).
    let n = match value {
        FtsSettingValue::Integer(n) => Some(*n),
        FtsSettingValue::Text(t) => fts5_integer(t),
    };
    match n {
        Some(n) if range.contains(&n) => None,
        _ => Some(takes),
    }
}

/// Whether `text` is a rank function as `fts5ConfigParseRank` reads one:
/// a bareword, then `(`, SQL literals separated by commas, and `)`, with
/// spaces between; what follows the `)` is not read.
fn parses_as_rank(text: &str) -> bool {
    let b = text.as_bytes();
    let spaces = |mut i: usize| {
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        i
    };
    let bare = |c: u8| c >= 0x80 || c.is_ascii_alphanumeric() || c == b'_' || c == 0x1a;
    let mut i = spaces(0);
    let name = i;
    while b.get(i).is_some_and(|c| bare(*c)) {
        i += 1;
    }
    i = spaces(i);
    if i == name || b.get(i) != Some(&b'(') {
        return false;
    }
    i = spaces(i + 1);
    if b.get(i) == Some(&b')') {
        return true;
    }
    loop {
        let Some(end) = rank_literal(b, i) else {
            return false;
        };
        i = spaces(end);
        match b.get(i) {
            Some(b')') => return true,
            Some(b',') => i = spaces(i + 1),
            _ => return false,
        }
    }
}

/// Where the SQL literal at `b[i..]` ends, as `fts5ConfigSkipLiteral`
/// reads one: NULL, X'hex', a quoted text, or a number.
fn rank_literal(b: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    match b.get(i)? {
        b'n' | b'N' => b
            .get(i..i + 4)
            .filter(|w| w.eq_ignore_ascii_case(b"null"))
            .map(|_| i + 4),
        b'x' | b'X' => {
            i += 1;
            (b.get(i) == Some(&b'\'')).then_some(())?;
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                i += 1;
            }
            (b.get(i) == Some(&b'\'') && (i - start).is_multiple_of(2)).then_some(i + 1)
        }
        b'\'' => {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => return Some(i + 1),
                    _ => i += 1,
                }
            }
        }
        _ => {
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 2;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            (i != start).then_some(i)
        }
    }
}

/// Where a full-text table's rows live, which decides how a restore rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VirtualContent {
    /// Rows live in the shadow table `table` (`<name>_content`), which the
    /// backup includes; a restore recreates the virtual table, loads that
    /// table and runs the `'rebuild'` command.
    Internal { table: String },
    /// Rows live in an ordinary table (`content='table'`) that the backup
    /// includes anyway; a restore runs the `'rebuild'` command.
    External { table: String },
    /// `content=''`: the index holds no row data, so the backup cannot carry
    /// it; a restore recreates the table empty.
    Contentless,
    /// An `fts5vocab` table: it holds nothing of its own and reads another
    /// FTS5 table's index, so recreating it restores it whole.
    Derived,
    /// A module this tool does not know how to rebuild; a restore recreates
    /// the table empty.
    Unknown,
}

impl VirtualTable {
    /// The virtual table `name` makes with `sql`, or `None` when `sql` is
    /// not a `CREATE VIRTUAL TABLE` (a migration's schema, read by name).
    pub fn from_sql(name: &str, sql: &str) -> Option<VirtualTable> {
        let o = SchemaObject {
            kind: "table".to_owned(),
            name: name.to_owned(),
            table: name.to_owned(),
            sql: Some(sql.to_owned()),
            table_kind: None,
        };
        is_virtual(&o).then(|| VirtualTable::from_object(&o))
    }

    /// Whether this FTS5 table makes its shadow table `<name>_<suffix>`
    /// (`suffix` one of [`FTS5_SHADOW_TABLES`]): `data`, `idx` and `config` always,
    /// `content` unless its content is `''` or another table, `docsize`
    /// unless `columnsize=0`.
    fn makes_shadow_table(&self, suffix: &str) -> bool {
        match suffix {
            "data" | "idx" | "config" => true,
            "content" => matches!(self.content, VirtualContent::Internal { .. }),
            "docsize" => {
                fts_option(&module_arguments(&self.sql), "columnsize").as_deref() != Some("0")
            }
            _ => false,
        }
    }

    /// Whether it keeps settings in a `_config` shadow table: an FTS5
    /// table (an fts5vocab table has none).
    pub fn keeps_settings(&self) -> bool {
        self.module.eq_ignore_ascii_case("fts5")
            && !matches!(
                self.content,
                VirtualContent::Derived | VirtualContent::Unknown
            )
    }

    /// What a backup cannot carry of this table, and what a restore then
    /// holds, if it cannot carry all of it: said after the table's name.
    pub fn lost_by_a_backup(&self) -> Option<&'static str> {
        match self.content {
            VirtualContent::Internal { .. }
            | VirtualContent::External { .. }
            | VirtualContent::Derived => None,
            VirtualContent::Contentless => Some(
                "a contentless FTS5 table (content=''): what it indexed lives only in its \
                 index, which no export carries, and a restore recreates it empty; rebuild \
                 it from the app's data afterwards",
            ),
            VirtualContent::Unknown => Some(
                "a virtual table of a module this tool cannot recreate (only FTS5 tables \
                 are): a restore of this backup will not have it",
            ),
        }
    }

    fn from_object(o: &SchemaObject) -> VirtualTable {
        let sql = o.sql.clone().unwrap_or_default();
        let (module, args) = parse_using(&sql).unwrap_or_default();
        let content = if module.eq_ignore_ascii_case("fts5vocab") {
            VirtualContent::Derived
        } else if module.starts_with("fts") {
            match fts_option(&args, "content") {
                None => VirtualContent::Internal {
                    table: format!("{}_content", o.name),
                },
                Some(v) if v.is_empty() => VirtualContent::Contentless,
                Some(v) => VirtualContent::External { table: v },
            }
        } else {
            VirtualContent::Unknown
        };
        VirtualTable {
            name: o.name.clone(),
            module,
            sql,
            content,
            settings: Vec::new(),
        }
    }
}

/// The top-level arguments of `CREATE VIRTUAL TABLE x USING module(...)`.
pub fn module_arguments(sql: &str) -> Vec<String> {
    parse_using(sql).map(|(_, args)| args).unwrap_or_default()
}

/// The module's name (unquoted) of `CREATE VIRTUAL TABLE [IF NOT EXISTS]
/// [schema.]name USING module ...`, and what follows it.
fn using_module(sql: &str) -> Option<(String, &str)> {
    use crate::statement::{leading_word, qualified_name, skip_trivia};
    let mut rest = sql;
    for word in ["CREATE", "VIRTUAL", "TABLE"] {
        rest = keyword(rest, word)?;
    }
    if let Some(after) = keyword(rest, "IF") {
        rest = keyword(keyword(after, "NOT")?, "EXISTS")?;
    }
    let (_, _, after_name) = qualified_name(skip_trivia(rest))?;
    let after_using = keyword(after_name, "USING")?;
    let (_, module, after) = qualified_name(skip_trivia(after_using))?;
    return Some((module, after));

    fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
        let found = leading_word(text);
        found
            .eq_ignore_ascii_case(word)
            .then(|| &skip_trivia(text)[found.len()..])
    }
}

/// Splits `CREATE VIRTUAL TABLE x USING module(arg, arg, ...)` into the
/// module name and its top-level arguments.
fn parse_using(sql: &str) -> Option<(String, Vec<String>)> {
    // SQLite takes the module's name as any name: quoted (`USING "fts5"`),
    // in any case, after any white space or comment.
    let (module, rest) = using_module(sql)?;
    let module = module.to_ascii_lowercase();
    let Some(body) = crate::statement::skip_trivia(rest).strip_prefix('(') else {
        return Some((module, Vec::new()));
    };
    let mut args = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for c in body.chars() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    current.push(c);
                }
                '[' => {
                    quote = Some(']');
                    current.push(c);
                }
                '(' => {
                    depth += 1;
                    current.push(c);
                }
                ')' if depth == 0 => break,
                ')' => {
                    depth -= 1;
                    current.push(c);
                }
                ',' if depth == 0 => args.push(std::mem::take(&mut current).trim().to_owned()),
                _ => current.push(c),
            },
        }
    }
    if !current.trim().is_empty() {
        args.push(current.trim().to_owned());
    }
    Some((module, args))
}

/// The value of an FTS option such as `content='docs'`, unquoted.
pub(crate) fn fts_option(args: &[String], option: &str) -> Option<String> {
    args.iter().find_map(|arg| {
        let (key, value) = arg.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(option) {
            return None;
        }
        let value = value.trim();
        let unquoted = ['\'', '"', '`']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .map(|v| v.replace("''", "'"))
            .unwrap_or_else(|| value.to_owned());
        Some(unquoted)
    })
}

/// Which tables of a catalog an export may name: real tables with DDL, not
/// reserved, not virtual, and no shadow table but the content of a virtual
/// table whose rows the backup keeps.
struct Exportable<'a> {
    virtual_names: BTreeSet<&'a str>,
    internal_content: BTreeSet<String>,
}

impl<'a> Exportable<'a> {
    fn new(virtual_tables: &'a [VirtualTable]) -> Self {
        Exportable {
            virtual_names: virtual_tables.iter().map(|v| v.name.as_str()).collect(),
            internal_content: virtual_tables
                .iter()
                .filter_map(|v| match &v.content {
                    VirtualContent::Internal { table } => Some(table.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    fn table(&self, o: &SchemaObject) -> bool {
        let shadow = |o: &SchemaObject| o.table_kind.as_deref() == Some("shadow");
        o.kind == "table"
            && o.sql.is_some()
            && !o.name.starts_with("_cf_")
            && !self.virtual_names.contains(o.name.as_str())
            && (!shadow(o) || self.internal_content.contains(&o.name))
    }
}

impl ExportScope {
    /// Refuses a backup of chosen tables whose foreign keys reference a
    /// table of the database that is not chosen ([`missing_parents`]): it
    /// could never be restored. (A `diff` of one table restores nothing,
    /// and is not refused.) The chosen tables' `CREATE TABLE` statements,
    /// as the database stores them, are made in a gated database in
    /// memory, to read their keys; a parent is named as the database
    /// spells it, so that the advised `--table` is taken.
    pub fn refuse_missing_parents(&self, catalog: &Catalog) -> Result<()> {
        if self.tables.is_empty() {
            return Ok(());
        }
        let gate = crate::gate::Gate::memory()?;
        for table in &self.data_tables {
            if let Some(sql) = catalog.find_table(table).and_then(|o| o.sql.as_deref()) {
                // One that does not run here has no keys to read.
                let _ = gate.run(sql);
            }
        }
        let missing: Vec<(String, String)> = missing_parents(gate.db())?
            .into_iter()
            .filter_map(|(table, parent)| {
                let spelt = catalog
                    .objects
                    .iter()
                    .find(|o| o.kind == "table" && o.name.eq_ignore_ascii_case(&parent))?;
                Some((table, spelt.name.clone()))
            })
            .collect();
        if !missing.is_empty() {
            bail!(
                "--table: {}. Nothing was exported",
                missing_parents_said(&missing)
            );
        }
        Ok(())
    }
}

/// What one export covers, decided before wrangler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportScope {
    /// The tables asked for, as the database spells them (`--table post`
    /// is `Post`), or empty for everything.
    pub chosen: Vec<String>,
    /// The names for `--table`, or empty for everything.
    pub tables: Vec<String>,
    /// Tables whose rows the dump should contain (for the manifest's counts).
    pub data_tables: Vec<String>,
    pub virtual_tables: Vec<VirtualTable>,
}

impl ExportScope {
    /// Decides the `--table` list for an export of `requested` tables (all
    /// when empty) from a database with schema `catalog`.
    pub fn plan(catalog: &Catalog, requested: &[String]) -> Result<ExportScope> {
        let virtual_tables = catalog.virtual_tables();
        let exportable = Exportable::new(&virtual_tables);
        if requested.is_empty() {
            let data_tables: Vec<String> = catalog
                .objects
                .iter()
                .filter(|o| exportable.table(o))
                .map(|o| o.name.clone())
                .collect();
            return Ok(ExportScope::whole(catalog, data_tables, virtual_tables));
        }
        ExportScope::chosen(catalog, requested, &virtual_tables, &exportable)
    }

    /// The scope of an export of the whole database: no `--table` list,
    /// unless virtual tables must be left out of it.
    fn whole(
        catalog: &Catalog,
        data_tables: Vec<String>,
        virtual_tables: Vec<VirtualTable>,
    ) -> ExportScope {
        if virtual_tables.is_empty() {
            return ExportScope {
                chosen: Vec::new(),
                tables: Vec::new(),
                data_tables,
                virtual_tables,
            };
        }
        let mut tables = data_tables.clone();
        tables.extend(
            catalog
                .objects
                .iter()
                .filter(|o| matches!(o.kind.as_str(), "index" | "trigger" | "view"))
                .filter(|o| o.sql.is_some())
                .map(|o| o.name.clone()),
        );
        ExportScope {
            chosen: Vec::new(),
            tables,
            data_tables,
            virtual_tables,
        }
    }

    /// The scope of an export of the `requested` tables, each checked.
    fn chosen(
        catalog: &Catalog,
        requested: &[String],
        virtual_tables: &[VirtualTable],
        exportable: &Exportable<'_>,
    ) -> Result<ExportScope> {
        let mut chosen = Vec::new();
        let mut tables = Vec::new();
        let mut data_tables = Vec::new();
        let mut chosen_virtual = Vec::new();
        // SQLite's and D1's own tables are no table to choose: a backup of
        // `sqlite_stat1` alone was GOOD with no table and no row (rvCH).
        let internal = |name: &str| {
            let lower = name.to_ascii_lowercase();
            lower.starts_with("sqlite_") || lower.starts_with("_cf_")
        };
        for name in requested {
            if internal(name) {
                bail!(
                    "{}: this is SQLite's or D1's own table, which no --table takes; a full \
                     backup (without --table) carries it where it can",
                    crate::wording::table_option(name)
                );
            }
            let Some(object) = catalog.find_table(name).filter(|o| o.kind == "table") else {
                let known: Vec<String> = catalog
                    .objects
                    .iter()
                    .filter(|o| !internal(&o.name))
                    .filter(|o| {
                        exportable.table(o) || exportable.virtual_names.contains(o.name.as_str())
                    })
                    // Each as it is typed (`--table=-x`: rvCB 3).
                    .map(|o| crate::wording::table_option(&o.name))
                    .collect();
                bail!(
                    "{}: no such table in the database; its tables are: {}",
                    crate::wording::table_option(name),
                    known.join(", ")
                );
            };
            push_unique(&mut chosen, &object.name);
            if let Some(vt) = virtual_tables.iter().find(|v| v.name == object.name) {
                if let VirtualContent::Internal { table } = &vt.content {
                    push_unique(&mut tables, table);
                    push_unique(&mut data_tables, table);
                }
                chosen_virtual.push(vt.clone());
                continue;
            }
            if !exportable.table(object) {
                bail!(
                    "{}: this is an internal table and cannot be exported on its own",
                    crate::wording::table_option(name)
                );
            }
            push_unique(&mut tables, &object.name);
            push_unique(&mut data_tables, &object.name);
        }
        refuse_no_rows_chosen(catalog, &data_tables, &chosen_virtual)?;
        with_content_views(catalog, &chosen_virtual, &data_tables, &mut tables);
        // wrangler keeps an index or trigger only when its own name is listed:
        // list those of the chosen tables so the backup of a table is whole.
        let holding: BTreeSet<String> = data_tables.iter().cloned().collect();
        for o in &catalog.objects {
            if matches!(o.kind.as_str(), "index" | "trigger")
                && o.sql.is_some()
                && holding.contains(&o.table)
            {
                push_unique(&mut tables, &o.name);
            }
        }
        Ok(ExportScope {
            chosen,
            tables,
            data_tables,
            virtual_tables: chosen_virtual,
        })
    }

    /// The external-content FTS5 tables of this scope whose index a restore
    /// of its backup cannot rebuild, each with the content table it names
    /// and whether the database has that table (or view) at all: renamed
    /// away (`ALTER TABLE … RENAME` leaves `content=` as it was) or never
    /// made, or else left out by the `--table` list. The backup holds the
    /// FTS5 table, and a restore recreates it with its index empty
    /// ([`crate::repair::Survey::rebuilds`]).
    pub fn unrebuildable(&self, catalog: &Catalog) -> Vec<(String, String, bool)> {
        { self.virtual_tables.iter() }
            .filter_map(|vt| {
                let VirtualContent::External { table } = &vt.content else {
                    return None;
                };
                let found = catalog.find_table(table);
                // A view is held when it is exported (with what it reads).
                let held = found.is_some_and(|o| {
                    self.chosen.is_empty()
                        || self.data_tables.contains(&o.name)
                        || (o.kind == "view" && self.tables.contains(&o.name))
                });
                (!held).then(|| (vt.name.clone(), table.clone(), found.is_some()))
            })
            .collect()
    }

    /// The schema objects, as (kind, name), that an export with this scope
    /// must create: its tables, and the indexes, triggers and views it
    /// covers. wrangler writes indexes, triggers and views last, so a dump
    /// cut short at a statement boundary still lacks some of them.
    pub fn expected_objects(&self, catalog: &Catalog) -> BTreeSet<(String, String)> {
        let named = |name: &str| self.tables.is_empty() || self.tables.iter().any(|t| t == name);
        catalog
            .objects
            .iter()
            .filter(|o| o.sql.is_some() && !o.name.starts_with("sqlite_"))
            .filter(|o| match o.kind.as_str() {
                "table" => self.data_tables.contains(&o.name),
                "index" | "trigger" | "view" => named(&o.name),
                _ => false,
            })
            .map(|o| (o.kind.clone(), o.name.clone()))
            .collect()
    }

    /// Whether the export has to name its tables to get past wrangler.
    pub fn works_around_virtual_tables(&self) -> bool {
        !self.virtual_tables.is_empty()
    }

    /// The table a read of `table`'s values, as its export writes them,
    /// reads and names: an FTS5 table's own shadow table (`docs_content`,
    /// whose rows the export writes) is read as the FTS5 table (`docs`),
    /// whose columns hold those values under the names its user declared
    /// (`body`, not `c1`), and which an app queries on D1 as any table;
    /// any other is itself.
    pub fn read_as<'a>(&'a self, table: &'a str) -> &'a str {
        { self.virtual_tables.iter() }
            .find(|vt| matches!(&vt.content, VirtualContent::Internal { table: t } if t == table))
            .map_or(table, |vt| vt.name.as_str())
    }
}

/// Refuses a `--table` list of virtual tables alone that hold no rows of
/// their own: an external-content FTS5 table (its rows live in its content
/// table), a contentless one (`content=''`) or an `fts5vocab` table. Such
/// a list names no table for the export, and an export that names none
/// takes the whole database, which wrangler refuses outright when it has
/// a virtual table ("cannot export databases with Virtual Tables"): the
/// backup would fail after it began, or hold what was not asked for. A
/// module this tool does not know is refused apart, by the backup
/// (`refuse_unknown_virtual_tables`).
fn refuse_no_rows_chosen(
    catalog: &Catalog,
    data_tables: &[String],
    chosen_virtual: &[VirtualTable],
) -> Result<()> {
    if !data_tables.is_empty() || chosen_virtual.is_empty() {
        return Ok(());
    }
    if chosen_virtual
        .iter()
        .any(|v| v.content == VirtualContent::Unknown)
    {
        return Ok(());
    }
    let vt = &chosen_virtual[0];
    // Named as SQL spells it, and as a shell word where it is to be typed.
    let (name, typed) = (
        crate::names::shown_name(&vt.name),
        crate::wording::table_option(&vt.name),
    );
    if let VirtualContent::External { table } = &vt.content {
        let content = crate::names::shown_name(table);
        // One the database lacks is no table to name either (PL).
        if catalog.find_table(table).is_none() {
            bail!(
                "{typed}: {name} is an external-content FTS5 table whose content table \
                 {content} the database does not have (renamed or dropped?), so the list names \
                 nothing to export: nothing was written. Create {content} again (or recreate \
                 {name} naming its content table), or take a whole backup (no --table)"
            );
        }
        // A view is no table to name: the tables it reads are (PL 1).
        if let Some(reads) = catalog.view_reads(table) {
            let with = match reads.is_empty() {
                true => String::new(),
                false => format!(
                    "Back it up with the tables {content} reads (`{} {typed}`, which a restore \
                     rebuilds the index from through {content}), or take ",
                    { reads.iter() }
                        .map(|t| crate::wording::table_option(t))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            };
            bail!(
                "{typed}: {name} is an external-content FTS5 table: its rows live in the \
                 tables its content view {content} reads, which this list leaves out, so the \
                 list names nothing to export: nothing was written. {}{}a whole backup (no \
                 --table)",
                with,
                if with.is_empty() { "Take " } else { "" }
            );
        }
        let content_typed = crate::wording::table_option(table);
        bail!(
            "{typed}: {name} is an external-content FTS5 table: its rows live in its \
             content table {content}, which this list leaves out, so the list names nothing to \
             export: nothing was written. Back it up with its content table (`{content_typed} \
             {typed}`, which a restore rebuilds the index from), or take \
             a whole backup (no --table)"
        );
    }
    bail!(
        "{typed}: {name} is a virtual table that holds no rows of its own (a contentless \
         FTS5 table or an fts5vocab table), so the list names nothing to export: nothing was \
         written. Name a table with rows beside it (`--table TABLE {typed}`), or take a \
         whole backup (no --table)"
    )
}

/// `tables`, with each view an FTS5 table of `chosen_virtual` reads its
/// rows from (`content=` a view) when `data_tables` holds every table the
/// view reads: exported with them, a restore rebuilds the index (PL 1).
fn with_content_views(
    catalog: &Catalog,
    chosen_virtual: &[VirtualTable],
    data_tables: &[String],
    tables: &mut Vec<String>,
) {
    for vt in chosen_virtual {
        let VirtualContent::External { table } = &vt.content else {
            continue;
        };
        let Some(reads) = catalog.view_reads(table) else {
            continue;
        };
        if !reads.is_empty() && reads.iter().all(|t| data_tables.contains(t)) {
            let view = catalog.find_table(table).map_or(table, |o| &o.name);
            push_unique(tables, view);
        }
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

#[cfg(test)]
mod tests {

    /// PL: `--table` of an external-content FTS5 table alone is refused
    /// naming its content table to add; one the database does not have
    /// (renamed away) was advised too, which `--table` then refused.
    #[test]
    fn a_chosen_fts5_table_whose_content_table_is_gone_advises_no_table() {
        let c = listed(&[
            (
                "gone_fts",
                "virtual",
                "CREATE VIRTUAL TABLE gone_fts USING fts5(body, content='gone')",
            ),
            ("other", "table", "CREATE TABLE other(x)"),
        ]);
        let err = ExportScope::plan(&c, &["gone_fts".into()]).unwrap_err();
        let said = format!("{err:#}");
        assert!(said.contains("does not have"), "{said}");
        // Only the table typed is named as a `--table`.
        assert_eq!(said.matches("--table ").count(), 1, "{said}");
    }

    /// PL 1: an FTS5 table's `content=` view reads its rows from tables:
    /// those, through a view it reads in turn, are what a `--table` names.
    #[test]
    fn the_tables_a_view_reads_are_found_through_views() {
        let schema: Vec<String> = [
            "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE TABLE tags(id INTEGER PRIMARY KEY, tag TEXT)",
            "CREATE TABLE other(x)",
            "CREATE VIEW inner_v AS SELECT d.id, body, tag FROM docs d JOIN tags USING (id)",
            "CREATE VIEW docs_v AS SELECT * FROM inner_v",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(tables_a_view_reads(&schema, "docs_v"), ["docs", "tags"]);
        assert!(tables_a_view_reads(&schema, "docs").is_empty());
        assert!(tables_a_view_reads(&schema, "nothing").is_empty());
    }

    /// IG: a plain table shaped as FTS5 makes each shadow table, as
    /// `wrangler d1 export --table` writes it, names its FTS5 table; an
    /// app's table merely named like one does not.
    #[test]
    fn a_plain_table_shaped_as_an_fts5_shadow_table_names_its_fts5_table() {
        for (name, sql) in [
            (
                "docs_fts_config",
                "CREATE TABLE IF NOT EXISTS 'docs_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID",
            ),
            (
                "n_content",
                "CREATE TABLE 'n_content'(id INTEGER PRIMARY KEY, c0, c1)",
            ),
            (
                "n_data",
                "CREATE TABLE 'n_data'(id INTEGER PRIMARY KEY, block BLOB)",
            ),
            (
                "n_idx",
                "CREATE TABLE 'n_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID",
            ),
            (
                "n_docsize",
                "CREATE TABLE 'n_docsize'(id INTEGER PRIMARY KEY, sz BLOB)",
            ),
        ] {
            let fts5 = name.rsplit_once('_').unwrap().0;
            assert_eq!(
                fts5_table_shadowed_by(name, sql).as_deref(),
                Some(fts5),
                "{name}"
            );
        }
        for (name, sql) in [
            (
                "search_history",
                "CREATE TABLE search_history(k PRIMARY KEY, v)",
            ),
            (
                "app_config",
                "CREATE TABLE app_config(key TEXT PRIMARY KEY, value TEXT)",
            ),
            (
                "n_content",
                "CREATE TABLE n_content(id INTEGER PRIMARY KEY, body TEXT)",
            ),
            (
                "n_content",
                "CREATE TABLE n_content(id INTEGER PRIMARY KEY)",
            ),
        ] {
            assert_eq!(fts5_table_shadowed_by(name, sql), None, "{name}");
        }
        let vt = |sql| VirtualTable::from_sql("notes_fts", sql).unwrap();
        let internal = [vt("CREATE VIRTUAL TABLE notes_fts USING fts5(note)")];
        let external = [vt(
            "CREATE VIRTUAL TABLE notes_fts USING fts5(note, content='n')",
        )];
        assert!(fts5_shadow_table_of("Notes_FTS_content", &internal).is_some());
        assert!(fts5_shadow_table_of("notes_fts_content", &external).is_none());
        assert!(fts5_shadow_table_of("notes_fts_config", &external).is_some());
        assert!(fts5_shadow_table_of("notes_fts_history", &internal).is_none());
    }

    use super::*;

    /// `--clean` leaves out of a backup the tables the migrations do not
    /// make (recorded by its rows or made by its dump, in any case), the
    /// indexes and triggers on them, and the views they lack; never
    /// d1_migrations, sqlite_sequence or D1's own.
    #[test]
    fn a_clean_restore_leaves_out_the_tables_and_views_the_migrations_lack() {
        let made = vec![
            "CREATE VIRTUAL TABLE notes_fts USING fts5(note)".to_owned(),
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY)".to_owned(),
            "CREATE VIEW va AS SELECT id FROM accounts".to_owned(),
            "CREATE INDEX accounts_id ON accounts(id)".to_owned(),
        ];
        let dump = vec![
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY)".to_owned(),
            "CREATE TABLE t(a)".to_owned(),
            "CREATE INDEX t_a ON t(a)".to_owned(),
            "CREATE TRIGGER t_t AFTER INSERT ON \"T\" BEGIN SELECT 1; END".to_owned(),
            "CREATE VIEW tv AS SELECT a FROM t".to_owned(),
            "CREATE VIEW VA AS SELECT id FROM accounts".to_owned(),
            "CREATE INDEX accounts_id ON accounts(id)".to_owned(),
        ];
        let tables = [
            "accounts",
            "T",
            "d1_migrations",
            "sqlite_sequence",
            "_cf_KV",
            "hand",
            "notes_fts_content",
        ];
        let left = left_out_of(&made, &tables, &dump, &[]);
        let want: Vec<(&str, String)> = vec![
            ("table", "T".to_owned()),
            ("table", "hand".to_owned()),
            ("index", "t_a".to_owned()),
            ("trigger", "t_t".to_owned()),
            ("view", "tv".to_owned()),
        ];
        assert_eq!(left, want);
        assert!(left_out_of(&made, &["accounts"], &made, &[]).is_empty());
    }

    /// `--replace` drops the target's views, triggers and indexes: those
    /// the backup's schema does not make again are lost, any case.
    #[test]
    fn what_replace_drops_and_the_backup_does_not_make_is_named() {
        let made = vec![
            "CREATE TABLE \"order\" (id INTEGER PRIMARY KEY)".to_owned(),
            "CREATE INDEX Order_Id ON \"order\"(id)".to_owned(),
        ];
        let existing: Vec<(String, String)> = [
            ("table", "order"),
            ("table", "gone"),
            ("index", "order_id"),
            ("index", "sqlite_autoindex_gone_1"),
            ("index", "gone_x"),
            ("trigger", "trg_order_ins"),
            ("view", "v1"),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
        let want: Vec<(&str, String)> = vec![
            ("index", "gone_x".to_owned()),
            ("trigger", "trg_order_ins".to_owned()),
            ("view", "v1".to_owned()),
        ];
        assert_eq!(dropped_not_made(&made, &existing), want);
        assert!(dropped_not_made(&made, &existing[..1]).is_empty());
    }

    /// A virtual table `--clean` leaves out is said by its own name, its
    /// shadow tables not; its rows are its content table's count.
    #[test]
    fn a_virtual_table_left_out_is_said_by_its_name_and_counted_by_its_content() {
        let fe = VirtualTable::from_sql("fe", "CREATE VIRTUAL TABLE fe USING fts5(body)").unwrap();
        let dump =
            vec!["CREATE TABLE IF NOT EXISTS 'fe_content'(id INTEGER PRIMARY KEY, c0)".to_owned()];
        let left = left_out_of(
            &[],
            &["fe_content", "FE_docsize"],
            &dump,
            std::slice::from_ref(&fe),
        );
        assert_eq!(left, vec![("table", "fe".to_owned())]);
        let rows = BTreeMap::from([("FE_CONTENT".to_owned(), 2), ("fe_data".to_owned(), 9)]);
        assert_eq!(rows_of_virtual_table(&fe, &rows), 2);
    }

    /// Every row of the values' pieces, read as D1 would hand it over:
    /// the table, then its text and numbers as text.
    fn non_ascii_rows(db: &rusqlite::Connection, queries: &[String]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for q in queries {
            let mut statement = db.prepare(q).unwrap();
            let n = statement.column_count();
            let mut rows = statement.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                out.push(
                    (0..n)
                        .map(|c| match r.get_ref(c).unwrap() {
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            other => format!("{other:?}"),
                        })
                        .collect(),
                );
            }
        }
        out
    }

    /// A value of 2 MB that is not all ASCII was read in one row of 4 MB
    /// of hex (four pieces of 1 MB, side by side): each row now carries
    /// one piece, 1 MB of hex at most, the value's four in order, in a
    /// WITHOUT ROWID table too.
    #[test]
    fn a_row_of_text_not_utf8_never_carries_more_than_one_piece() {
        let schema = [
            "CREATE TABLE w (k INTEGER PRIMARY KEY, body TEXT) WITHOUT ROWID".to_owned(),
            "CREATE TABLE r (body TEXT, other TEXT)".to_owned(),
        ];
        let tables = ["r", "w"].map(str::to_owned);
        let columns = columns_exported(&schema, &tables).unwrap();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &schema {
            db.execute(sql, []).unwrap();
        }
        db.execute_batch(
            "INSERT INTO w VALUES (1, CAST(zeroblob(1999999) || x'ff' AS TEXT)), (2, 'é');
             INSERT INTO r VALUES (CAST(zeroblob(1000000) || x'c3a9' AS TEXT), 'plain');",
        )
        .unwrap();
        let made = non_ascii_text_queries(&columns, 100_000);
        let rows = non_ascii_rows(&db, &made.queries);
        let most = rows
            .iter()
            .map(|r| r.iter().map(String::len).sum::<usize>())
            .max()
            .unwrap();
        assert!(most <= 2 * NON_ASCII_PIECE + 100, "a row of {most} bytes");
        // Three values: 4 pieces, 1, and 3.
        assert_eq!(
            rows.len(),
            8,
            "{:?}",
            rows.iter().map(|r| &r[..2]).collect::<Vec<_>>()
        );
        assert_eq!(
            counted(&columns, &rows),
            BTreeMap::from([("w".to_owned(), BTreeMap::from([("body".to_owned(), 1)]))])
        );
        // A piece missing, or out of order, leaves its value uncounted.
        for drop in [1, 3] {
            let mut cut = rows.clone();
            let at = cut
                .iter()
                .position(|r| r[0] == "w" && r[2] == format!("Integer({drop})"));
            cut.remove(at.unwrap());
            assert_eq!(counted(&columns, &cut), BTreeMap::new(), "{drop}");
        }
    }

    /// [`NotUtf8`]'s counts of `rows` ([`non_ascii_rows`]).
    fn counted(
        columns: &[(String, Vec<String>)],
        rows: &[Vec<String>],
    ) -> BTreeMap<String, BTreeMap<String, u64>> {
        let number = |s: &str| {
            s.trim_start_matches("Integer(")
                .trim_end_matches(')')
                .parse()
                .unwrap()
        };
        let mut counts = BTreeMap::new();
        let mut reading = NotUtf8::default();
        for r in rows {
            let piece = (
                r[0].as_str(),
                number(&r[1]),
                number(&r[2]),
                number(&r[3]) == 1,
                r[4].as_str(),
            );
            reading.row(columns, piece, &mut counts);
        }
        counts
    }

    /// rvAE: a user's column named `column1` (or `i`, `v`, `name`, `k`,
    /// `src`) clashed with the query's own names ("ambiguous column
    /// name"), and every backup warned its table not counted. Each value
    /// that is not UTF-8 is counted under its column, one over a piece's
    /// size too (split across pieces in the middle of a character).
    #[test]
    fn text_that_is_not_utf8_is_counted_whatever_the_columns_are_named() {
        let schema = [
            "CREATE TABLE k (column1 TEXT, i TEXT, v TEXT, name TEXT, src TEXT, k TEXT)".to_owned(),
            "CREATE TABLE src (id INTEGER PRIMARY KEY, column1 TEXT) WITHOUT ROWID".to_owned(),
        ];
        let tables = ["k", "src"].map(str::to_owned);
        let columns = columns_exported(&schema, &tables).unwrap();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &schema {
            db.execute(sql, []).unwrap();
        }
        let long = format!("x'61{}'", "C3A9".repeat(NON_ASCII_PIECE / 2));
        db.execute_batch(&format!(
            "INSERT INTO k VALUES (CAST(x'ff41' AS TEXT), 'é', CAST(x'c3' AS TEXT), 'plain', \
               CAST({long} || x'ff' AS TEXT), CAST({long} AS TEXT));
             INSERT INTO k VALUES (CAST(x'fe' AS TEXT), NULL, 'a', x'ff', 1, 'é');
             INSERT INTO src VALUES (1, CAST(x'80' AS TEXT)), (2, 'fine');"
        ))
        .unwrap();
        let made = non_ascii_text_queries(&columns, 100_000);
        assert!(made.left_out.is_empty(), "{made:?}");
        let counts = counted(&columns, &non_ascii_rows(&db, &made.queries));
        let counted = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        let want = BTreeMap::from([
            (
                "k".to_owned(),
                counted(&[("column1", 2), ("v", 1), ("src", 1)]),
            ),
            ("src".to_owned(), counted(&[("column1", 1)])),
        ]);
        assert_eq!(counts, want);
    }

    /// rvBY 1: D1's export writes text with a line break as
    /// `replace('…\n…','\n',char(10))`, which turns a `\n` the text held
    /// into a line break too (and `\r` with char(13)). The look counts,
    /// per column, the rows holding both, in the same query as the look
    /// for text not UTF-8 where a table needs both, and only where asked.
    #[test]
    fn text_with_a_line_break_and_its_escape_is_counted_in_the_same_query() {
        let schema = [
            "CREATE TABLE jt (id INTEGER PRIMARY KEY, j TEXT, v, found BLOB)".to_owned(),
            "CREATE TABLE both_ (i TEXT)".to_owned(),
            "CREATE TABLE fffd (t TEXT)".to_owned(),
        ];
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &schema {
            db.execute(sql, []).unwrap();
        }
        db.execute_batch(
            r#"INSERT INTO jt VALUES (1, '{"a":"x\ny"}' || char(10), 'a\rb' || char(13), NULL),
               (2, 'C:\new' || char(10) || 'next', 'a\nb' || char(13), 'x\n' || char(10)),
               (3, 'one' || char(10) || 'two', 'C:\new', x'5c6e0a'),
               (4, 'a\rb' || char(10), 'a' || char(13) || char(10), 7);
             INSERT INTO both_ VALUES (CAST(x'ff' AS TEXT)), ('\n' || char(10));
             INSERT INTO fffd VALUES (CAST(x'fe' AS TEXT)), ('\n' || char(10));"#,
        )
        .unwrap();
        let tables = ["jt", "both_", "fffd"].map(str::to_owned);
        let all = columns_exported(&schema, &tables).unwrap();
        let only = |names: &[&str]| -> Vec<(String, Vec<String>)> {
            { all.iter() }
                .filter(|(t, _)| names.contains(&t.as_str()))
                .cloned()
                .collect()
        };
        let (not_utf8, line_breaks) = (only(&["both_", "fffd"]), only(&["jt", "both_"]));
        let made = exported_text_queries(&not_utf8, &line_breaks, 100_000);
        assert_eq!(made.queries.len(), 1, "{made:?}");
        assert_eq!(made.tables, [["both_", "fffd", "jt"].map(str::to_owned)]);
        let rows = non_ascii_rows(&db, &made.queries);
        let (counts, pieces): (Vec<_>, Vec<_>) = { rows.into_iter() }.partition(|r| r[5] != "Null");
        let mut found = BTreeMap::new();
        for r in &counts {
            let n = r[5].trim_start_matches("Integer(").trim_end_matches(')');
            let i: usize = r[1]
                .trim_start_matches("Integer(")
                .trim_end_matches(')')
                .parse()
                .unwrap();
            line_breaks_row(&line_breaks, (&r[0], i, n.parse().unwrap()), &mut found);
        }
        let per_column = |pairs: &[(&str, u64)]| {
            { pairs.iter() }
                .map(|(c, n)| (c.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            found,
            BTreeMap::from([
                ("both_".to_owned(), per_column(&[("i", 1)])),
                (
                    "jt".to_owned(),
                    per_column(&[("j", 2), ("v", 1), ("found", 1)])
                ),
            ])
        );
        assert_eq!(
            counted(&not_utf8, &pieces),
            BTreeMap::from([
                ("both_".to_owned(), per_column(&[("i", 1)])),
                ("fffd".to_owned(), per_column(&[("t", 1)])),
            ])
        );
    }

    #[test]
    fn whole_reals_are_counted_in_columns_that_keep_them_and_exactly() {
        let schema = [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v, b BLOB, r REAL, n NUMERIC, x TEXT, f FLOATBLOB)".to_owned(),
            "CREATE TABLE s (a ANY, i INT) STRICT".to_owned(),
            "CREATE TABLE w (\"we\"\"ird\" , k INTEGER)".to_owned(),
            "CREATE VIRTUAL TABLE f USING fts5(body)".to_owned(),
        ];
        let tables = ["t", "s", "w", "f", "missing"].map(str::to_owned);
        let columns = columns_keeping_whole_reals(&schema, &tables).unwrap();
        let named = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(
            columns,
            vec![
                ("t".to_owned(), named(&["v", "b", "f"])),
                ("s".to_owned(), named(&["a"])),
                ("w".to_owned(), named(&["we\"ird"])),
            ]
        );
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &schema {
            db.execute(sql, []).unwrap();
        }
        db.execute_batch(
            "INSERT INTO t (v, b) VALUES (3.0, 1e15), (3.5, -0.0), (1e300, 9223372036854775808.0), \
             (-9223372036854775808.0, 4503599627370497.0), (9223372036854774784.0, 'x'), (7, NULL);
             INSERT INTO s VALUES (8.0, 1), (8.5, 2);
             INSERT INTO w VALUES (1e18, 1);",
        )
        .unwrap();
        let count = |most: usize| -> Vec<(String, i64)> {
            whole_reals_queries(&columns, most)
                .queries
                .iter()
                .flat_map(|q| {
                    db.prepare(q)
                        .unwrap()
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .unwrap()
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .unwrap()
                })
                .collect()
        };
        let want = vec![
            ("t".to_owned(), 5),
            ("s".to_owned(), 1),
            ("w".to_owned(), 1),
        ];
        assert_eq!(whole_reals_queries(&columns, 100_000).queries.len(), 1);
        assert_eq!(count(100_000), want);
        // Each SELECT fits the cap alone, not all together: split, none left out.
        let each = columns
            .iter()
            .map(|c| whole_reals_queries(std::slice::from_ref(c), 100_000).queries[0].len());
        let alone = each.max().unwrap();
        let split = whole_reals_queries(&columns, alone);
        assert!(
            split.queries.len() > 1 && split.left_out.is_empty(),
            "{split:?}"
        );
        assert_eq!(count(alone), want);
    }

    /// An INTEGER -9223372036854775808 (i64::MIN) in a scanned column
    /// made the whole count fail ("integer overflow" from `abs`, which SQL's
    /// `AND` does not spare it), and with it the count of every table of
    /// the backup. Every storage class and the edges of each are counted
    /// alike, the whole REALs within ±2^63 and nothing else.
    #[test]
    fn whole_reals_query_counts_every_value_without_overflow() {
        let columns = vec![("t".to_owned(), vec!["v".to_owned()])];
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t (v);
             INSERT INTO t VALUES (-9223372036854775808), (9223372036854775807), (-0.0),
               (1.0), (1e308), (-1e308), ('1.0'), (X'01'), (NULL), (2.5),
               (-9223372036854775808.0), (9223372036854775807.0), (0);",
        )
        .unwrap();
        let made = whole_reals_queries(&columns, 100_000);
        assert_eq!(made.queries.len(), 1, "{made:?}");
        let counted: (String, i64) = db
            .query_row(&made.queries[0], [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        // -0.0 and 1.0; the REAL -2^63 is one D1's export writes as a REAL
        // (JavaScript's digits), and 2^63 (9223372036854775807.0) is past it.
        assert_eq!(counted, ("t".to_owned(), 2));
    }

    /// D1's SQLite refuses a compound SELECT of over 500 terms: each query
    /// holds at most [`WHOLE_REALS_MOST_SELECTS`] tables, and a table whose
    /// own SELECT passes the size cap (100 columns of 300-character names)
    /// is left out, named, not sent as a query too big for D1.
    #[test]
    fn whole_reals_queries_are_capped_in_terms_and_a_table_too_wide_is_left_out() {
        let mut columns: Vec<(String, Vec<String>)> = (0..600)
            .map(|i| (format!("t{i}"), vec!["v".to_owned()]))
            .collect();
        let wide: Vec<String> = (0..100).map(|i| format!("{i:0>300}")).collect();
        columns.insert(300, ("wide".to_owned(), wide));
        let most = 90_000;
        let made = whole_reals_queries(&columns, most);
        assert!(made.queries.len() >= 2, "{}", made.queries.len());
        assert_eq!(made.left_out, vec!["wide".to_owned()]);
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for (table, cols) in &columns[..] {
            if table != "wide" {
                let cols = cols.join(", ");
                db.execute_batch(&format!(
                    "CREATE TABLE {table} ({cols}); INSERT INTO {table} VALUES (2.0);"
                ))
                .unwrap();
            }
        }
        let mut counted = 0;
        for q in &made.queries {
            assert!(q.len() <= most, "{}", q.len());
            assert!(q.matches(" UNION ALL ").count() < WHOLE_REALS_MOST_SELECTS);
            assert!(!q.contains("'wide'"));
            counted += db
                .prepare(q)
                .unwrap()
                .query_map([], |r| r.get::<_, i64>(1))
                .unwrap()
                .map(Result::unwrap)
                .sum::<i64>();
        }
        assert_eq!(counted, 600);
    }

    #[test]
    fn fts5_tables_their_triggers_keep_otherwise_than_a_restore_are_told() {
        let schema: Vec<String> = [
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE docs_idx USING fts5(body, content='')",
            "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN \
             INSERT INTO docs_idx(rowid, body) VALUES (new.id, new.body); END",
            "CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN INSERT INTO \
             docs_idx(docs_idx, rowid, body) VALUES ('delete', old.id, old.body); END",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT, gone TEXT)",
            "CREATE VIRTUAL TABLE posts_fts USING fts5(body, content='posts', content_rowid='id')",
            "CREATE TRIGGER posts_ai AFTER INSERT ON posts WHEN new.gone IS NULL BEGIN \
             INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body); END",
        ]
        .map(String::from)
        .to_vec();
        let vts: Vec<VirtualTable> = [("docs_idx", 1), ("posts_fts", 5)]
            .iter()
            .filter_map(|(name, i)| VirtualTable::from_sql(name, &schema[*i]))
            .collect();
        assert_eq!(vts.len(), 2);
        let (stuck, said) = fts_kept_otherwise(&schema, &vts).unwrap();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(
            stuck[0].to_string(),
            "trigger docs_ad on docs cannot run: every DELETE from docs will fail with \
             `database disk image is malformed (SQLITE_CORRUPT_VTAB): docs_idx, a contentless \
             FTS5 table, comes back empty and holds none of the rows they delete from it`"
        );
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("posts_fts is rebuilt from every row of posts, but posts_ai"),
            "{said:?}"
        );
    }

    /// rvAI: an external-content index kept whole by its triggers, one of
    /// which skips the re-index when the text did not change (`WHEN
    /// old.body IS NOT new.body`, a common saving), is said to be
    /// "rebuilt from every row … but posts_au indexes only the rows its
    /// WHEN clause admits (a row deleted softly)": every row is indexed at
    /// insert, and the rebuilt index is the app's. Any WHEN counts as a
    /// partial index here, not only one that leaves rows out.
    #[test]
    fn an_update_trigger_that_skips_unchanged_text_is_no_partial_index() {
        let schema: Vec<String> = [
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE posts_fts USING fts5(body, content='posts', content_rowid='id')",
            "CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN \
             INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body); END",
            "CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN INSERT INTO \
             posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
            "CREATE TRIGGER posts_au AFTER UPDATE ON posts WHEN old.body IS NOT new.body BEGIN \
             INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body); \
             INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body); END",
        ]
        .map(String::from)
        .to_vec();
        let vts: Vec<VirtualTable> = VirtualTable::from_sql("posts_fts", &schema[1])
            .into_iter()
            .collect();
        let (stuck, said) = fts_kept_otherwise(&schema, &vts).unwrap();
        assert!(stuck.is_empty(), "{stuck:?}");
        assert!(said.is_empty(), "a whole index called partial: {said:?}");
    }

    /// rvAI: a contentless index's UPDATE trigger written with `BEGIN` on
    /// its own line (as most migrations are) is said to break every
    /// DELETE: the statement is read from the text before " begin", which
    /// then is the whole trigger, and holds the `'delete'` command.
    #[test]
    fn a_contentless_index_update_trigger_is_said_to_break_updates() {
        let schema: Vec<String> = [
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE docs_idx USING fts5(body, content='')",
            "CREATE TRIGGER docs_au AFTER UPDATE ON docs\nBEGIN\n  INSERT INTO \
             docs_idx(docs_idx, rowid, body) VALUES ('delete', old.id, old.body);\n  \
             INSERT INTO docs_idx(rowid, body) VALUES (new.id, new.body);\nEND",
        ]
        .map(String::from)
        .to_vec();
        let vts: Vec<VirtualTable> = VirtualTable::from_sql("docs_idx", &schema[1])
            .into_iter()
            .collect();
        let (stuck, _) = fts_kept_otherwise(&schema, &vts).unwrap();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert!(
            stuck[0]
                .to_string()
                .contains("every UPDATE of docs will fail"),
            "{}",
            stuck[0]
        );
    }

    #[test]
    fn a_table_whose_parent_is_missing_is_named() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE Companies (id INTEGER PRIMARY KEY);
             CREATE TABLE customers (id INTEGER PRIMARY KEY,
                 company_id INTEGER REFERENCES companies (id),
                 account_id INTEGER REFERENCES accounts (id),
                 parent INTEGER REFERENCES customers (id));
             CREATE TABLE notes (id INTEGER PRIMARY KEY, by INTEGER REFERENCES accounts (id));",
        )
        .unwrap();
        // A parent matched ignoring case, and the table itself, are there.
        let missing = missing_parents(&db).unwrap();
        assert_eq!(
            missing,
            [
                ("customers".to_owned(), "accounts".to_owned()),
                ("notes".to_owned(), "accounts".to_owned())
            ]
        );
        let said = missing_parents_said(&missing);
        assert!(
            said.starts_with("customers references accounts, notes references accounts, which")
                && said.ends_with("Take accounts with --table too"),
            "{said}"
        );
        let check = crate::checks::foreign_key_check(&db, true, &[]).unwrap();
        assert_eq!(check.status, crate::checks::Status::Fail);
        // A whole backup's table whose parent is gone, and which is empty,
        // is the database's own.
        let whole = crate::checks::foreign_key_check(&db, false, &[]).unwrap();
        assert_eq!(whole.status, crate::checks::Status::Pass);
    }

    #[test]
    fn a_trigger_the_migrations_do_not_make_alike_is_foreign() {
        let made = BTreeMap::from([(
            "touch".to_owned(),
            "CREATE TRIGGER touch AFTER UPDATE ON t BEGIN UPDATE t SET n = n + 1; END".to_owned(),
        )]);
        let dump = |name: &str, sql: &str| BTreeMap::from([(name.to_owned(), sql.to_owned())]);
        // As D1 exports it: the stored text and a `;`.
        let same = "CREATE TRIGGER touch AFTER UPDATE ON t BEGIN UPDATE t SET n = n + 1; END;\n";
        assert!(foreign_triggers(&dump("touch", same), &made).is_empty());
        let changed =
            "CREATE TRIGGER touch AFTER UPDATE ON t BEGIN UPDATE t SET role = 'admin'; END;";
        assert_eq!(foreign_triggers(&dump("touch", changed), &made), ["touch"]);
        let other = "CREATE TRIGGER other AFTER INSERT ON t BEGIN SELECT 1; END;";
        assert_eq!(foreign_triggers(&dump("other", other), &made), ["other"]);
        // Made by a migration saved with CRLF, read from a dump in LF.
        let crlf = BTreeMap::from([(
            "touch".to_owned(),
            "CREATE TRIGGER touch AFTER UPDATE ON t\r\nBEGIN UPDATE t SET n = n + 1; END"
                .to_owned(),
        )]);
        let lf = "CREATE TRIGGER touch AFTER UPDATE ON t\nBEGIN UPDATE t SET n = n + 1; END;";
        assert!(foreign_triggers(&dump("touch", lf), &crlf).is_empty());
    }
    #[test]
    fn triggers_that_write_to_what_the_schema_lacks_are_told_and_never_run() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);\n\
             CREATE TABLE kept (id INTEGER PRIMARY KEY, n INTEGER);\n\
             CREATE TRIGGER orders_log AFTER INSERT ON orders \
               BEGIN INSERT INTO order_log (order_id) VALUES (NEW.id); END;\n\
             CREATE TRIGGER orders_sum AFTER UPDATE OF total ON orders \
               BEGIN UPDATE kept SET n = n + 1; END;\n\
             CREATE TRIGGER kept_gone AFTER DELETE ON kept BEGIN DELETE FROM gone; END;\n\
             CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);\n\
             CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id');\n\
             CREATE TRIGGER docs_ai AFTER INSERT ON docs \
               BEGIN INSERT INTO docs_fts (rowid, body) VALUES (new.id, new.body); END;\n\
             CREATE VIEW v AS SELECT 1 AS a;\n\
             INSERT INTO kept VALUES (1, 0);",
        )
        .unwrap();
        let stuck = stuck_triggers(&schema_sql(&db).unwrap()).unwrap();
        let told: Vec<(&str, &str, Vec<&str>, &str)> = stuck
            .iter()
            .map(|s| {
                let triggers = s.triggers.iter().map(String::as_str).collect();
                (s.table.as_str(), s.statement, triggers, s.error.as_str())
            })
            .collect();
        assert_eq!(
            told,
            [
                (
                    "kept",
                    "DELETE from",
                    vec!["kept_gone"],
                    "no such table: main.gone"
                ),
                (
                    "orders",
                    "INSERT into",
                    vec!["orders_log"],
                    "no such table: main.order_log"
                ),
            ]
        );
        assert!(
            stuck[1]
                .to_string()
                .contains("every INSERT into orders will fail")
        );
        // Prepared, never run: the row is as it was.
        let n: i64 = db
            .query_row("SELECT n FROM kept", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // The FTS5 index gone too, as a backup of `docs` alone brings it.
        db.execute_batch("DROP TABLE docs_fts").unwrap();
        let stuck = stuck_triggers(&schema_sql(&db).unwrap()).unwrap();
        assert!(
            stuck
                .iter()
                .any(|s| s.table == "docs" && s.triggers == ["docs_ai"])
        );
        // As a dump holds them: shadow tables before their virtual table,
        // triggers before the tables they write to.
        let dump: Vec<String> = [
            "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN \
             INSERT INTO docs_fts (rowid, body) VALUES (new.id, new.body); END",
            "CREATE TABLE 'docs_fts_data'(id INTEGER PRIMARY KEY, block BLOB)",
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(stuck_triggers(&dump).unwrap(), []);
        assert_eq!(stuck_triggers(&dump[..3]).unwrap().len(), 1);
    }

    /// rvAE: the empty copy of the schema is made of its tables, views and
    /// triggers, not its indexes; a trigger that reads through one by name
    /// (`INDEXED BY`, legal in a trigger's SELECT) is told as stuck, `no such
    /// index`, though it runs in the database the schema is of.
    #[test]
    fn a_trigger_that_reads_through_a_named_index_is_not_stuck() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total INTEGER);\n\
             CREATE INDEX orders_by_customer ON orders (customer);\n\
             CREATE TABLE spend (customer INTEGER PRIMARY KEY, total INTEGER);\n\
             CREATE TRIGGER orders_spend AFTER INSERT ON orders BEGIN \
               INSERT OR REPLACE INTO spend (customer, total) SELECT NEW.customer, sum(total) \
               FROM orders INDEXED BY orders_by_customer WHERE customer = NEW.customer; END;",
        )
        .unwrap();
        // It runs here.
        db.execute_batch("INSERT INTO orders (customer, total) VALUES (7, 30)")
            .unwrap();
        let stuck = stuck_triggers(&schema_sql(&db).unwrap()).unwrap();
        assert!(stuck.is_empty(), "{stuck:?}");
    }

    use serde_json::json;

    fn catalog() -> Catalog {
        let master = json!([
            {"type": "table", "name": "_cf_METADATA", "tbl_name": "_cf_METADATA", "sql": "CREATE TABLE _cf_METADATA (key INTEGER PRIMARY KEY, value BLOB)"},
            {"type": "table", "name": "d1_migrations", "tbl_name": "d1_migrations", "sql": "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE)"},
            {"type": "table", "name": "sqlite_sequence", "tbl_name": "sqlite_sequence", "sql": "CREATE TABLE sqlite_sequence(name,seq)"},
            {"type": "table", "name": "notes", "tbl_name": "notes", "sql": "CREATE TABLE notes(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)"},
            {"type": "index", "name": "notes_body", "tbl_name": "notes", "sql": "CREATE INDEX notes_body ON notes(body)"},
            {"type": "index", "name": "sqlite_autoindex_x", "tbl_name": "notes", "sql": null},
            {"type": "table", "name": "notes_fts", "tbl_name": "notes_fts", "sql": "CREATE VIRTUAL TABLE notes_fts USING fts5(title, body)"},
            {"type": "table", "name": "notes_fts_data", "tbl_name": "notes_fts_data", "sql": "CREATE TABLE 'notes_fts_data'(id INTEGER PRIMARY KEY, block BLOB)"},
            {"type": "table", "name": "notes_fts_content", "tbl_name": "notes_fts_content", "sql": "CREATE TABLE 'notes_fts_content'(id INTEGER PRIMARY KEY, c0, c1)"},
            {"type": "table", "name": "ext_fts", "tbl_name": "ext_fts", "sql": "CREATE VIRTUAL TABLE ext_fts USING fts5(body, content='notes', content_rowid='id')"},
            {"type": "table", "name": "ext_fts_data", "tbl_name": "ext_fts_data", "sql": "CREATE TABLE 'ext_fts_data'(id INTEGER PRIMARY KEY, block BLOB)"},
            {"type": "trigger", "name": "notes_ai", "tbl_name": "NOTES", "sql": "CREATE TRIGGER notes_ai AFTER INSERT ON NOTES BEGIN INSERT INTO ext_fts(rowid, body) VALUES (new.id, new.body); END"},
            {"type": "view", "name": "recent", "tbl_name": "recent", "sql": "CREATE VIEW recent AS SELECT * FROM notes"},
            {"type": "table", "name": "other", "tbl_name": "other", "sql": "CREATE TABLE other(x)"}
        ]);
        let list = json!([
            {"schema": "main", "name": "notes_fts", "type": "virtual"},
            {"schema": "main", "name": "notes_fts_data", "type": "shadow"},
            {"schema": "main", "name": "notes_fts_content", "type": "shadow"},
            {"schema": "main", "name": "ext_fts", "type": "virtual"},
            {"schema": "main", "name": "ext_fts_data", "type": "shadow"},
            {"schema": "main", "name": "notes", "type": "table"},
            {"schema": "temp", "name": "notes", "type": "view"}
        ]);
        Catalog::from_wrangler_json(&json!([{"results": master}, {"results": list}])).unwrap()
    }

    #[test]
    fn an_apps_table_named_as_a_shadow_table_its_fts5_table_does_not_make_is_told() {
        // Each table: its name, its kind in `PRAGMA table_list`, its DDL.
        let tables = [
            (
                "Docs_Content",
                "shadow",
                "CREATE TABLE Docs_Content(id INTEGER PRIMARY KEY, body)",
            ),
            (
                "docs",
                "virtual",
                "CREATE VIRTUAL TABLE docs USING fts5(body, content='')",
            ),
            (
                "docs_data",
                "shadow",
                "CREATE TABLE 'docs_data'(id INTEGER PRIMARY KEY, block)",
            ),
            (
                "docs_docsize",
                "shadow",
                "CREATE TABLE 'docs_docsize'(id INTEGER PRIMARY KEY, sz)",
            ),
            ("slim_docsize", "shadow", "CREATE TABLE slim_docsize(x)"),
            (
                "slim",
                "virtual",
                "CREATE VIRTUAL TABLE slim USING fts5(a, columnsize = '0')",
            ),
            (
                "slim_content",
                "shadow",
                "CREATE TABLE 'slim_content'(id INTEGER PRIMARY KEY, c0)",
            ),
        ];
        let catalog = listed(&tables);
        assert_eq!(
            catalog.tables_taken_for_shadow_tables(),
            [
                ("Docs_Content".to_owned(), "docs".to_owned()),
                ("slim_docsize".to_owned(), "slim".to_owned())
            ]
        );
        assert!(
            super::tests::catalog()
                .tables_taken_for_shadow_tables()
                .is_empty()
        );
    }

    /// The catalog of `tables` (name, `PRAGMA table_list`'s type, SQL), as
    /// wrangler answers sqlite_master and the table list.
    fn listed<N: AsRef<str>>(tables: &[(N, &str, &str)]) -> Catalog {
        let master: Vec<_> = { tables.iter() }
            .map(|(n, _, sql)| {
                let n = n.as_ref();
                json!({"type": "table", "name": n, "tbl_name": n, "sql": sql})
            })
            .collect();
        let list: Vec<_> = { tables.iter() }
            .map(|(n, kind, _)| json!({"schema": "main", "name": n.as_ref(), "type": kind}))
            .collect();
        Catalog::from_wrangler_json(&json!([{"results": master}, {"results": list}])).unwrap()
    }

    /// With FTS5 tables `docs` and `docs_x`, `docs_x_data` is `docs_x`'s
    /// shadow table, not an app's table taken for one of `docs`'s: only
    /// FTS5's shadow names count, and a name an FTS5 table makes is never
    /// an app's.
    #[test]
    fn a_shadow_table_of_an_fts5_table_named_after_another_is_not_an_apps() {
        let mut tables = vec![
            (
                "docs".to_owned(),
                "virtual",
                "CREATE VIRTUAL TABLE docs USING fts5(body)",
            ),
            (
                "docs_x".to_owned(),
                "virtual",
                "CREATE VIRTUAL TABLE docs_x USING fts5(body, content='')",
            ),
            ("docs_x_content".to_owned(), "shadow", "CREATE TABLE t(x)"),
        ];
        for shadow in ["data", "idx", "config", "content", "docsize"] {
            tables.push((format!("docs_{shadow}"), "shadow", "CREATE TABLE t(x)"));
            if shadow != "content" {
                tables.push((format!("docs_x_{shadow}"), "shadow", "CREATE TABLE t(x)"));
            }
        }
        let catalog = listed(&tables);
        assert_eq!(
            catalog.tables_taken_for_shadow_tables(),
            [("docs_x_content".to_owned(), "docs_x".to_owned())]
        );
    }

    #[test]
    fn virtual_tables_and_where_their_rows_live() {
        let vts = catalog().virtual_tables();
        assert_eq!(vts.len(), 2);
        assert_eq!(vts[0].module, "fts5");
        assert_eq!(
            vts[0].content,
            VirtualContent::Internal {
                table: "notes_fts_content".into()
            }
        );
        assert_eq!(
            vts[1].content,
            VirtualContent::External {
                table: "notes".into()
            }
        );
    }

    #[test]
    fn full_export_with_fts_names_every_table_and_schema_object() {
        let scope = ExportScope::plan(&catalog(), &[]).unwrap();
        assert!(scope.works_around_virtual_tables());
        assert_eq!(
            scope.tables,
            [
                "d1_migrations",
                "sqlite_sequence",
                "notes",
                "notes_fts_content",
                "other",
                "notes_body",
                "notes_ai",
                "recent"
            ]
        );
        assert!(
            !scope
                .tables
                .iter()
                .any(|t| t == "notes_fts" || t == "notes_fts_data")
        );
    }

    #[test]
    fn full_export_without_virtual_tables_needs_no_table_list() {
        let mut c = catalog();
        c.objects.retain(|o| !o.name.contains("fts"));
        let scope = ExportScope::plan(&c, &[]).unwrap();
        assert!(scope.tables.is_empty());
        assert!(!scope.works_around_virtual_tables());
        assert_eq!(
            scope.data_tables,
            ["d1_migrations", "sqlite_sequence", "notes", "other"]
        );
    }

    #[test]
    fn an_export_must_create_every_object_in_its_scope() {
        let c = catalog();
        let names = |scope: &ExportScope| -> Vec<String> {
            scope
                .expected_objects(&c)
                .into_iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect()
        };
        let full = ExportScope::plan(&c, &[]).unwrap();
        assert_eq!(
            names(&full),
            [
                "index notes_body",
                "table d1_migrations",
                "table notes",
                "table notes_fts_content",
                "table other",
                "trigger notes_ai",
                "view recent"
            ]
        );
        let chosen = ExportScope::plan(&c, &["other".into()]).unwrap();
        assert_eq!(names(&chosen), ["table other"]);
    }

    #[test]
    fn a_table_without_an_integer_key_whose_triggers_keep_its_rowids_is_named() {
        let schema = [
            "CREATE TABLE notes (slug TEXT PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(body)",
            "CREATE TRIGGER notes_ai AFTER INSERT ON Notes BEGIN \
             INSERT INTO notes_fts (rowid, body) VALUES (NEW.rowid, new.body); END",
            "CREATE TRIGGER notes_log AFTER INSERT ON notes BEGIN SELECT new.slug; END",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN \
             INSERT INTO notes_fts (rowid, body) VALUES (new.rowid, new.body); END",
            "CREATE TABLE tags (a, b, PRIMARY KEY (a, b)) WITHOUT ROWID",
            "CREATE TABLE log (at TEXT)",
            "CREATE TABLE desc_key (id INTEGER PRIMARY KEY DESC, body TEXT)",
            "CREATE TRIGGER desc_key_ai AFTER INSERT ON desc_key BEGIN SELECT new._rowid_; END",
            "CREATE TABLE asc_key (id INTEGER, body TEXT, PRIMARY KEY (id DESC))",
            "CREATE TRIGGER asc_key_ai AFTER INSERT ON asc_key BEGIN SELECT new.rowid; END",
            "CREATE TRIGGER log_ad AFTER DELETE ON log BEGIN SELECT old.oid; END",
            "CREATE TRIGGER log_x AFTER DELETE ON log BEGIN SELECT old.oidx; END",
            "CREATE TRIGGER log_y AFTER DELETE ON log BEGIN SELECT old.\"ROWID\"; END",
        ]
        .map(str::to_owned);
        let kept = rowids_kept_by_triggers(&schema).unwrap();
        assert_eq!(
            kept,
            [
                RowidsKept {
                    table: "desc_key".into(),
                    triggers: vec!["desc_key_ai".into()],
                    rowid: "rowid",
                },
                RowidsKept {
                    table: "log".into(),
                    triggers: vec!["log_ad".into(), "log_y".into()],
                    rowid: "rowid",
                },
                RowidsKept {
                    table: "notes".into(),
                    triggers: vec!["notes_ai".into()],
                    rowid: "rowid",
                },
            ]
        );
    }

    /// rvAL: SQLite takes `new . rowid` (spaces around the dot, as a
    /// formatter or an ORM's generated SQL writes it) as `new.rowid`; only
    /// the spellings without spaces are looked for, so these triggers go
    /// unnamed and the restore that renumbers the tables is never told.
    #[test]
    fn a_trigger_naming_the_rowid_with_spaces_around_the_dot_is_named() {
        let schema = [
            "CREATE VIRTUAL TABLE fts USING fts5(body)",
            "CREATE TABLE a (slug TEXT PRIMARY KEY, body TEXT)",
            "CREATE TRIGGER a_ai AFTER INSERT ON a BEGIN \
             INSERT INTO fts (rowid, body) VALUES (new . rowid, new.body); END",
            "CREATE TABLE b (slug TEXT PRIMARY KEY, body TEXT)",
            "CREATE TRIGGER b_ad AFTER DELETE ON b BEGIN \
             DELETE FROM fts WHERE rowid = old.\n  rowid; END",
        ]
        .map(str::to_owned);
        let kept = rowids_kept_by_triggers(&schema).unwrap();
        let tables: Vec<&str> = kept.iter().map(|k| k.table.as_str()).collect();
        assert_eq!(tables, ["a", "b"]);
    }

    /// rvAL: a table with a column of its own named `rowid` (here its TEXT
    /// key): `new.rowid` is that column, which every export carries, so
    /// nothing is renumbered. It is named all the same, and backup's
    /// `count(*) = max(rowid)` then compares a count with text and warns
    /// on every backup, rows deleted or not.
    #[test]
    fn a_table_whose_own_column_is_named_rowid_is_not_named() {
        let schema = [
            "CREATE TABLE notes (rowid TEXT PRIMARY KEY, body TEXT)",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(slug, body)",
            "CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN \
             INSERT INTO notes_fts (slug, body) VALUES (new.rowid, new.body); END",
        ]
        .map(str::to_owned);
        assert_eq!(rowids_kept_by_triggers(&schema).unwrap(), []);
    }

    /// The trigger is written `ON NOTES`, which SQLite keeps as its
    /// `tbl_name`: it is still notes's.
    #[test]
    fn chosen_tables_keep_their_indexes_and_triggers() {
        let scope = ExportScope::plan(&catalog(), &["notes".into()]).unwrap();
        assert_eq!(scope.tables, ["notes", "notes_body", "notes_ai"]);
        assert_eq!(scope.data_tables, ["notes"]);
    }

    #[test]
    fn choosing_a_virtual_table_exports_its_content() {
        let scope = ExportScope::plan(&catalog(), &["notes_fts".into()]).unwrap();
        assert_eq!(scope.tables, ["notes_fts_content"]);
        assert_eq!(scope.virtual_tables.len(), 1);
    }

    #[test]
    fn a_table_is_chosen_in_any_case_and_kept_as_the_database_spells_it() {
        let scope = ExportScope::plan(&catalog(), &["NOTES".into(), "Notes_FTS".into()]).unwrap();
        assert_eq!(scope.chosen, ["notes", "notes_fts"]);
        assert!(scope.tables.contains(&"notes".to_owned()), "{scope:?}");
        assert_eq!(scope.data_tables, ["notes", "notes_fts_content"]);
    }

    /// A trigger's name is apart from the tables' (SQLite keeps triggers in
    /// a namespace of their own): `CREATE TABLE Post` and `CREATE TRIGGER
    /// post AFTER INSERT ON Post` both stand, and `--table post` is the
    /// table `Post` to SQLite. `Catalog::find` looks among every object, so
    /// it finds the trigger `post` by its exact name and `--table post` is
    /// refused as no such table (rvAK).
    #[test]
    fn a_table_is_chosen_in_any_case_past_a_trigger_spelt_as_asked() {
        let mut c = catalog();
        c.objects.push(SchemaObject {
            kind: "table".into(),
            name: "Post".into(),
            table: "Post".into(),
            sql: Some("CREATE TABLE Post(id INTEGER PRIMARY KEY, title TEXT)".into()),
            table_kind: Some("table".into()),
        });
        c.objects.push(SchemaObject {
            kind: "trigger".into(),
            name: "post".into(),
            table: "Post".into(),
            sql: Some("CREATE TRIGGER post AFTER INSERT ON Post BEGIN SELECT 1; END".into()),
            table_kind: None,
        });
        let scope = ExportScope::plan(&c, &["post".into()]).unwrap();
        assert_eq!(scope.chosen, ["Post"]);
        assert_eq!(scope.data_tables, ["Post"]);
    }

    /// KT: an external-content FTS5 table alone names no table to export
    /// (an empty list is a whole export): refused, naming its content
    /// table; with its content table it is taken.
    #[test]
    fn an_external_content_fts5_table_alone_is_refused_naming_its_content_table() {
        let err = format!(
            "{}",
            ExportScope::plan(&catalog(), &["ext_fts".into()]).unwrap_err()
        );
        assert!(err.contains("--table notes --table ext_fts"), "{err}");
        assert!(err.contains("whole backup"), "{err}");
        let scope = ExportScope::plan(&catalog(), &["notes".into(), "ext_fts".into()]).unwrap();
        assert_eq!(scope.data_tables, ["notes"]);
        assert_eq!(scope.virtual_tables.len(), 1);
    }

    #[test]
    fn an_unknown_table_is_refused_with_the_known_ones() {
        let err = ExportScope::plan(&catalog(), &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--table nope: no such table"), "{err}");
        assert!(err.contains("--table notes, --table notes_fts"), "{err}");
        let err = ExportScope::plan(&catalog(), &["notes_body".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such table"), "{err}");
    }

    #[test]
    fn fts_options_are_read_with_quotes_and_nesting() {
        let (module, args) =
            parse_using("CREATE VIRTUAL TABLE t USING FTS5(a, b UNINDEXED, content = \"x,y\", tokenize='porter unicode61')")
                .unwrap();
        assert_eq!(module, "fts5");
        assert_eq!(args.len(), 4);
        assert_eq!(fts_option(&args, "content").as_deref(), Some("x,y"));
        assert_eq!(fts_option(&args, "CONTENT").as_deref(), Some("x,y"));
        let (_, args) = parse_using("CREATE VIRTUAL TABLE t USING fts5(a, content='')").unwrap();
        assert_eq!(fts_option(&args, "content").as_deref(), Some(""));
    }
}

#[cfg(test)]
mod fts_setting_tests {
    use super::*;

    fn setting(key: &str, value: serde_json::Value) -> Result<FtsSetting> {
        FtsSetting::from_row(key, &value)
    }

    #[test]
    fn a_key_is_taken_in_any_case_and_hashsize_is_one() {
        for (key, value) in [
            ("Automerge", serde_json::json!(4)),
            ("PGSZ", serde_json::json!(4096)),
            ("hashsize", serde_json::json!(2048)),
            ("Secure-Delete", serde_json::json!(1)),
            ("RANK", serde_json::json!("bm25(10.0, 'x', NULL, X'00')")),
        ] {
            let s = setting(key, value).unwrap_or_else(|e| panic!("{key}: {e:#}"));
            assert_eq!(s.key, key, "the key is kept as typed");
        }
    }

    /// FTS5 reads an integer setting held as a text as
    /// `sqlite3_value_numeric_type` does: a text of an integer, within the
    /// blanks SQLite skips (space, tab, line breaks), is that integer; a
    /// text of a real (`'4.0'`, `'4e1'`) is no integer to it, so FTS5
    /// refuses it as a command and ignores it in `_config`, and the table
    /// runs with the default. The backup takes each as FTS5 does: the
    /// first as its integer, the second left out (with a warning), which is
    /// that default.
    #[test]
    fn a_text_setting_is_taken_as_fts5_reads_it() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE VIRTUAL TABLE t USING fts5(x)")
            .unwrap();
        let fts5_takes = |text: &str| {
            db.execute("INSERT INTO t(t, rank) VALUES('automerge', ?1)", [text])
                .is_ok()
        };
        for text in ["4", " 4 ", "+4", "\t4\n", "\r\n4\u{c}"] {
            assert!(fts5_takes(text), "{text:?}");
            let s = setting("automerge", serde_json::json!(text));
            let s = s.unwrap_or_else(|e| panic!("{text:?}: {e:#}"));
            assert_eq!(s.value, FtsSettingValue::Integer(4), "{text:?}");
        }
        for text in ["4.0", "4e1", " 40.0 ", "4.", "0x4", "4 x"] {
            assert!(!fts5_takes(text), "{text:?}");
            assert!(
                setting("automerge", serde_json::json!(text)).is_err(),
                "{text:?}"
            );
        }
    }

    /// IG: a REAL in `_config` (`4000.0`) is no integer to FTS5, which
    /// ignores it; read through remote wrangler, whose JSON writes it `4000`,
    /// it was carried as the integer setting 4000. The query gives no REAL,
    /// so it is left out (with its warning) whichever way it is read.
    #[test]
    fn a_real_setting_is_left_out_however_it_is_read() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(x);\n\
             INSERT INTO t_config VALUES ('pgsz', 4000.0), ('automerge', 4);",
        )
        .unwrap();
        let mut stmt = db.prepare(&FtsSetting::query("t")).unwrap();
        let rows: Vec<(String, rusqlite::types::Value)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // As JSON writes a number, JavaScript's (wrangler's) included.
        let as_json = |v: &rusqlite::types::Value| match v {
            rusqlite::types::Value::Integer(n) => serde_json::json!(n),
            rusqlite::types::Value::Real(f) if f.fract() == 0.0 => serde_json::json!(*f as i64),
            rusqlite::types::Value::Real(f) => serde_json::json!(f),
            rusqlite::types::Value::Text(t) => serde_json::json!(t),
            _ => serde_json::Value::Null,
        };
        let read: Vec<(&str, bool)> = { rows.iter() }
            .map(|(k, v)| (k.as_str(), setting(k, as_json(v)).is_ok()))
            .collect();
        assert_eq!(read, [("automerge", true), ("pgsz", false)]);
    }

    #[test]
    fn a_value_fts5_refuses_is_refused() {
        for (key, value) in [
            ("pgsz", serde_json::json!(1_000_000_000)),
            ("pgsz", serde_json::json!(31)),
            ("usermerge", serde_json::json!(1)),
            ("usermerge", serde_json::json!(17)),
            ("automerge", serde_json::json!(65)),
            ("hashsize", serde_json::json!(0)),
            ("crisismerge", serde_json::json!(-1)),
            ("secure-delete", serde_json::json!(-1)),
            ("insttoken", serde_json::json!("x")),
            ("deletemerge", serde_json::json!("x")),
            ("rank", serde_json::json!("x")),
            ("rank", serde_json::json!("bm25(")),
            ("rank", serde_json::json!("bm25(1,)")),
            ("rank", serde_json::json!(5)),
        ] {
            let e = setting(key, value.clone()).expect_err(&format!("{key}={value}"));
            assert!(format!("{e:#}").contains(key), "{e:#}");
        }
    }

    #[test]
    fn an_integer_setting_held_as_text_is_taken_as_its_integer() {
        let s = setting("automerge", serde_json::json!("4")).unwrap();
        assert_eq!(s.value, FtsSettingValue::Integer(4));
    }

    /// rvR: a manifest written before the integer rule recorded a setting
    /// stored as text (`'4'`) as a text; FTS5 reads it as its number, so
    /// its restore is not refused.
    #[test]
    fn an_older_manifests_integer_setting_recorded_as_text_is_taken() {
        for text in ["4", " 4 "] {
            let s = FtsSetting {
                key: "automerge".to_owned(),
                value: FtsSettingValue::Text(text.to_owned()),
            };
            s.check().unwrap_or_else(|e| panic!("{text:?}: {e:#}"));
        }
        let s = FtsSetting {
            key: "automerge".to_owned(),
            value: FtsSettingValue::Text("65".to_owned()),
        };
        assert!(s.check().is_err(), "out of range as a text too");
    }
}

#[cfg(test)]
mod object_kind_tests {
    use super::*;

    fn db_with(extra_tables: usize) -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE \"Plans\"(id INTEGER PRIMARY KEY);
             CREATE TABLE \"a b\"\"c\"(x);
             CREATE TABLE kv(k PRIMARY KEY, v) WITHOUT ROWID;
             CREATE VIEW recent AS SELECT id FROM \"Plans\";
             CREATE VIRTUAL TABLE search USING fts5(x);
             ATTACH ':memory:' AS other;
             CREATE TABLE other.elsewhere(x);
             CREATE TEMP TABLE scratch(x);",
        )
        .unwrap();
        let more: String = (0..extra_tables)
            .map(|i| format!("CREATE TABLE t{i}(x);"))
            .collect();
        db.execute_batch(&more).unwrap();
        db
    }

    /// Each kind, a name in another case, one needing quotes, and names
    /// only in another schema, which are none of `main`'s.
    #[test]
    fn object_kind_names_each_kind_as_sqlite_matches_names() {
        let db = db_with(0);
        for (name, kind) in [
            ("Plans", Some("table")),
            ("PLANS", Some("table")),
            ("plans", Some("table")),
            ("a b\"c", Some("table")),
            ("A B\"C", Some("table")),
            ("kv", Some("table")),
            ("recent", Some("view")),
            ("RECENT", Some("view")),
            ("search", Some("virtual")),
            ("search_data", Some("shadow")),
            ("Search_Config", Some("shadow")),
            ("sqlite_schema", Some("table")),
            ("elsewhere", None),
            ("scratch", None),
            ("main.plans", None),
            ("nothing", None),
            ("", None),
        ] {
            assert_eq!(Kinds::read(&db).unwrap().of(name), kind, "{name:?}");
        }
    }

    /// A lookup by name asks SQLite nothing: the kinds are read once
    /// (`diff`, `verify` and `backup` look up each table, so a scan of
    /// every table at each lookup made them quadratic: 4,000 tables took
    /// 8.3 s).
    #[test]
    fn a_lookup_of_a_kind_asks_sqlite_nothing() {
        let mut db = db_with(2_000);
        let kinds = Kinds::read(&db).unwrap();
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = std::sync::Arc::clone(&counted);
        db.progress_handler(
            1,
            Some(move || {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
        for i in 0..2_000 {
            assert_eq!(kinds.of(&format!("T{i}")), Some("table"));
        }
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// A view over a dropped table (legal in SQLite, and in real dumps)
    /// cannot be prepared, and SQLite lists the tables (`pragma
    /// table_list`, by name or not) only after trying to prepare it once
    /// for each table of the schema: a lookup of each table read was a
    /// pass over the schema's tables (2,000 tables and one such view: 200
    /// lookups took 40 s). The kinds are read once a call, so what the
    /// reads of many tables ask SQLite (its authorizer is asked at each
    /// prepare) grows with the tables read, not with them times the
    /// tables of the schema.
    #[test]
    fn a_view_that_cannot_be_prepared_costs_one_read_of_the_kinds_not_one_a_table() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        let mut schema = "CREATE VIEW broken AS SELECT * FROM gone;".to_owned();
        for i in 0..1_000 {
            schema.push_str(&format!(
                "CREATE TABLE t{i}(x); INSERT INTO t{i} VALUES ({i});"
            ));
        }
        db.execute_batch(&schema).unwrap();
        let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = std::sync::Arc::clone(&counted);
        db.authorizer(Some(move |_: rusqlite::hooks::AuthContext<'_>| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rusqlite::hooks::Authorization::Allow
        }))
        .unwrap();
        let asked = |read: &dyn Fn(&[String])| {
            let cost = |n: usize| {
                let tables: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
                counted.store(0, std::sync::atomic::Ordering::Relaxed);
                read(&tables);
                counted.load(std::sync::atomic::Ordering::Relaxed)
            };
            (cost(10), cost(100))
        };
        for (what, (few, many)) in [
            (
                "digests",
                asked(&|t| {
                    crate::digest::read(&db, t.iter().map(String::as_str)).unwrap();
                }),
            ),
            (
                "row sets",
                asked(&|t| {
                    crate::digest::row_sets(&db, t.iter().map(String::as_str)).unwrap();
                }),
            ),
            (
                "values over the limit",
                asked(&|t| {
                    crate::value_limit::over_the_limit(&db, t).unwrap();
                }),
            ),
        ] {
            // Each table more was a pass over the schema's 1,000 tables.
            assert!(
                (many - few) / 90 < 100,
                "{what}: SQLite asked {few} times for 10 tables, {many} for 100"
            );
        }
    }

    /// The migrations' table `table` (made by `sql`) and a UNIQUE index
    /// `index` on its column `a`, by name, as a run of them leaves them.
    fn made_table_and_index(table: &str, sql: &str, index: &str) -> BTreeMap<String, Defined> {
        let defined = |kind: &str, sql: String| Defined {
            kind: kind.to_owned(),
            table: table.to_owned(),
            sql,
        };
        let unique = format!("CREATE UNIQUE INDEX {index} ON {table} (a)");
        BTreeMap::from([
            (table.to_owned(), defined("table", sql.to_owned())),
            (index.to_owned(), defined("index", unique)),
        ])
    }

    /// A dump's tables and indexes, by name, their texts.
    fn dump(texts: &[(&str, &str)]) -> BTreeMap<String, String> {
        { texts.iter() }
            .map(|(n, sql)| ((*n).to_owned(), (*sql).to_owned()))
            .collect()
    }

    /// The dump's texts are compared as SQLite stores them: a final `;`,
    /// CRLF, `IF NOT EXISTS` or a quoted name is no difference; the
    /// migrations' index dropped, or made not UNIQUE, is one.
    #[test]
    fn schema_changes_see_a_dropped_unique_index_not_a_texts_spelling() {
        let made = made_table_and_index("t", "CREATE TABLE t (a, b)", "t_a");
        let same = dump(&[
            ("T", "CREATE TABLE IF NOT EXISTS \"T\" (a, b);\r\n"),
            ("t_a", "CREATE UNIQUE INDEX t_a ON t (a);"),
        ]);
        assert!(schema_changes(&same, &made).is_empty());
        let dropped = dump(&[("t", "CREATE TABLE t (a, b)")]);
        assert_eq!(schema_changes(&dropped, &made).missing, ["t_a"]);
        let plain = dump(&[
            ("t", "CREATE TABLE t (a, b)"),
            ("t_a", "CREATE INDEX t_a ON t (a)"),
        ]);
        assert_eq!(schema_changes(&plain, &made).changed, ["t_a"]);
        // A backup of other tables is not told of t's index.
        assert!(schema_changes(&dump(&[("u", "CREATE TABLE u (x)")]), &made).is_empty());
    }

    /// `d1_migrations` as wrangler makes it (tabs) and as a rehearsal's
    /// prod or another tool made it (spaces, on one line) is one table;
    /// a CHECK added to it, in any layout, is a change.
    #[test]
    fn schema_changes_see_no_change_in_layout_and_every_change_in_tokens() {
        let wranglers = "CREATE TABLE IF NOT EXISTS \"d1_migrations\"(\n\t\tid         INTEGER \
                         PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\t\
                         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);";
        let made = BTreeMap::from([(
            "d1_migrations".to_owned(),
            Defined {
                kind: "table".to_owned(),
                table: "d1_migrations".to_owned(),
                sql: wranglers.to_owned(),
            },
        )]);
        let spaced = "CREATE TABLE d1_migrations(\n                    id         INTEGER \
                      PRIMARY KEY AUTOINCREMENT,\n                    name       TEXT UNIQUE,\n\
                      applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n                )";
        let one_line = "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name \
                        TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";
        for same in [spaced, one_line] {
            let found = schema_changes(&dump(&[("d1_migrations", same)]), &made);
            assert!(found.is_empty(), "{same}: {found:?}");
        }
        let checked = one_line.replace(
            "name TEXT UNIQUE,",
            "name TEXT UNIQUE CHECK (name < '0005'),",
        );
        let found = schema_changes(&dump(&[("d1_migrations", &checked)]), &made);
        assert_eq!(found.changed, ["d1_migrations"], "{checked}");
    }

    /// Before the name, only words count (a comment naming UNIQUE is no
    /// UNIQUE); a CRLF in a string is the string's, in a table's CHECK as
    /// in a trigger's body, while one between tokens is layout (rvBL).
    #[test]
    fn schema_changes_read_unique_and_line_ends_as_sqlite_does() {
        let made = made_table_and_index("t", "CREATE TABLE t (a CHECK (a <> '\n'))", "t_a");
        let commented = dump(&[("t_a", "/* UNIQUE */ CREATE INDEX t_a ON t (a)")]);
        assert_eq!(schema_changes(&commented, &made).changed, ["t_a"]);
        let crlf_between = dump(&[("t", "CREATE TABLE t (a\r\nCHECK (a <> '\n'))")]);
        assert!(schema_changes(&crlf_between, &made).changed.is_empty());
        let crlf_inside = dump(&[("t", "CREATE TABLE t (a CHECK (a <> '\r\n'))")]);
        assert_eq!(schema_changes(&crlf_inside, &made).changed, ["t"]);
        let trigger = "CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT '\n'; END";
        let migrations = dump(&[("g", trigger)]);
        let laid_out = trigger.replace(" BEGIN ", "\r\nBEGIN\r\n  ");
        assert!(foreign_triggers(&dump(&[("g", &laid_out)]), &migrations).is_empty());
        let inside = trigger.replace("'\n'", "'\r\n'");
        assert_eq!(
            foreign_triggers(&dump(&[("g", &inside)]), &migrations),
            ["g"]
        );
    }

    /// A table no migration makes is judged only by what it does to theirs:
    /// a FOREIGN KEY to one of their tables (any case, any quoting) or one
    /// whose table cannot be read is a change; one to its own kind is not.
    #[test]
    fn an_unmade_table_referring_to_a_migrations_table_constrains_it() {
        let made = made_table_and_index("accounts", "CREATE TABLE accounts (id)", "accounts_a");
        let tables = dump(&[
            (
                "holds",
                "CREATE TABLE holds (a REFERENCES \"ACCOUNTS\" (id))",
            ),
            (
                "notes",
                "CREATE TABLE notes (a REFERENCES scratch (id), b TEXT)",
            ),
            ("odd", "CREATE TABLE odd (a REFERENCES (id))"),
            (
                "scratch",
                "CREATE TABLE scratch (id, note TEXT DEFAULT 'REFERENCES accounts')",
            ),
            ("accounts", "CREATE TABLE accounts (id)"),
        ]);
        assert_eq!(unmade_referencing_tables(&tables, &made), ["holds", "odd"]);
        let changes = schema_changes_constraining(&tables, &made);
        assert_eq!(changes.changed, ["holds", "odd"]);
    }

    /// Names match as SQLite matches them, ASCII case ignored, on both
    /// sides: a dump's `T_A` is the migrations' `t_a`, and its `T` holds
    /// the table `t`'s index is on; a name differing beyond ASCII case
    /// is another object.
    #[test]
    fn schema_changes_match_names_ignoring_ascii_case() {
        let made = made_table_and_index("Tab", "CREATE TABLE Tab (a CHECK (a > 0))", "tab_a");
        // Its CHECK and the index's UNIQUE gone, each under another case.
        let table = ("TAB", "CREATE TABLE TAB (a)");
        let index = ("TAB_A", "CREATE INDEX TAB_A ON TAB (a)");
        let found = schema_changes(&dump(&[table, index]), &made);
        assert_eq!(found.changed, ["TAB", "TAB_A"]);
        assert!(found.missing.is_empty(), "{found:?}");
        // The index dropped from a dump that holds its table as `tAB`.
        let dropped = schema_changes(
            &dump(&[("tAB", "CREATE TABLE tAB (a CHECK (a > 0))")]),
            &made,
        );
        assert!(dropped.changed.is_empty(), "{dropped:?}");
        assert_eq!(dropped.missing, ["tab_a"]);
        // Not ASCII case: another name, neither compared nor holding Tab.
        let other = dump(&[("TÄB", "CREATE TABLE TÄB (a)")]);
        assert!(schema_changes(&other, &made).is_empty());
    }

    /// The indexes a dump makes that no migration makes, on a table one
    /// makes, as (UNIQUE, plain): UNIQUE told by the words before the
    /// name, a partial or expression index too; one on a table no
    /// migration makes is not judged (made by hand, or another branch's);
    /// one whose table cannot be read from its text is taken as on a
    /// migration's table (fail closed); names match ignoring ASCII case
    /// only, an index of the migrations' under another case is theirs.
    #[test]
    fn unmade_indexes_are_the_dumps_own_on_the_migrations_tables_unique_apart() {
        let made = made_table_and_index("Tab", "CREATE TABLE Tab (a, b)", "tab_a");
        let found = unmade_indexes(
            &dump(&[
                ("Tab", "CREATE TABLE Tab (a, b)"),
                ("TAB_A", "CREATE UNIQUE INDEX TAB_A ON Tab (a)"),
                ("one_b", "CREATE UNIQUE INDEX one_b ON TAB (b) WHERE b > 0"),
                ("by_b", "CREATE INDEX by_b ON \"tab\" (b)"),
                (
                    "by_a_b",
                    "CREATE INDEX IF NOT EXISTS by_a_b ON main.tAB (a, b)",
                ),
                ("lower_b", "create unique index lower_b on tab (lower(b))"),
                ("hand", "CREATE TABLE hand (x)"),
                ("hand_x", "CREATE UNIQUE INDEX hand_x ON hand (x)"),
                ("täb_x", "CREATE UNIQUE INDEX täb_x ON TÄB (x)"),
                ("unread", "CREATE INDEX unread ON (a)"),
                ("unread_u", "CREATE UNIQUE INDEX unread_u ON"),
            ]),
            &made,
        );
        assert_eq!(
            found,
            (
                vec![
                    "lower_b".to_owned(),
                    "one_b".to_owned(),
                    "unread_u".to_owned()
                ],
                vec!["by_a_b".to_owned(), "by_b".to_owned(), "unread".to_owned()],
            )
        );
        // Nothing made by the migrations: no table of theirs to judge on.
        let none = unmade_indexes(&dump(&[("x_a", "CREATE INDEX x_a ON x (a)")]), &made);
        assert_eq!(none, (Vec::new(), Vec::new()));
    }
}
