//! Databases D1 accepts, made with the real wrangler, that a backup must
//! carry and a restore bring back exactly, or say plainly what it cannot.
//! Each test here failed when it was written (atkK's report).

use crate::common;

use common::*;

/// A sandbox whose migrations end with `shape` (so that its triggers are
/// the migrations' own, which restore accepts), applied by the real wrangler.
fn sandbox_with_migration(shape: &str) -> Sandbox {
    let sb = target_with_migration(shape);
    sb.apply_migrations();
    sb
}

/// A new sandbox whose migrations end with `shape`, not applied: another
/// checkout of the same project, a restore's target.
fn target_with_migration(shape: &str) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations/0005_shape.sql"), shape).unwrap();
    sb
}

#[test]
fn a_database_with_an_instead_of_trigger_on_a_view_backs_up_and_restores() {
    // Legal in D1: a view, and an INSTEAD OF trigger that writes through it.
    // Both exports write every trigger before every view, and the repair
    // keeps that order, so the trigger's CREATE fails (`no such table:
    // main.v`): every backup is bad, and every restore into this database
    // stops at its safety backup.
    let sb = sandbox_with_migration(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE VIEW v AS SELECT id, name FROM items;\n\
         CREATE TRIGGER v_insert INSTEAD OF INSERT ON v \
         BEGIN INSERT INTO items (id, name) VALUES (NEW.id, NEW.name); END;\n",
    );
    sb.execute_sql("INSERT INTO items VALUES (1, 'one');");

    sb.xtask(&["backup", "local"]).assert_ok();
    restore_replacing(&sb, "latest:local").assert_ok();
    let rows =
        sb.query("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name = 'v_insert'");
    assert_eq!(rows[0].len(), 1, "the trigger came back");
}

#[test]
fn text_holding_a_nul_byte_backs_up_and_restores_exactly() {
    // Legal in D1 (wrangler stores it). The native export writes the NUL
    // into the dump as it is, which verify then refuses: the backup is bad,
    // although the export already writes invalid UTF-8 as CAST(X'…' AS TEXT).
    let sb = sandbox_with_migration("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n");
    sb.execute_sql("INSERT INTO notes VALUES (1, CAST(X'610062' AS TEXT));");

    sb.xtask(&["backup", "local"]).assert_ok();
    restore_replacing(&sb, "latest:local").assert_ok();
    let rows = sb.query("SELECT typeof(body) AS t, hex(CAST(body AS BLOB)) AS h FROM notes");
    assert_eq!(rows[0][0]["t"], "text");
    assert_eq!(rows[0][0]["h"], "610062");
}

#[test]
fn an_fts5_column_named_with_a_space_restores() {
    // `content_columns` in repair.rs takes the first word of each column,
    // so the staged rows go into a column `x` the table does not have.
    let sb = sandbox_with_migration("CREATE VIRTUAL TABLE notes_fts USING fts5(\"x y\", body);\n");
    sb.execute_sql_with_wrangler("INSERT INTO notes_fts VALUES ('running', 'runners');");

    sb.xtask(&["backup", "local"]).assert_ok();
    restore_replacing(&sb, "latest:local").assert_ok();
    let rows = sb.query("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'running'");
    assert_eq!(rows[0].len(), 1, "the row is found again");
}

#[test]
fn a_contentless_fts5_tables_loss_is_said_by_the_backup_and_the_restore() {
    // A contentless table (content='') holds its data only in its index,
    // which no export carries: the restore recreates it empty. Both the
    // backup and the restore say so at every verbosity, naming it.
    let sb = sandbox_with_migration("CREATE VIRTUAL TABLE tags USING fts5(a, content='');\n");
    sb.execute_sql_with_wrangler("INSERT INTO tags (rowid, a) VALUES (7, 'contentless text');");

    let backup = sb.xtask(&["-q", "backup", "local"]);
    backup.assert_ok();
    assert!(
        backup
            .stderr
            .contains("warning: tags is a contentless FTS5 table"),
        "{}",
        backup.all()
    );
    let restore = restore_replacing(&sb, "latest:local");
    restore.assert_ok();
    assert!(
        restore
            .stderr
            .contains("warning: tags was not restored whole: it is a contentless FTS5 table"),
        "{}",
        restore.all()
    );
    let found = sb.query("SELECT rowid FROM tags WHERE tags MATCH 'contentless'");
    assert!(
        found[0].is_empty(),
        "the index came back after all: {found:?}"
    );
}

/// An app's table created before an FTS5 table whose shadow name it has
/// (`docs_content`, then `docs` with `content=''`, which makes no
/// `_content` of its own): SQLite takes it for `docs`'s shadow table by its
/// name, and the export leaves shadow tables out. The backup was GOOD,
/// "10 tables", with the table's two rows missing, and said nothing of
/// them; it should say so, naming the table.
#[test]
fn a_table_sqlite_takes_for_an_fts5_shadow_table_is_said_to_be_left_out_of_the_backup() {
    let sb = sandbox_with_migration(
        "CREATE TABLE docs_content (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO docs_content (body) VALUES ('one'), ('two');\n\
         CREATE VIRTUAL TABLE docs USING fts5(body, content='');\n",
    );
    let backup = sb.xtask(&["-q", "backup", "local"]);
    let said = backup
        .stderr
        .lines()
        .any(|l| l.starts_with("warning: docs_content") && l.contains("docs"));
    assert!(
        said,
        "the backup left docs_content's rows out silently:\n{}",
        backup.all()
    );
}

/// The same table as the FTS5 table's own content table
/// (`content='docs_content'`): no export carries it, and the restore's
/// `'rebuild'` of `docs` reads it, so the backup is BAD. The warning says
/// so, naming both tables, and the backup does not call itself good.
#[test]
fn a_table_taken_for_a_shadow_table_that_is_its_fts5_tables_content_is_said_to_make_every_backup_bad()
 {
    let sb = sandbox_with_migration(
        "CREATE TABLE docs_content (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO docs_content (body) VALUES ('one'), ('two');\n\
         CREATE VIRTUAL TABLE docs USING fts5(body, content='docs_content', content_rowid='id');\n",
    );
    let backup = sb.xtask(&["-q", "backup", "local"]);
    let warning = backup
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: docs_content is not in this backup"))
        .unwrap_or_else(|| panic!("no warning names docs_content:\n{}", backup.all()));
    assert!(
        warning.contains(
            "it is docs's content= table, which its 'rebuild' reads, so every backup is BAD \
             until it is renamed"
        ),
        "the warning does not say every backup is BAD: {warning}"
    );
    assert_eq!(
        backup.code,
        Some(1),
        "a backup that cannot rebuild docs is no failure:\n{}",
        backup.all()
    );
    assert!(
        backup.stderr.contains("failed verification"),
        "the backup was not called bad:\n{}",
        backup.all()
    );
}

