//! Loading a dump in one pass, while it is still arriving.
//!
//! [`repair::write`] needs two passes: every `CREATE TABLE` goes before the
//! first row (a table may reference one created after it, workers-sdk
//! #5683), so it must have seen the whole dump. A backup knows its tables
//! before the export starts: it read the schema to plan the export. So
//! [`OnePass`] writes those `CREATE TABLE` statements first, then passes the
//! dump on statement by statement as it arrives, checking that each of the
//! dump's own `CREATE TABLE` statements is the next one it already wrote,
//! and it stops at the first statement it cannot pass on as
//! [`repair::write`] would. Once the dump has ended and its survey is
//! known, [`OnePass::finish`] says whether what it passed on is exactly what
//! [`repair::write`] writes of that dump:
//!
//! - the same `CREATE TABLE` statements, the same text (but for the `IF
//!   NOT EXISTS` D1's export adds to a quoted name, which SQLite drops), in
//!   the same order, before any row: those the dump holds, and no other;
//! - then every other statement, the same text, in the dump's order, which
//!   holds when the survey found nothing to repair but that order (no split,
//!   no CRLF, no `unistr`, no other finding), no statement reads rows while
//!   creating a table (`CREATE TABLE ... AS`), and nothing but indexes,
//!   triggers and views follows the first of them.
//!
//! When it says no, the caller throws the database away and loads the dump
//! as always, in two passes: one pass is a shortcut, never a second opinion.

use crate::repair::{self, Kind, Options, Repair, STATEMENT_BUDGET, Sink, Survey};
use crate::statement;

/// The one-pass load of a dump, statement by statement.
#[derive(Debug, Default)]
pub struct OnePass {
    /// The `CREATE TABLE` statements written first, by table name.
    tables: Vec<(String, String)>,
    /// How many of them the dump has created so far, in order.
    seen: usize,
    started: bool,
    /// An index, trigger or view was passed on: only more of them may follow.
    late: bool,
    /// `DELETE FROM sqlite_sequence` was passed on.
    sequence_reset: bool,
    /// The dump's triggers, held for [`OnePass::end`]: the repair creates
    /// them after every index and view (an `INSTEAD OF` trigger needs its
    /// view), where D1's exports write them before.
    triggers: Vec<String>,
    /// [`OnePass::end`] passed the held triggers on.
    ended: bool,
    /// Why it stopped passing statements on.
    stopped: Option<&'static str>,
}

impl OnePass {
    /// A one-pass load under `options` of a dump that creates `tables`
    /// (name and `CREATE TABLE` statement), in that order, as a schema read
    /// before the export says. Only a whole dump loaded on its own (no
    /// virtual table to stage, no schema made beforehand) can be.
    pub fn new(options: &Options, tables: Vec<(String, String)>) -> OnePass {
        OnePass {
            tables,
            stopped: (*options != Options::default())
                .then_some("a load with repair options is made in two passes"),
            ..OnePass::default()
        }
    }

    /// Passes the dump's next statement on to `sink`, as [`repair::write`]
    /// would write it, unless this or an earlier statement stopped the one
    /// pass. Returns whether it still goes on; `Err` is the sink's.
    pub fn statement(&mut self, sql: &str, sink: &mut impl Sink) -> anyhow::Result<bool> {
        if self.stopped.is_some() {
            return Ok(false);
        }
        // Classified once: this runs for every row of the dump.
        let kind = repair::classify(sql);
        if let Some(why) = self.stops_at(sql, &kind) {
            self.stopped = Some(why);
            return Ok(false);
        }
        if !self.started {
            self.started = true;
            sink.statement("PRAGMA defer_foreign_keys=TRUE;")?;
            for (_, ddl) in &self.tables {
                sink.statement(&repair::normalise(ddl, repair::Endings::Lf))?;
            }
        }
        match kind {
            Kind::DeferPragma => {}
            // Written first; `stops_at` checked it is the next one.
            Kind::CreateTable(_) => self.seen += 1,
            Kind::SequenceReset => {
                self.sequence_reset = true;
                sink.statement(&repair::normalise(sql, repair::Endings::Lf))?;
            }
            Kind::LateSchema => {
                self.late = true;
                match statement::created_object(sql) {
                    Some(("trigger", _)) => self
                        .triggers
                        .push(repair::normalise(sql, repair::Endings::Lf).into_owned()),
                    _ => sink.statement(&repair::normalise(sql, repair::Endings::Lf))?,
                }
            }
            _ => {
                // A row after the DELETE sets a counter again (rvCM 3).
                if matches!(&kind, Kind::Insert(t) if t != "sqlite_sequence") {
                    self.sequence_reset = false;
                }
                sink.statement(&repair::normalise(sql, repair::Endings::Lf))?
            }
        }
        Ok(true)
    }