/// External-content FTS5 tables whose `content=` table the database does
/// not have: renamed away (`ALTER TABLE posts RENAME TO articles` leaves
/// `content='posts'` as it was), never made, or a view since dropped. The
/// dump is faithful, but the restore's own `'rebuild'` of each index failed
/// (`no such table: main.posts`), so every backup was "corrupt or does not
/// match its manifest" (rvAN). The backup is GOOD and warns of each, naming
/// it; the restore recreates them and says so too.
#[test]
fn fts5_tables_whose_content_table_is_gone_back_up_good_with_a_warning_and_restore() {
    let sb = sandbox_with_migration(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n\
         CREATE VIRTUAL TABLE posts_fts USING fts5(title, content='posts', content_rowid='id');\n\
         CREATE VIRTUAL TABLE ghost_fts USING fts5(body, content='no_such_table');\n\
         CREATE VIEW shown AS SELECT id, title FROM posts;\n\
         CREATE VIRTUAL TABLE shown_fts USING fts5(title, content='shown', content_rowid='id');\n\
         DROP VIEW shown;\n",
    );
    sb.execute_sql_with_wrangler(
        "INSERT INTO posts VALUES (1, 'hello world');\n\
         INSERT INTO posts_fts (rowid, title) VALUES (1, 'hello world');\n\
         ALTER TABLE posts RENAME TO articles;\n",
    );

    let backup = sb.xtask(&["-q", "backup", "local"]);
    assert_eq!(backup.code, Some(0), "{}", backup.all());
    assert!(!backup.all().contains("corrupt"), "{}", backup.all());
    for (fts, content) in [
        ("posts_fts", "posts"),
        ("ghost_fts", "no_such_table"),
        ("shown_fts", "shown"),
    ] {
        assert_warned(
            &backup,
            &format!(
                "warning: {fts} names a content table, {content}, that the database does not have"
            ),
        );
    }

    let restore = restore_replacing(&sb, "latest:local");
    restore.assert_ok();
    assert_warned(&restore, "warning: posts_fts was not restored whole");
    let rows = sb.query("SELECT title FROM articles WHERE id = 1");
    assert_eq!(rows[0][0]["title"], "hello world");
}

/// `--table posts_fts` without `--table posts`: the backup holds the FTS5
/// table but not the content table its `'rebuild'` reads, so it was BAD.
/// It is GOOD, and says which table to add.
#[test]
fn a_table_backup_of_an_fts5_table_without_its_content_table_is_good_and_says_so() {
    let sb = sandbox_with_migration(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n\
         CREATE VIRTUAL TABLE posts_fts USING fts5(title, content='posts', content_rowid='id');\n",
    );
    sb.execute_sql_with_wrangler(
        "INSERT INTO posts VALUES (1, 'hello world');\n\
         INSERT INTO posts_fts (rowid, title) VALUES (1, 'hello world');\n",
    );
    let backup = sb.xtask(&[
        "-q",
        "backup",
        "local",
        "--table",
        "posts_fts",
        "--table",
        "customers",
        "--table",
        "companies",
    ]);
    assert_eq!(backup.code, Some(0), "{}", backup.all());
    assert_warned(
        &backup,
        "warning: posts_fts names a content table, posts, that this backup leaves out",
    );
}

/// Fails, showing all `run` printed, unless its stderr holds `said`.
#[track_caller]
fn assert_warned(run: &Run, said: &str) {
    assert!(run.stderr.contains(said), "no `{said}`:\n{}", run.all());
}