    /// After the dump's last statement: passes the held triggers on, as
    /// [`repair::write`] writes them, last. Returns whether it still goes
    /// on; `Err` is the sink's.
    pub fn end(&mut self, sink: &mut impl Sink) -> anyhow::Result<bool> {
        if self.stopped.is_some() {
            return Ok(false);
        }
        for sql in std::mem::take(&mut self.triggers) {
            sink.statement(&sql)?;
        }
        self.ended = true;
        Ok(true)
    }

    /// Why it stopped passing statements on, if it did.
    pub fn stopped(&self) -> Option<&'static str> {
        self.stopped
    }

    /// Why `sql`, of this `kind`, cannot be passed on in one pass, if it
    /// cannot.
    fn stops_at(&self, sql: &str, kind: &Kind) -> Option<&'static str> {
        if sql.contains('\r') {
            return Some("CRLF line endings");
        }
        if self.late && *kind != Kind::LateSchema {
            return Some("a statement after an index, trigger or view");
        }
        match kind {
            Kind::DeferPragma | Kind::LateSchema => None,
            Kind::SequenceReset => None,
            Kind::CreateTable(name) => match self.tables.get(self.seen) {
                Some((next, ddl))
                    if next == name
                        && repair::normalise(ddl, repair::Endings::Lf)
                            == as_stored(&repair::normalise(sql, repair::Endings::Lf)) =>
                {
                    None
                }
                _ => Some("a table other than the schema read before the export"),
            },
            Kind::Insert(table) if repair::is_reserved(table) => Some("a reserved table"),
            Kind::Insert(table) if table == "sqlite_sequence" && !self.sequence_reset => {
                Some("sqlite_sequence rows without their DELETE")
            }
            Kind::Insert(_) if sql.len() > STATEMENT_BUDGET => Some("a statement to split"),
            Kind::Insert(_) if statement::contains_bytes(sql.as_bytes(), b"unistr(") => {
                Some("unistr()")
            }
            Kind::Insert(_) => None,
            _ => Some("a statement a D1 export does not hold"),
        }
    }

    /// Whether everything passed on is what [`repair::write`] writes of the
    /// dump `survey` describes: `Err` says why not. The caller must also
    /// have run every statement without a failure.
    pub fn finish(self, survey: &Survey) -> Result<(), &'static str> {
        if let Some(why) = self.stopped {
            return Err(why);
        }
        if !self.started {
            return Err("an empty dump");
        }
        if !self.ended {
            return Err("the load did not reach the dump's end");
        }
        if self.seen != self.tables.len() {
            return Err("the dump lacks a table the schema read before the export has");
        }
        // The one repair a one-pass load makes too: the tables first.
        let mut moved = 0;
        for repair in &survey.repairs {
            match repair {
                Repair::DdlBeforeData { forward_references } => moved += forward_references.len(),
                _ => return Err("the dump needs repairs"),
            }
        }
        if survey.findings.len() != moved {
            return Err("the dump needs repairs");
        }
        if survey.unistr_statements > 0 || !survey.oversized.is_empty() {
            return Err("the dump needs rewriting");
        }
        if self.sequence_reset && !survey.keeps_sequence() {
            return Err("sqlite_sequence statements the repair drops");
        }
        Ok(())
    }
}