#[test]
fn a_fresh_backup_of_a_database_with_fts5_equals_the_live_database() {
    // diff loads the backup with its manifest (FTS5 tables recreated) and
    // the live export without one (no FTS5 tables at all), so the two are
    // always "different".
    let sb = sandbox_with_migration("CREATE VIRTUAL TABLE notes_fts USING fts5(title, body);\n");
    sb.execute_sql_with_wrangler("INSERT INTO notes_fts VALUES ('hello', 'world');");

    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

/// A row over D1's 100 KB statement limit (a PDF, a long note), put in
/// the local D1 by the real wrangler under `shape`: `backup local` must
/// call its backup good, and a restore into a fresh local D1 must bring
/// back exactly what `probe` reads (atkT).
fn an_oversized_row_round_trips(shape: &str, row: &str, probe: &str) {
    let sb = sandbox_with_migration(shape);
    sb.execute_sql_with_wrangler(row);
    let before = sb.query(probe);
    assert_eq!(before[0].len(), 1, "the row is in the source");

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let file = sb.backups().join(only_backup(&sb));

    let target = target_with_migration(shape);
    let restore = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    restore.assert_ok();
    let after = target.query(probe);
    assert!(
        after == before,
        "the row came back otherwise ({} rows)",
        after[0].len()
    );
}

#[test]
fn an_oversized_row_under_a_column_name_with_parentheses_backs_up_and_restores() {
    // `read_insert` in repair.rs takes the column list to the first `)`,
    // the one inside "amount (USD)", so the oversized row is "not INSERT
    // ... VALUES and cannot be split": every backup of this database is
    // bad, and no restore of it can run.
    an_oversized_row_round_trips(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, \"amount (USD)\" REAL, pdf BLOB);\n",
        "INSERT INTO invoices VALUES (1, 9.5, randomblob(150000));",
        "SELECT id, \"amount (USD)\" AS amount, typeof(pdf) AS t, hex(pdf) AS pdf FROM invoices",
    );
}

#[test]
fn an_oversized_row_under_column_names_with_a_comma_a_quote_or_brackets_backs_up_and_restores() {
    // The same column list is split at every `,` and stripped of every
    // quote and bracket at its ends: "a,b" becomes two columns, `x"` becomes
    // x and "[note]" becomes note, none of which the table has.
    an_oversized_row_round_trips(
        "CREATE TABLE wide (id INTEGER PRIMARY KEY, \"a,b\" TEXT, \"x\"\"\" TEXT, \"[note]\" TEXT);\n",
        "INSERT INTO wide VALUES (1, printf('%.*c', 60000, 'a'), printf('%.*c', 60000, 'x'), \
         printf('%.*c', 60000, 'n'));",
        "SELECT id, \"a,b\" AS a, \"x\"\"\" AS x, \"[note]\" AS note FROM wide",
    );
}

#[test]
fn an_oversized_row_whose_text_holds_a_nul_byte_backs_up_and_restores() {
    // The export writes the text as CAST(X'…' AS TEXT), but the split
    // carries it into `_restore_value` as a string literal holding the NUL
    // itself, which the SQL gate refuses: the backup is bad.
    an_oversized_row_round_trips(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
        "INSERT INTO notes VALUES (1, CAST(X'610062' AS TEXT) || printf('%.*c', 150000, 'x'));",
        "SELECT id, typeof(body) AS t, hex(CAST(body AS BLOB)) AS h FROM notes",
    );
}

#[test]
fn an_oversized_row_next_to_a_users_table_named_like_the_splits_side_table_backs_up_and_restores() {
    // The split built its value in a table named `_restore_value`: an
    // app's own table of that name made every backup of the database bad
    // ("table already exists"), and the gate let a dump change or drop any
    // table whose name began `_restore_`.
    an_oversized_row_round_trips(
        "CREATE TABLE _restore_value (k INTEGER PRIMARY KEY, v TEXT);\n\
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
        "INSERT INTO _restore_value VALUES (0, 'mine');\n\
         INSERT INTO notes VALUES (1, printf('%.*c', 150000, 'x'));",
        "SELECT (SELECT group_concat(k || v) FROM _restore_value) AS own, \
         id, length(body) AS n, body FROM notes",
    );
}

#[test]
fn a_blob_of_more_than_one_megabyte_backs_up_and_restores() {
    // Legal in D1 (a BLOB may hold 2 MB). The split of its oversized row
    // builds the BLOB in `_restore_value` as hex, twice its size, which is
    // over D1's 2 MB string limit from 1 MB on: "string or blob too big",
    // and every backup of the database is bad.
    an_oversized_row_round_trips(
        "CREATE TABLE attachments (id INTEGER PRIMARY KEY, body BLOB);\n",
        "INSERT INTO attachments VALUES (1, randomblob(1100000));",
        "SELECT id, length(body) AS n, hex(body) AS body FROM attachments",
    );
}

/// `shape` as a migration and `data` put in by the real wrangler: `backup
/// local` must call the backup good, and a restore into a fresh local D1
/// must bring back exactly what `probe` reads (rvAA).
fn round_trips(shape: &str, data: &str, probe: &str) {
    let sb = sandbox_with_migration(shape);
    sb.execute_sql_with_wrangler(data);
    let before = sb.query(probe);
    assert!(!before[0].is_empty(), "the source answers the probe");

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let file = sb.backups().join(only_backup(&sb));

    let target = target_with_migration(shape);
    let restore = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    restore.assert_ok();
    assert_eq!(target.query(probe), before, "{}", restore.all());
}

#[test]
fn an_fts5_table_over_a_view_with_a_bounded_recursive_cte_backs_up_and_restores() {
    // A category tree searched by its full path: the FTS5 table's external
    // content is a view whose recursive WITH walks the tree (bounded by
    // its rows). D1 builds the index ('rebuild'), but the gate refuses any
    // recursive WITH compiled while a statement runs, so the repair's own
    // 'rebuild' is refused: every backup is BAD and no restore runs.
    round_trips(
        "CREATE TABLE categories (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES categories(id), \
         name TEXT NOT NULL);\n\
         CREATE VIEW category_paths AS WITH RECURSIVE p(id, path) AS (\
         SELECT id, name FROM categories WHERE parent IS NULL \
         UNION ALL SELECT c.id, p.path || ' ' || c.name FROM categories c JOIN p ON c.parent = p.id) \
         SELECT id, path FROM p;\n\
         CREATE VIRTUAL TABLE category_search USING fts5(path, content='category_paths', \
         content_rowid='id');\n",
        "INSERT INTO categories VALUES (1, NULL, 'garden'), (2, 1, 'tools'), (3, 2, 'rakes');\n\
         INSERT INTO category_search(category_search) VALUES ('rebuild');",
        "SELECT rowid FROM category_search WHERE category_search MATCH 'garden' ORDER BY rowid",
    );
}

#[test]
fn an_fts5vocab_table_backs_up_and_restores() {
    // fts5vocab ships with FTS5 and D1 creates it; it holds no rows of its
    // own (it reads its FTS5 table's index). The gate refuses to create a
    // virtual table of any module but fts5, so every backup is BAD, and
    // its manifest "cannot be trusted", although the README says a table
    // of another module is recreated empty.
    round_trips(
        "CREATE VIRTUAL TABLE notes_fts USING fts5(body);\n\
         CREATE VIRTUAL TABLE notes_terms USING fts5vocab(notes_fts, row);\n",
        "INSERT INTO notes_fts VALUES ('alpha beta');",
        "SELECT term, doc FROM notes_terms ORDER BY term",
    );
}

const DUMP_WITH_A_GUARD_BEFORE_ITS_ROWS: &str = "\
CREATE TABLE categories (id INTEGER PRIMARY KEY AUTOINCREMENT, \
parent INTEGER REFERENCES categories(id) ON DELETE CASCADE, name TEXT NOT NULL CHECK (length(name) > 0));
CREATE TRIGGER categories_limit BEFORE INSERT ON categories \
BEGIN SELECT RAISE(ABORT, 'too many categories') WHERE (SELECT count(*) FROM categories) >= 1000; END;
INSERT INTO categories (id, parent, name) VALUES (1, NULL, 'root'), (2, 1, 'tools');
INSERT INTO categories (id, parent, name) VALUES (3, 2, 'rakes');
";

#[test]
fn a_hand_dump_whose_guard_trigger_comes_before_its_rows_restores() {
    // A schema file followed by its data, as people write them: the
    // trigger that caps a table (`SELECT RAISE(...) WHERE (SELECT count(*)
    // ...)`) exists before the rows and fires on each. D1 loads the file;
    // the gate refuses the first INSERT because the trigger's query reads
    // a table ("it reads categories in a query"): verify calls it BAD and
    // restore --no-manifest refuses it.
    let d1 = Sandbox::new();
    d1.execute_sql_with_wrangler(DUMP_WITH_A_GUARD_BEFORE_ITS_ROWS);
    let probe = "SELECT id, parent, name FROM categories ORDER BY id";
    let before = d1.query(probe);
    assert_eq!(before[0].len(), 3, "D1 itself loads the dump");

    let target = Sandbox::new();
    let file = target.path().join("by-hand.sql");
    std::fs::write(&file, DUMP_WITH_A_GUARD_BEFORE_ITS_ROWS).unwrap();
    let verify = target.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    // Its trigger is the hand dump's own, no migration's: named to be
    // installed (hostile_backups::a_restore_without_a_manifest_refuses_a_trigger_no_migration_makes_too).
    let restore = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--no-manifest",
        "--allow-trigger",
        "categories_limit",
        "--yes",
    ]);
    restore.assert_ok();
    assert_eq!(target.query(probe), before);
}

#[test]
fn an_oversized_multi_row_insert_in_a_hand_dump_is_restored_row_by_row() {
    // One INSERT of 3,000 rows, 148 KB: over D1's 100 KB limit. It was
    // refused ("an oversized multi-row INSERT cannot be split; give each
    // row its own INSERT"), though `sqlite3` loads it; the repair now
    // makes each row an INSERT of its own (rvCD 1). The gate never calls
    // the plain VALUES list "queries within a query".
    let rows: Vec<String> = (1..=3000)
        .map(|i| format!("({i}, 'category number {i} padded out a bit')"))
        .collect();
    let dump = format!(
        "CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO categories (id, name) VALUES {};\n",
        rows.join(",")
    );
    assert!(dump.len() > 100_000);
    let target = Sandbox::new();
    let file = target.path().join("by-hand.sql");
    std::fs::write(&file, dump).unwrap();
    for run in [
        target.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]),
        target.xtask(&[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--no-manifest",
            "--yes",
        ]),
    ] {
        run.assert_ok();
        for said in ["cannot be split", "queries within a query", "expected "] {
            assert!(!run.all().contains(said), "{}", run.all());
        }
    }
    let counted = target.query("SELECT count(*) AS n FROM categories");
    assert_eq!(counted[0][0]["n"], 3000);
}

/// Every kind of FTS5 table D1 makes, with the sync triggers of SQLite's
/// own documentation, an fts5vocab table and a view (rvAC).
const EVERY_FTS5: &str = "\
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id');
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN \
INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN \
INSERT INTO docs_fts(docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END;
CREATE TRIGGER docs_au AFTER UPDATE ON docs BEGIN \
INSERT INTO docs_fts(docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); \
INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
CREATE VIRTUAL TABLE notes_fts USING fts5(body);
CREATE VIRTUAL TABLE gone_fts USING fts5(body, content='', contentless_delete=1);
CREATE VIRTUAL TABLE docs_terms USING fts5vocab(docs_fts, row);
CREATE VIEW recent_docs AS SELECT id, title FROM docs WHERE id > 1;
CREATE VIEW doc_paths AS WITH RECURSIVE p(id, path) AS (SELECT id, title FROM docs WHERE id = 1 \
UNION ALL SELECT d.id, p.path || ' ' || d.title FROM docs d JOIN p ON d.id = p.id + 1) SELECT id, path FROM p;
CREATE VIRTUAL TABLE path_fts USING fts5(path, content='doc_paths', content_rowid='id');
";

const EVERY_FTS5_DATA: &str = "\
INSERT INTO docs (id, title, body) VALUES (1, 'alpha', 'one'), (2, 'beta', 'two'), (3, 'gamma', 'three');
UPDATE docs SET body = 'deux' WHERE id = 2;
DELETE FROM docs WHERE id = 3;
INSERT INTO notes_fts (rowid, body) VALUES (5, 'hello world');
INSERT INTO path_fts(path_fts) VALUES ('rebuild');
";

/// What a restore of [`EVERY_FTS5`] must bring back.
const EVERY_FTS5_PROBE: &str = "\
SELECT 'docs' AS t, rowid AS id FROM docs_fts WHERE docs_fts MATCH 'deux OR alpha' \
UNION ALL SELECT 'notes', rowid FROM notes_fts WHERE notes_fts MATCH 'hello' \
UNION ALL SELECT 'path', rowid FROM path_fts WHERE path_fts MATCH 'beta' \
UNION ALL SELECT 'term ' || term, doc FROM docs_terms \
UNION ALL SELECT 'recent', id FROM recent_docs ORDER BY 1, 2";

#[test]
fn every_kind_of_fts5_table_with_views_and_sync_triggers_backs_up_verifies_and_restores() {
    let sb = sandbox_with_migration(EVERY_FTS5);
    sb.execute_sql_with_wrangler(EVERY_FTS5_DATA);
    let before = sb.query(EVERY_FTS5_PROBE);
    assert!(!before[0].is_empty(), "the source answers the probe");

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let file = sb.backups().join(only_backup(&sb));
    let arg = file.to_str().unwrap().to_owned();
    let verify = sb.xtask(&["verify", &arg]);
    verify.assert_ok();
    assert!(verify.stdout.contains("Result: GOOD"), "{}", verify.all());

    // Into a fresh local D1, then over itself.
    let target = target_with_migration(EVERY_FTS5);
    let restore = target.xtask(&["restore", &arg, "--to", "local", "--yes"]);
    restore.assert_ok();
    assert_eq!(target.query(EVERY_FTS5_PROBE), before, "{}", restore.all());
    let replace = restore_replacing(&sb, &arg);
    replace.assert_ok();
    assert_eq!(sb.query(EVERY_FTS5_PROBE), before, "{}", replace.all());
    // Every trigger can run afterwards, and none is said not to.
    for run in [&restore, &replace] {
        assert!(!run.all().contains("BREAKS"), "{}", run.all());
    }
    // The sync triggers work on the restored database.
    sb.execute_sql_with_wrangler("INSERT INTO docs (id, title, body) VALUES (9, 'delta', 'nine');");
    let found = sb.query("SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'delta'");
    assert_eq!(found[0].len(), 1, "{found:?}");

    // The tool's reads of the live database.
    // Its newest backup is the replace's safety backup: what the restore
    // undid, so its migrations are unknown (LP), and `--check` tells.
    let status = sb.xtask(&["status"]);
    assert!(
        status
            .stdout
            .contains("unknown: a restore came after that backup"),
        "{}",
        status.all()
    );
    let diff = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert!(
        diff.code == Some(0) || diff.code == Some(1),
        "{}",
        diff.all()
    );
    assert!(!diff.all().contains("prohibited"), "{}", diff.all());
    sb.xtask(&["backup", "local"]).assert_ok();

    // The runbook's clean restore of its rows, and a partial restore.
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let data_only = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql"))
        .map(|f| sb.backups().join(f))
        .max_by_key(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .unwrap();
    let clean = target_with_migration(EVERY_FTS5);
    let run = clean.xtask(&[
        "restore",
        data_only.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--yes",
    ]);
    run.assert_ok();
    assert!(!run.all().contains("BREAKS"), "{}", run.all());
    let want = sb.query(EVERY_FTS5_PROBE);
    assert_eq!(clean.query(EVERY_FTS5_PROBE), want, "{}", run.all());
    sb.xtask(&["backup", "local", "--table", "docs"])
        .assert_ok();
}

/// The restore said, in its plan's BREAKS line and again in a warning
/// after it (even with -q), that `trigger` cannot run; and the app's next
/// statement, `next`, fails as it said.
fn says_it_breaks(run: &Run, trigger: &str, missing: &str, next: &Run) {
    run.assert_ok();
    let breaks = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("BREAKS"))
        .unwrap_or_else(|| panic!("no BREAKS line in the plan:\n{}", run.all()));
    assert!(
        breaks.contains(trigger) && breaks.contains(missing),
        "{breaks}\n{}",
        run.all()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains(trigger)),
        "no warning after the restore:\n{}",
        run.all()
    );
    assert_ne!(next.code, Some(0), "{}", next.all());
    assert!(next.all().contains(missing), "{}", next.all());
}

/// orders, whose trigger logs every new order into order_log.
const ORDERS_LOGGED: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, total INTEGER);\n\
     CREATE TABLE order_log (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER, what TEXT);\n\
     CREATE TRIGGER orders_log AFTER INSERT ON orders \
     BEGIN INSERT INTO order_log (order_id, what) VALUES (NEW.id, 'created'); END;\n";

/// The app's next statement, an INSERT into orders, through the real
/// wrangler (as the app reaches D1).
fn next_order(sb: &Sandbox) -> Run {
    sb.wrangler(&[
        "d1",
        "execute",
        "qbtime_db_local",
        "--local",
        "--command",
        "INSERT INTO orders (total) VALUES (30)",
    ])
}

#[test]
fn a_partial_restore_into_an_empty_database_says_a_kept_trigger_writes_to_a_table_it_lacks() {
    // `backup --table orders` keeps orders' trigger, whose body writes to
    // order_log, which the backup does not hold. `restore --partial` into
    // an empty local D1 creates the trigger, calls the restore good (rows,
    // content), and says nothing of order_log: the app's next order then
    // fails with `no such table: main.order_log`.
    let source = sandbox_with_migration(ORDERS_LOGGED);
    source.execute_sql("INSERT INTO orders (total) VALUES (10), (20);");
    let backup = source.xtask(&["backup", "local", "--table", "orders"]);
    backup.assert_ok();
    // The backup's verify says it first, with the way to a whole one.
    assert!(
        backup.stderr.lines().any(|l| l.starts_with("warning:")
            && l.contains("orders_log")
            && l.contains("--table")),
        "{}",
        backup.all()
    );
    let file = source.backups().join(only_backup(&source));

    let target = target_with_migration(ORDERS_LOGGED);
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--partial",
        "--yes",
    ]);
    let next = next_order(&target);
    says_it_breaks(&run, "orders_log", "order_log", &next);
}