/// A dump's `CREATE TABLE` as SQLite stores it, which the schema read
/// before the export says: without the `IF NOT EXISTS` that D1's export
/// writes after `CREATE TABLE` of a table whose name is quoted
/// (`d1_migrations` as wrangler makes it), a clause SQLite drops and that
/// creates the same table in a database without it (rvCG 1). Nothing else
/// is taken as the same: another word, space or column is another table.
fn as_stored(sql: &str) -> std::borrow::Cow<'_, str> {
    match sql.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
        Some(rest) => format!("CREATE TABLE {rest}").into(),
        None => sql.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Everything a database holds: its schema and every row of every table.
    fn contents(db: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut tables = Vec::new();
        let mut q = db
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
            .unwrap();
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (kind, name, sql) = row.unwrap();
            if kind == "table" {
                tables.push(name.clone());
            }
            out.push(format!("{kind} {name} {sql:?}"));
        }
        for t in tables {
            let mut q = db
                .prepare(&format!(
                    "SELECT quote(rowid), * FROM {} ORDER BY rowid",
                    statement::quote_ident(&t)
                ))
                .unwrap();
            let n = q.column_count();
            let rows = q
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .unwrap();
            for row in rows {
                out.push(format!("{t}: {:?}", row.unwrap()));
            }
        }
        out
    }

    /// Runs statements on a connection with D1's foreign keys, deferred.
    struct Load(Connection, bool);

    impl Load {
        fn new() -> Load {
            let db = Connection::open_in_memory().unwrap();
            db.execute_batch("PRAGMA foreign_keys=ON; BEGIN;").unwrap();
            Load(db, true)
        }
    }

    impl Sink for Load {
        fn statement(&mut self, sql: &str) -> anyhow::Result<()> {
            if self.0.execute_batch(sql).is_err() {
                self.1 = false;
            }
            Ok(())
        }
    }

    /// The one-pass load's verdict, and, when it is yes, whether its
    /// database equals the two-pass load's.
    fn one_and_two_passes(
        dump: &str,
        options: &Options,
        tables: &[(String, String)],
    ) -> Result<(), &'static str> {
        let survey = repair::survey(dump.as_bytes(), options).unwrap();
        let mut two = Load::new();
        repair::write(dump.as_bytes(), &survey, options, &mut two).unwrap();
        let mut one = Load::new();
        let mut pass = OnePass::new(options, tables.to_vec());
        for s in statement::Statements::new(dump.as_bytes()) {
            if !pass.statement(&s.unwrap().sql, &mut one).unwrap() {
                break;
            }
        }
        pass.end(&mut one).unwrap();
        let verdict = pass.finish(&survey);
        if verdict.is_ok() && one.1 {
            assert!(two.1, "one pass loaded what two passes could not:\n{dump}");
            assert_eq!(contents(&one.0), contents(&two.0), "{dump}");
        }
        match one.1 {
            true => verdict,
            false => Err("a statement failed"),
        }
    }

    const EXPORT: &str = "PRAGMA defer_foreign_keys=TRUE;\n\
        CREATE TABLE companies (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);\n\
        INSERT INTO \"companies\" (\"id\",\"name\") VALUES(1,'a;b');\n\
        INSERT INTO \"companies\" (\"id\",\"name\") VALUES(2,replace('x\\ny','\\n',char(10)));\n\
        CREATE TABLE customers (id INTEGER PRIMARY KEY, company INTEGER REFERENCES companies(id), n TEXT);\n\
        INSERT INTO \"customers\" (\"id\",\"company\",\"n\") VALUES(1,2,X'00ff');\n\
        CREATE TABLE log (at TEXT, what TEXT);\n\
        INSERT INTO \"log\" (\"at\",\"what\") VALUES('t','x');\n\
        DELETE FROM sqlite_sequence;\n\
        INSERT INTO \"sqlite_sequence\" VALUES('companies',7);\n\
        CREATE INDEX customers_company ON customers(company);\n\
        CREATE TRIGGER count_log AFTER INSERT ON log BEGIN UPDATE companies SET name = name || '+'; END;\n\
        CREATE VIEW named AS SELECT name FROM companies;\n";

    /// The tables of the database `dump` loads into, as a backup reads them
    /// from the live database before its export.
    fn schema_of(dump: &str) -> Vec<(String, String)> {
        let survey = repair::survey(dump.as_bytes(), &Options::default()).unwrap();
        let mut db = Load::new();
        repair::write(dump.as_bytes(), &survey, &Options::default(), &mut db).unwrap();
        let mut q =
            db.0.prepare(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )
            .unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Dumps in a D1 export's order, with what the order of a two-pass
    /// load would change for a load in the dump's order: each loads in one
    /// pass into the database two passes make.
    #[test]
    fn a_d1_export_loads_in_one_pass_into_the_same_database() {
        // A table created after the rows that need it, as D1 exports one.
        let later = |dump: String| {
            dump.replace(
                "DELETE FROM sqlite_sequence;",
                "CREATE TABLE later (id INTEGER PRIMARY KEY);\n\
                 INSERT INTO \"later\" (\"id\") VALUES(2);\n\
                 DELETE FROM sqlite_sequence;",
            )
        };
        let forward = later(EXPORT.replace(
            "company INTEGER REFERENCES companies(id)",
            "company INTEGER REFERENCES later(id)",
        ));
        let reading = later(EXPORT.replace(
            "VALUES('t','x')",
            "VALUES('t',(SELECT count(*) FROM later))",
        ));
        for dump in [EXPORT.to_owned(), forward, reading] {
            assert_eq!(
                one_and_two_passes(&dump, &Options::default(), &schema_of(&dump)),
                Ok(()),
                "{dump}"
            );
        }
    }

    /// Each dump differs from a D1 export in one way that one pass cannot
    /// load as two passes do; one pass never claims it loaded such a dump.
    #[test]
    fn dumps_whose_order_matters_are_left_to_two_passes() {
        let insert_at = EXPORT.find("CREATE INDEX").unwrap();
        let cases: Vec<(&str, String)> = vec![
            (
                "a trigger before rows",
                format!(
                    "{}INSERT INTO \"log\" (\"at\",\"what\") VALUES('u','y');\n",
                    EXPORT
                ),
            ),
            (
                "a trigger in the middle",
                EXPORT.replace(
                    "CREATE TABLE log (at TEXT, what TEXT);\n",
                    "CREATE TABLE log (at TEXT, what TEXT);\nCREATE TRIGGER early AFTER INSERT ON log BEGIN DELETE FROM customers; END;\n",
                ),
            ),
            (
                "a table made from rows",
                format!(
                    "{}CREATE TABLE copy AS SELECT * FROM companies;\n{}",
                    &EXPORT[..insert_at],
                    &EXPORT[insert_at..]
                ),
            ),
            ("CRLF line endings", EXPORT.replace('\n', "\r\n")),
            ("unistr", EXPORT.replace("'a;b'", "unistr('a\\000ab')")),
            (
                "a row over the limit",
                EXPORT.replace("'a;b'", &format!("'{}'", "z".repeat(STATEMENT_BUDGET))),
            ),
            (
                "transaction lines",
                format!("BEGIN TRANSACTION;\n{EXPORT}COMMIT;\n"),
            ),
            (
                "a rejected statement",
                EXPORT.replace("DELETE FROM sqlite_sequence;", "DELETE FROM customers;"),
            ),
            (
                "sequence rows without AUTOINCREMENT",
                EXPORT.replace(" AUTOINCREMENT", ""),
            ),
        ];
        for (what, dump) in cases {
            assert!(
                one_and_two_passes(&dump, &Options::default(), &schema_of(&dump)).is_err(),
                "{what}: one pass accepted\n{dump}"
            );
        }
        let staged = Options {
            data_into_existing_schema: true,
            ..Options::default()
        };
        assert!(one_and_two_passes(EXPORT, &staged, &schema_of(EXPORT)).is_err());
    }

    /// A table whose name was quoted (`d1_migrations` as wrangler makes
    /// it) is written by D1's export `CREATE TABLE IF NOT EXISTS`, where
    /// SQLite keeps `CREATE TABLE` and the schema read says so: the same
    /// table, loaded in one pass (rvCG 1). So is one whose text only holds
    /// a quoted `CREATE TABLE` (the export's test is not anchored).
    #[test]
    fn a_table_the_export_writes_if_not_exists_is_the_schema_read_before_it() {
        let dump = EXPORT.replace(
            "CREATE TABLE companies",
            &format!(
                "{WRANGLERS_MIGRATIONS}\n\
                 INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") \
                 VALUES(1,'0001_a.sql','2026-01-01 00:00:00');\n\
                 CREATE TABLE IF NOT EXISTS 'quoted' (x DEFAULT 'CREATE TABLE \"y\"');\n\
                 CREATE TABLE IF NOT EXISTS t (x DEFAULT 'CREATE TABLE \"y\"');\n\
                 CREATE TABLE companies"
            ),
        );
        let schema = schema_of(&dump);
        assert!(
            schema[0].1.starts_with("CREATE TABLE \"d1_migrations\"("),
            "{schema:?}"
        );
        assert_eq!(
            one_and_two_passes(&dump, &Options::default(), &schema),
            Ok(())
        );
    }

    /// `d1_migrations` as the pinned wrangler creates it (`CREATE TABLE IF
    /// NOT EXISTS`, its name quoted, tab-indented), as D1's export writes it.
    const WRANGLERS_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS \"d1_migrations\"(\n\
        \t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\
        \t\tname       TEXT UNIQUE,\n\
        \t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);";

    /// The schema read before the export and the dump's tables must agree:
    /// a table created, dropped or altered in between stops the one pass.
    #[test]
    fn a_dump_whose_tables_are_not_the_schema_read_before_it_is_left_to_two_passes() {
        let schema = schema_of(EXPORT);
        let added = EXPORT.replace(
            "CREATE TABLE log",
            "CREATE TABLE added (id INTEGER PRIMARY KEY);\nCREATE TABLE log",
        );
        let dropped = EXPORT.replace("CREATE TABLE log (at TEXT, what TEXT);\n", "");
        let dropped = dropped.replace(
            "INSERT INTO \"log\" (\"at\",\"what\") VALUES('t','x');\n",
            "",
        );
        let dropped = &dropped[..dropped.find("CREATE TRIGGER").unwrap()];
        let altered = EXPORT.replace("log (at TEXT, what TEXT)", "log (at TEXT, what BLOB)");
        // Written by the export `IF NOT EXISTS`, the same name, another table.
        let migrated = EXPORT.replace(
            "CREATE TABLE companies",
            &format!("{WRANGLERS_MIGRATIONS}\nCREATE TABLE companies"),
        );
        let migrated_schema = schema_of(&migrated);
        let unique_dropped = migrated.replace("name       TEXT UNIQUE", "name       TEXT");
        let created_as_temporary = migrated.replace(
            "CREATE TABLE IF NOT EXISTS \"d1_migrations\"",
            "CREATE TEMP TABLE IF NOT EXISTS \"d1_migrations\"",
        );
        let unquoted_said_otherwise = EXPORT.replace(
            "CREATE TABLE log (at TEXT, what TEXT)",
            "CREATE TABLE IF NOT EXISTS log (at TEXT, what BLOB)",
        );
        let mut reordered = schema.clone();
        reordered.swap(0, 1);
        for (what, dump, tables) in [
            ("a table added", added.as_str(), &schema),
            ("a table dropped", dropped, &schema),
            ("a table altered", altered.as_str(), &schema),
            ("a constraint dropped", &unique_dropped, &migrated_schema),
            ("a temporary table", &created_as_temporary, &migrated_schema),
            ("altered, IF NOT EXISTS", &unquoted_said_otherwise, &schema),
            ("tables in another order", EXPORT, &reordered),
            ("no schema", EXPORT, &Vec::new()),
        ] {
            assert!(
                one_and_two_passes(dump, &Options::default(), tables).is_err(),
                "{what}: one pass accepted"
            );
        }
    }
}