#[test]
fn a_partial_replace_says_a_kept_trigger_writes_to_a_table_it_drops() {
    // `restore --replace --partial` of `backup --table orders` drops
    // order_log (its LOSES line says so) but brings orders' trigger back,
    // which writes to order_log: nothing says that every later INSERT
    // into orders now fails with `no such table: main.order_log`.
    let sb = sandbox_with_migration(ORDERS_LOGGED);
    sb.execute_sql("INSERT INTO orders (total) VALUES (10), (20);");
    sb.xtask(&["backup", "local", "--table", "orders"])
        .assert_ok();
    let name = only_backup(&sb);
    let run = sb.xtask(&[
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--partial",
        "--yes",
    ]);
    let next = next_order(&sb);
    says_it_breaks(&run, "orders_log", "order_log", &next);
    // `--json` gives it in the plan, for a script.
    let plan = sb.xtask(&[
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--partial",
        "--dry-run",
        "--json",
    ]);
    plan.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(plan.stdout.trim()).unwrap();
    assert_eq!(
        doc["plan"]["breaks"][0]["triggers"][0], "orders_log",
        "{doc}"
    );
}

#[test]
fn a_clean_restore_of_an_export_from_before_a_seeding_migration_keeps_the_seeded_rows() {
    // A data-only export made by hand (`wrangler d1 export --no-schema`)
    // when migrations 0001-0005 were applied (its d1_migrations rows say
    // so), restored `--clean --no-manifest` after 0006 added `plans` and
    // seeded it. The load empties every table of today's schema, plans
    // too, for which the dump holds no row: the seeded plans are gone,
    // and neither the plan nor the end names plans or 0006. With a
    // manifest the same restore is refused ("would load its rows into a
    // different schema").
    let items = "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);\n";
    let source = sandbox_with_migration(items);
    source.execute_sql("INSERT INTO items (name) VALUES ('a'), ('b');");
    let dump = source.export_data_only("data-only.sql");

    let target = target_with_migration(items);
    std::fs::write(
        target.path().join("migrations/0006_plans.sql"),
        "CREATE TABLE plans (id TEXT PRIMARY KEY, seats INTEGER NOT NULL);\n\
         INSERT INTO plans VALUES ('free', 1), ('team', 10);\n",
    )
    .unwrap();
    let run = target.xtask(&[
        "restore",
        dump.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
        "--yes",
    ]);
    // The dump's own d1_migrations rows say it was taken before 0006: the
    // restore is refused as one with a manifest is, naming 0006, and
    // nothing ran (the target was never migrated, so plans is not there).
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("0006_plans.sql") && run.stderr.contains("Nothing was done"),
        "{}",
        run.all()
    );
    let made = target.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'plans'");
    assert_eq!(
        made[0][0]["n"],
        0,
        "the refused restore applied the migrations:\n{}",
        run.all()
    );
    // verify judges the file by the same road: BAD, for the same reason.
    let verify = target.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(verify.code, Some(1), "{}", verify.all());
    assert!(
        verify.stdout.contains("0006_plans.sql") && verify.stdout.contains("refuses it"),
        "{}",
        verify.all()
    );
}

#[test]
fn a_partial_restore_of_a_table_with_fts5_sync_triggers_says_they_write_to_an_index_it_lacks() {
    // The usual FTS5 set-up: docs, an external-content index docs_fts,
    // and triggers that keep it in sync. `backup --table docs` keeps
    // docs' triggers but not docs_fts; `restore --partial` into an empty
    // local D1 calls itself good, and the app's next INSERT into docs
    // fails with `no such table: main.docs_fts`.
    let shape = "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT);\n\
         CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id');\n\
         CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN \
         INSERT INTO docs_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END;\n";
    let source = sandbox_with_migration(shape);
    source.execute_sql_with_wrangler("INSERT INTO docs (title, body) VALUES ('hello', 'world');");
    source
        .xtask(&["backup", "local", "--table", "docs"])
        .assert_ok();
    let file = source.backups().join(only_backup(&source));

    let target = target_with_migration(shape);
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--partial",
        "--yes",
    ]);
    let next = target.wrangler(&[
        "d1",
        "execute",
        "qbtime_db_local",
        "--local",
        "--command",
        "INSERT INTO docs (title, body) VALUES ('new', 'doc')",
    ]);
    says_it_breaks(&run, "docs_ai", "docs_fts", &next);
}

#[test]
fn a_trigger_from_a_migration_written_with_crlf_line_endings_backs_up_and_restores() {
    // A migration saved on Windows (CRLF), applied by the real wrangler:
    // D1 stores the trigger's text with its CR LFs, and the export writes
    // it so, last, with no line break after its `END;`. The splitter takes
    // that last line as ending like the one before it (CRLF), so the dump
    // reads as mixed and the load turns every CRLF outside a string into
    // LF, the trigger's too; the trigger check then compares that text with
    // the migration's own (CRLF). The backup is GOOD but warns that the
    // migrations do not create items_ai, and every restore of it is
    // refused: this database has no restorable backup at all.
    let shape = "CREATE TABLE items (\r\n  id INTEGER PRIMARY KEY,\r\n  name TEXT\r\n);\r\n\
         CREATE TABLE item_log (id INTEGER PRIMARY KEY, what TEXT);\r\n\
         CREATE TRIGGER items_ai AFTER INSERT ON items\r\nBEGIN\r\n  \
         INSERT INTO item_log (what) VALUES (NEW.name);\r\nEND;\r\n";
    let sb = sandbox_with_migration(shape);
    sb.execute_sql("INSERT INTO items (name) VALUES ('first');");
    let schema = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' \
                  ORDER BY type, name";
    let before = sb.query(schema);

    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert_eq!(
        sb.query(schema),
        before,
        "the restored schema's text differs from the source's"
    );
    sb.execute_sql_with_wrangler("INSERT INTO items (name) VALUES ('second');");
    let log = sb.query("SELECT what FROM item_log ORDER BY id");
    assert_eq!(
        log[0].len(),
        2,
        "the trigger fires on the next row: {log:?}"
    );
}

/// orders, whose trigger logs each new order's total into order_log.
const ORDERS_WITH_TOTALS_LOGGED: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);\n\
     CREATE TABLE order_log (id INTEGER PRIMARY KEY, order_id INTEGER, total INTEGER);\n\
     CREATE TRIGGER orders_log AFTER INSERT ON orders \
     BEGIN INSERT INTO order_log (order_id, total) VALUES (NEW.id, NEW.total); END;\n";

#[test]
fn a_replace_with_a_backup_from_before_a_column_rename_says_no_trigger_breaks() {
    // rvAE: the runbook's undo of a migration, `restore --replace` of the
    // backup taken before it. The preflight made the target's tables first
    // (`known_tables`, the target's catalog) and the dump's CREATE TABLE of
    // the same name failed there, so `stuck_triggers` judged the backup's
    // trigger (NEW.total) against the target's orders (its column renamed
    // to amount): a BREAKS line and a warning, `no such column:
    // NEW.total`, for a trigger that runs once the restore made orders
    // again from the backup.
    let sb = sandbox_with_migration(ORDERS_WITH_TOTALS_LOGGED);
    sb.execute_sql("INSERT INTO orders (id, total) VALUES (1, 10), (2, 20);");
    sb.xtask(&["backup", "local"]).assert_ok();
    let arg = sb
        .backups()
        .join(only_backup(&sb))
        .to_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        sb.path().join("migrations/0006_rename.sql"),
        "ALTER TABLE orders RENAME COLUMN total TO amount;\n",
    )
    .unwrap();
    sb.apply_migrations();

    let run = restore_replacing(&sb, &arg);
    run.assert_ok();
    // The trigger runs: the app's next order is logged.
    let next = sb.wrangler(&[
        "d1",
        "execute",
        "qbtime_db_local",
        "--local",
        "--command",
        "INSERT INTO orders (total) VALUES (30)",
    ]);
    assert_eq!(next.code, Some(0), "{}", next.all());
    let logged = sb.query("SELECT total FROM order_log WHERE total = 30");
    assert_eq!(logged[0].len(), 1, "{logged:?}");
    assert!(!run.all().contains("BREAKS"), "{}", run.all());
    assert!(!run.all().contains("cannot run"), "{}", run.all());
}

/// orders, a view of the open ones, and a trigger that counts them into
/// order_stats through the view.
const ORDERS_COUNTED_THROUGH_A_VIEW: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER, open INTEGER DEFAULT 1);\n\
     CREATE TABLE order_stats (id INTEGER PRIMARY KEY, open_orders INTEGER);\n\
     CREATE VIEW open_orders AS SELECT id FROM orders WHERE open = 1;\n\
     CREATE TRIGGER orders_count AFTER INSERT ON orders \
     BEGIN INSERT INTO order_stats (open_orders) SELECT count(*) FROM open_orders; END;\n";

#[test]
fn a_clean_restore_of_a_schema_whose_trigger_reads_a_view_says_no_trigger_breaks() {
    // rvAE: the runbook's clean restore (`migrations apply`, then the rows
    // of a data-only backup). Its preflight holds the migrations' tables and
    // triggers (`schema_from_migrations`: `created_in(db, "table")` and
    // "trigger"), not their views, so `stuck_triggers` calls the
    // migrations' own trigger stuck (`no such table: main.open_orders`): a
    // BREAKS line and a warning on every clean restore of this project.
    let source = sandbox_with_migration(ORDERS_COUNTED_THROUGH_A_VIEW);
    source.execute_sql("INSERT INTO orders (id, total) VALUES (1, 10), (2, 20);");
    source
        .xtask(&["backup", "local", "--data-only"])
        .assert_ok();
    let data_only = source.backups().join(only_backup(&source));

    let clean = target_with_migration(ORDERS_COUNTED_THROUGH_A_VIEW);
    let run = clean.xtask(&[
        "restore",
        data_only.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--yes",
    ]);
    run.assert_ok();
    let next = clean.wrangler(&[
        "d1",
        "execute",
        "qbtime_db_local",
        "--local",
        "--command",
        "INSERT INTO orders (total) VALUES (30)",
    ]);
    assert_eq!(next.code, Some(0), "{}", next.all());
    assert!(!run.all().contains("BREAKS"), "{}", run.all());
    assert!(!run.all().contains("cannot run"), "{}", run.all());
}

/// An external-content FTS5 table kept in step by sync triggers, the
/// schema SQLite's documentation gives, next to foreign keys and a
/// RAISE(ABORT) trigger.
const SYNCED_FTS5: &str = "\
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors (id) ON DELETE RESTRICT, title TEXT, body TEXT);\n\
CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE, text TEXT);\n\
CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');\n\
CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN INSERT INTO posts_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END;\n\
CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN INSERT INTO posts_fts (posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END;\n\
CREATE TRIGGER comments_not_empty BEFORE INSERT ON comments WHEN length(new.text) = 0 BEGIN SELECT RAISE(ABORT, 'empty comment'); END;\n";

#[test]
fn a_clean_restore_of_a_hand_no_schema_export_rebuilds_an_external_content_fts5_index() {
    // atkAI: the runbook's clean restore of a `wrangler d1 export
    // --no-schema` made by hand (with --table: wrangler refuses to export
    // a database with FTS5 whole). Without a manifest there are no
    // virtual-table records, so the plan says nothing of posts_fts, the
    // rows load with the sync triggers held off, and no 'rebuild' runs:
    // the restore says "Restored", the rows are all there, and the search
    // finds nothing. (With a data-only backup's manifest it is rebuilt.)
    let source = sandbox_with_migration(SYNCED_FTS5);
    source.execute_sql_with_wrangler(
        "INSERT INTO authors VALUES (1, 'ann'), (2, 'bob');\n\
         INSERT INTO posts VALUES (1, 1, 'running', 'runners run'), (2, 2, 'swimming', 'swimmers swim');\n\
         INSERT INTO comments VALUES (1, 1, 'nice'), (2, 2, 'meh');\n",
    );
    let found = "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'swimmers'";
    assert_eq!(source.query(found)[0].len(), 1, "the source finds it");
    let dump = source.path().join("hand.sql");
    let mut export = vec![
        "d1",
        "export",
        "qbtime_db_local",
        "--local",
        "--no-schema",
        "--output",
        dump.to_str().unwrap(),
    ];
    for table in ["d1_migrations", "authors", "posts", "comments"] {
        export.extend(["--table", table]);
    }
    source.wrangler(&export).assert_ok();

    let target = target_with_migration(SYNCED_FTS5);
    let run = target.xtask(&[
        "restore",
        dump.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
        "--yes",
    ]);
    run.assert_ok();
    assert_eq!(
        target.query("SELECT count(*) AS n FROM posts")[0][0]["n"],
        2,
        "{}",
        run.all()
    );
    assert_eq!(
        target.query(found)[0].len(),
        1,
        "the restored search finds what the source's finds:\n{}",
        run.all()
    );
}

/// atkAL: an external-content FTS5 index whose sync triggers index only
/// the rows the app shows (a soft delete takes a post out of the search,
/// the usual pattern), backed up: verify calls it GOOD, the restore says
/// "[x] content: every row equal to the backup's", and the restored
/// search finds the deleted post the source's did not: the repair
/// rebuilds the index from every row of `posts` (repair.rs, 'rebuild').
/// Nothing says so. A restore must bring back what the search found, or
/// say, as it does for a contentless table, that it could not.
#[test]
fn an_external_content_fts5_index_kept_partial_by_its_triggers_searches_as_before() {
    let shape = "\
CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT NOT NULL, deleted_at TEXT);
CREATE VIRTUAL TABLE posts_fts USING fts5(body, content='posts', content_rowid='id');
CREATE TRIGGER posts_ai AFTER INSERT ON posts WHEN new.deleted_at IS NULL
BEGIN INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body); END;
CREATE TRIGGER posts_soft_delete AFTER UPDATE OF deleted_at ON posts
WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL
BEGIN INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body); END;
";
    let probe = "SELECT rowid AS id FROM posts_fts WHERE posts_fts MATCH 'hello' ORDER BY rowid";
    let sb = sandbox_with_migration(shape);
    sb.execute_sql_with_wrangler(
        "INSERT INTO posts (id, body) VALUES (1, 'public hello'), (2, 'private hello');\n\
         UPDATE posts SET deleted_at = '2026-11-30' WHERE id = 2;",
    );
    let before = sb.query(probe);
    assert_eq!(
        before[0].len(),
        1,
        "the source finds only the post it shows"
    );

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let file = sb.backups().join(only_backup(&sb));
    let verify = sb.xtask(&["verify", file.to_str().unwrap()]);
    verify.assert_ok();

    let target = target_with_migration(shape);
    let restore = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    restore.assert_ok();
    let after = target.query(probe);
    assert!(
        after == before || restore.stderr.contains("warning: posts_fts"),
        "verified GOOD and restored with every row equal, but the search now finds \
         {after:?} where the source found {before:?}, and nothing said so:\n{}",
        restore.all()
    );
}

/// atkAL: a contentless FTS5 index kept in sync by triggers on its base
/// table (FTS5's documented pattern: 'delete' with the old values on
/// UPDATE and DELETE). The backup is GOOD and the restore warns that the
/// index comes back empty, "rebuild it from the app's data afterwards";
/// but until someone does, the app's next DELETE (or UPDATE) of a `docs`
/// row fails in D1 with "database disk image is malformed:
/// SQLITE_CORRUPT_VTAB": its trigger deletes from the empty index a row
/// it never held. The restore says no BREAKS for it, as it does for a
/// trigger that cannot run.
#[test]
fn a_contentless_fts5_index_with_sync_triggers_leaves_its_tables_writable_or_says_it_breaks() {
    let shape = "\
CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE VIRTUAL TABLE docs_idx USING fts5(body, content='');
CREATE TRIGGER docs_ai AFTER INSERT ON docs
BEGIN INSERT INTO docs_idx(rowid, body) VALUES (new.id, new.body); END;
CREATE TRIGGER docs_ad AFTER DELETE ON docs
BEGIN INSERT INTO docs_idx(docs_idx, rowid, body) VALUES ('delete', old.id, old.body); END;
";
    let sb = sandbox_with_migration(shape);
    sb.execute_sql_with_wrangler("INSERT INTO docs VALUES (1, 'alpha one'), (2, 'beta two');");
    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let file = sb.backups().join(only_backup(&sb));

    let target = target_with_migration(shape);
    let restore = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    restore.assert_ok();
    let delete = target.wrangler(&[
        "d1",
        "execute",
        "qbtime_db_local",
        "--local",
        "--command",
        "DELETE FROM docs WHERE id = 2",
    ]);
    assert!(
        delete.ok || (restore.all().contains("BREAKS") && restore.all().contains("docs_ad")),
        "restored GOOD, but the app's next DELETE of a docs row fails, and the restore did \
         not say so:\n{}\nthe delete:\n{}",
        restore.all(),
        delete.all()
    );
}

/// atkAR: notes keyed by a slug (a TEXT PRIMARY KEY, so the table still
/// has a rowid of its own, as a table with `id INT PRIMARY KEY` has),
/// searched through an FTS5 index that its migration's triggers keep by
/// `new.rowid`. No export writes a rowid for such a table: a restore gives
/// the notes rowids 1, 2, … while the index keeps the rowids it was given.
/// Once a note was deleted, the search for a surviving note then finds
/// nothing, and the app's next note takes a rowid the index holds. The
/// backup cannot carry what D1's export leaves out, so it says so, names
/// the triggers and the fix, and records it; the restore's plan says it
/// again. Before any note is deleted, nothing is said.
#[test]
fn a_text_keyed_table_whose_triggers_keep_its_rowids_is_told_when_a_restore_renumbers_it() {
    let shape = "\
CREATE TABLE notes (slug TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE VIRTUAL TABLE notes_fts USING fts5(body);
CREATE TRIGGER notes_ai AFTER INSERT ON notes
BEGIN INSERT INTO notes_fts (rowid, body) VALUES (new.rowid, new.body); END;
CREATE TRIGGER notes_ad AFTER DELETE ON notes
BEGIN DELETE FROM notes_fts WHERE rowid = old.rowid; END;
";
    let told = "notes has no INTEGER PRIMARY KEY, so no export carries its rowids";
    let sb = sandbox_with_migration(shape);
    sb.execute_sql_with_wrangler(
        "INSERT INTO notes VALUES ('a', 'alpha'), ('b', 'beta'), ('c', 'gamma');",
    );
    let quiet = sb.xtask(&["backup", "local"]);
    quiet.assert_ok();
    assert!(!quiet.all().contains(told), "{}", quiet.all());
    let first = only_backup(&sb);
    assert!(manifest_for(&sb, &first).get("rowids_renumbered").is_none());

    sb.execute_sql_with_wrangler("DELETE FROM notes WHERE slug = 'b';");
    let run = sb.xtask(&["backup", "local", "-q"]);
    run.assert_ok();
    assert!(
        run.stderr.contains(told) && run.stderr.contains("notes_ad, notes_ai"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("Give notes an INTEGER PRIMARY KEY"),
        "{}",
        run.all()
    );
    let name = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && *f != first)
        .unwrap();
    assert_eq!(
        manifest_for(&sb, &name)["rowids_renumbered"],
        serde_json::json!({"notes": ["notes_ad", "notes_ai"]})
    );
    let file = sb.backups().join(&name);
    let target = target_with_migration(shape);
    let plan = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--dry-run",
    ]);
    plan.assert_ok();
    assert!(plan.stdout.contains("RENUMBERS"), "{}", plan.all());
    assert!(plan.all().contains(told), "{}", plan.all());
    let json = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--dry-run",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["plan"]["renumbered"],
        serde_json::json!({"notes": ["notes_ad", "notes_ai"]})
    );
}

/// rvAL: a table whose key column is named `rowid` (a TEXT key, as a
/// port from another database names it): `new.rowid` in its triggers is
/// that column, which every export carries. No row was deleted, yet every
/// backup warns that a restore renumbers it: `rowids_kept_by_triggers`
/// takes the column for the rowid, and backup's `count(*) =
/// coalesce(max(rowid), 0)` compares a count with text.
#[test]
fn a_table_whose_key_column_is_named_rowid_is_never_told_renumbered() {
    let sb = sandbox_with_migration(
        "CREATE TABLE notes (rowid TEXT PRIMARY KEY, body TEXT NOT NULL);\n\
         CREATE TABLE notes_log (note TEXT, at TEXT);\n\
         CREATE TRIGGER notes_ai AFTER INSERT ON notes \
         BEGIN INSERT INTO notes_log VALUES (new.rowid, 'now'); END;\n",
    );
    sb.execute_sql_with_wrangler("INSERT INTO notes VALUES ('a', 'alpha'), ('b', 'beta');");
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        !run.all().contains("so no export carries its rowids"),
        "a healthy backup warns of renumbered rowids:\n{}",
        run.all()
    );
    let name = only_backup(&sb);
    assert!(manifest_for(&sb, &name).get("rowids_renumbered").is_none());
}

/// rvAL: a migration that fails on SQLite's own constraint (a seed row
/// repeated under a UNIQUE name): wrangler prints `✘ [ERROR] Migration
/// 0005_shape.sql failed with the following errors:` and then `✘ [ERROR]
/// UNIQUE constraint failed: plans.name: SQLITE_CONSTRAINT`.
/// `gate::without_raise_messages` takes the message to run from the first
/// `[ERROR]` to the code, so the operator is told a trigger's RAISE
/// refused it, and neither the constraint nor the migration is named.
#[test]
fn a_migration_failing_on_a_unique_constraint_is_told_as_such() {
    let run = failed_migration(
        "",
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n\
         INSERT INTO plans (name) VALUES ('free'), ('free');\n",
        &["migrate", "local", "--yes"],
    );
    assert!(
        run.stderr.contains("UNIQUE constraint failed: plans.name")
            && !run.stderr.contains("a trigger's RAISE"),
        "{}",
        run.all()
    );
}

/// rvAL: an unnamed CHECK that a migration's row fails: SQLite names it by
/// its expression (`CHECK constraint failed: amount >= 0`), schema text.
/// `>` and `=` are not "names", so the failure is told as a trigger's
/// RAISE whose message is hidden.
#[test]
fn a_migration_failing_on_an_unnamed_check_is_told_as_such() {
    let run = failed_migration(
        "",
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount INTEGER CHECK (amount >= 0));\n\
         INSERT INTO prices (amount) VALUES (-1);\n",
        &["migrate", "local", "--yes", "-v"],
    );
    assert!(
        run.stderr.contains("CHECK constraint failed: amount >= 0")
            && !run.stderr.contains("a trigger's RAISE"),
        "{}",
        run.all()
    );
}

#[test]
fn a_backup_of_a_database_with_an_rtree_table_is_refused_naming_it_and_the_way_round() {
    // Local D1 creates R*Tree tables (wrangler's own export then refuses the
    // whole database). The backup was written, its own check failed, and it
    // said the manifest it had just written "cannot be trusted" (exit 2,
    // "fetch the backup again"); restore then found no backup and said to
    // take one: a loop with no way out.
    let sb = sandbox_with_migration(
        "CREATE VIRTUAL TABLE boxes USING rtree(id, min_x, max_x);\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY);\n",
    );
    sb.execute_sql("INSERT INTO boxes VALUES (1, 0.5, 2.5);\nINSERT INTO plain VALUES (1);");

    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("boxes") && all.contains("rtree") && all.contains("--table=NAME"),
        "{all}"
    );
    assert!(!all.contains("cannot be trusted"), "{all}");
    assert!(sql_backups(&sb).is_empty(), "{:?}", sb.backup_files());
    assert!(!all.contains("0.5") && !all.contains("2.5"), "{all}");

    // The way round it names: the other tables, by name, in the form that
    // takes a name starting with `-` too.
    sb.xtask(&["backup", "local", "--table=plain"]).assert_ok();
}

/// rvCM 1's class: with-backup's and migrate's backup of a database with
/// an R*Tree table was refused "Back up the other tables by name with
/// `--table=NAME`", a flag neither command has. A task's refusal names the
/// command that takes it, `cargo xtask backup local --table=NAME`, which
/// runs as printed (NAME a table's), and what lets the task run.
#[test]
fn a_tasks_backup_refused_for_an_rtree_table_names_no_flag_the_task_lacks() {
    let sb = sandbox_with_migration(
        "CREATE VIRTUAL TABLE boxes USING rtree(id, min_x, max_x);\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY);\n",
    );
    sb.execute_sql("INSERT INTO boxes VALUES (1, 0.5, 2.5);\nINSERT INTO plain VALUES (1);");
    let run = sb.xtask(&["with-backup", "local", "--", "true"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let all = run.all();
    assert!(all.contains("boxes"), "{all}");
    let quoted: Vec<&str> = all.split('`').skip(1).step_by(2).collect();
    assert!(
        !quoted.iter().any(|q| q.starts_with("--table")),
        "a bare --table, which with-backup lacks:\n{all}"
    );
    let advised = { quoted.iter() }
        .find(|q| q.starts_with("cargo xtask backup local --table=NAME"))
        .unwrap_or_else(|| panic!("{all}"));
    let words: Vec<String> = { advised.split_whitespace().skip(2) }
        .map(|w| w.replace("NAME", "plain"))
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    sb.xtask(&words).assert_ok();
}

/// SQLite takes a module's name as any name: quoted (`USING "fts5"`), in
/// any case, after a line break (a migration formatted by a tool). Such an
/// FTS5 table is FTS5: its backup is not refused as "another module", and
/// it comes back searchable.
#[test]
fn an_fts5_table_declared_with_a_quoted_or_wrapped_module_name_backs_up_and_restores() {
    for shape in [
        "CREATE VIRTUAL TABLE notes_fts USING \"fts5\"(title, body);\n",
        "CREATE VIRTUAL TABLE notes_fts using FTS5(title, body);\n",
        "CREATE VIRTUAL TABLE notes_fts USING\n  fts5(title, body);\n",
        "CREATE VIRTUAL TABLE notes_fts\nUSING fts5(title, body);\n",
    ] {
        let sb = sandbox_with_migration(shape);
        sb.execute_sql_with_wrangler("INSERT INTO notes_fts VALUES ('hello', 'running');");
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        assert!(
            !run.all().contains("another module") && !run.all().contains("module this tool"),
            "{shape}: {}",
            run.all()
        );
        restore_replacing(&sb, "latest:local").assert_ok();
        let rows = sb.query("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'running'");
        assert_eq!(rows[0].len(), 1, "{shape}: the row is found again");
    }
}

/// MX 2: a whole REAL beyond 2^63 (1e20, 9.3e18) is written in full, as
/// wrangler would, and loads back as the same REAL: neither the backup,
/// its verification nor its restore says it was rounded.
#[test]
fn whole_reals_beyond_2_63_in_a_native_backup_are_not_called_rounded() {
    let sb = sandbox_with_migration("CREATE TABLE m (id INTEGER PRIMARY KEY, x, b BLOB);\n");
    sb.execute_sql("INSERT INTO m VALUES (1, 1e20, 9.3e18), (2, -1e20, 9.3e18);");

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let verify = sb.xtask(&["verify", "latest:local"]);
    verify.assert_ok();
    let restore = restore_replacing(&sb, "latest:local");
    restore.assert_ok();
    for run in [&backup, &verify, &restore] {
        let all = run.all();
        assert!(!all.contains("rounded"), "{all}");
        assert!(!all.contains("outside the 64 bits"), "{all}");
    }
    let rows = sb.query("SELECT typeof(x) AS t, x = 1e20 AS same FROM m WHERE id = 1");
    assert_eq!(rows[0][0]["t"], "real");
    assert_eq!(rows[0][0]["same"], 1);
}
