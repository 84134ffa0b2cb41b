//! Schemas as the ORMs and tools real D1 apps use write them (Drizzle,
//! Prisma), applied by the real wrangler as migrations, with the rows such
//! apps hold: every road (backup, verify, restore, diff) must take them as
//! D1 does, or say plainly what it cannot (atkAG).

use crate::common;

use common::*;

/// A sandbox whose migrations end with `extra` (file name, text), in
/// order, applied by the real wrangler.
fn sandbox_with_migrations(extra: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    for (name, sql) in extra {
        std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    }
    sb.apply_migrations();
    sb
}

/// drizzle-kit's own bookkeeping table for SQLite, as drizzle-orm's
/// migrator creates it: `id SERIAL PRIMARY KEY` is not a rowid alias in
/// SQLite, so every row it inserts (without an id) has a NULL key.
const DRIZZLE: &str = "CREATE TABLE `projects` (\n\
     \t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n\
     \t`slug` text NOT NULL,\n\
     \t`meta` text DEFAULT '{}' NOT NULL,\n\
     \t`created_at` integer DEFAULT (unixepoch()) NOT NULL\n\
     );\n\
     --> statement-breakpoint\n\
     CREATE UNIQUE INDEX `projects_slug_unique` ON `projects` (`slug`);--> statement-breakpoint\n\
     CREATE TABLE IF NOT EXISTS `__drizzle_migrations` (\n\
     \tid SERIAL PRIMARY KEY,\n\
     \thash text NOT NULL,\n\
     \tcreated_at numeric\n\
     );\n";

#[test]
fn a_diff_counts_a_row_drizzle_adds_to_its_migrations_table_as_one_row_added() {
    // Legal in SQLite and in D1: a PRIMARY KEY column that is not INTEGER
    // may hold NULL, and drizzle's `__drizzle_migrations` rows all do.
    // diff matches rows by `y.id IS x.id`, so every NULL key matches every
    // other: one row drizzle added after the backup reads as "0 added,
    // 0 removed, 4 changed" in a table of 3 rows, each "changed id=NULL".
    let sb = sandbox_with_migrations(&[("0005_drizzle.sql", DRIZZLE)]);
    sb.execute_sql(
        "INSERT INTO `projects` (`slug`, `meta`, `created_at`) VALUES ('alpha', '{\"a\":\"b\\\"c\"}', 1732000000);\n\
         INSERT INTO `__drizzle_migrations` (hash, created_at) VALUES \
         ('f1e2d3c4b5a69788', 1732000000123), ('a9b8c7d6e5f40011', 1732000000456);",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    // The app's next `drizzle-kit migrate` records one more.
    sb.execute_sql(
        "INSERT INTO `__drizzle_migrations` (hash, created_at) VALUES ('0badc0ffee001122', 1732000000789);",
    );

    let run = sb.xtask(&["diff", "latest:local", "live:local", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let table = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "__drizzle_migrations")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(table["rows"], serde_json::json!({"a": 2, "b": 3}));
    let counts = (
        &table["added"]["count"],
        &table["removed"]["count"],
        &table["changed"]["count"],
    );
    assert_eq!(
        counts,
        (&1.into(), &0.into(), &0.into()),
        "one row added and nothing else: {table:#}"
    );
}

/// `prisma migrate diff` for a User and its Posts: a required relation is
/// `ON DELETE RESTRICT ON UPDATE CASCADE`, Prisma's default.
const PRISMA_INIT: &str = "-- CreateTable\n\
     CREATE TABLE \"User\" (\n\
     \x20   \"id\" TEXT NOT NULL PRIMARY KEY,\n\
     \x20   \"email\" TEXT NOT NULL,\n\
     \x20   \"name\" TEXT,\n\
     \x20   \"createdAt\" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n\
     \x20   \"updatedAt\" DATETIME NOT NULL\n\
     );\n\
     \n\
     -- CreateTable\n\
     CREATE TABLE \"Post\" (\n\
     \x20   \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n\
     \x20   \"title\" TEXT NOT NULL,\n\
     \x20   \"published\" BOOLEAN NOT NULL DEFAULT false,\n\
     \x20   \"authorId\" TEXT NOT NULL,\n\
     \x20   CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\" (\"id\") ON DELETE RESTRICT ON UPDATE CASCADE\n\
     );\n\
     \n\
     -- CreateIndex\n\
     CREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n";

/// Prisma's "RedefineTables" migration for a new column on Post, as
/// `prisma migrate diff` writes it for SQLite: it ends by turning
/// `defer_foreign_keys` off.
const PRISMA_REDEFINE: &str = "-- RedefineTables\n\
     PRAGMA defer_foreign_keys=ON;\n\
     PRAGMA foreign_keys=OFF;\n\
     CREATE TABLE \"new_Post\" (\n\
     \x20   \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n\
     \x20   \"title\" TEXT NOT NULL,\n\
     \x20   \"published\" BOOLEAN NOT NULL DEFAULT false,\n\
     \x20   \"viewCount\" INTEGER NOT NULL DEFAULT 0,\n\
     \x20   \"authorId\" TEXT NOT NULL,\n\
     \x20   CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\" (\"id\") ON DELETE RESTRICT ON UPDATE CASCADE\n\
     );\n\
     INSERT INTO \"new_Post\" (\"authorId\", \"id\", \"published\", \"title\") SELECT \"authorId\", \"id\", \"published\", \"title\" FROM \"Post\";\n\
     DROP TABLE \"Post\";\n\
     ALTER TABLE \"new_Post\" RENAME TO \"Post\";\n\
     PRAGMA foreign_keys=ON;\n\
     PRAGMA defer_foreign_keys=OFF;\n";

const PRISMA_ROWS: &str = "INSERT INTO \"User\" VALUES \
     ('clx1a2b3c0000abcd', 'ana@example.com', 'Ana María 🇪🇸', '2026-11-01 10:00:00', '2026-11-02 11:00:00.123'),\
     ('clx1a2b3c0001abcd', 'li@example.com', NULL, 1730000000000, 1730000000000);\n\
     INSERT INTO \"Post\" (\"id\", \"title\", \"published\", \"authorId\") VALUES \
     (1, 'Hello ✍️', 1, 'clx1a2b3c0000abcd'), (2, '', 0, 'clx1a2b3c0001abcd');\n";

const PRISMA_PROBE: &str = "SELECT u.id, u.email, u.name, typeof(u.createdAt) AS t, p.id AS post, \
     p.title FROM \"User\" u JOIN \"Post\" p ON p.authorId = u.id ORDER BY p.id";

#[test]
fn a_clean_restore_of_a_prisma_schemas_data_only_backup_brings_its_rows_back() {
    // The runbook's brand-new-database path, for the schema every Prisma
    // app on D1 has. verify calls the data-only backup GOOD; the restore
    // then refuses it before anything runs: "repaired statement 6 (DELETE
    // FROM "User";) is refused: it reads Post in a query". The preflight
    // judges the emptying DELETE on a connection whose foreign keys are no
    // longer deferred, where SQLite makes `ON DELETE RESTRICT` a query of
    // the child table. So does `--clean` of a full backup, and of a hand
    // `wrangler d1 export --no-schema`.
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", PRISMA_INIT)]);
    sb.execute_sql(PRISMA_ROWS);
    let before = sb.query(PRISMA_PROBE);
    assert_eq!(before[0].len(), 2);
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let file = sb.backups().join(only_backup(&sb));

    let target = Sandbox::new();
    std::fs::write(
        target.path().join("migrations/0005_prisma_init.sql"),
        PRISMA_INIT,
    )
    .unwrap();
    let restore = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--yes",
    ]);
    restore.assert_ok();
    assert_eq!(target.query(PRISMA_PROBE), before);
}

#[test]
fn a_data_only_backup_of_a_table_prisma_redefined_is_good() {
    // verify loads a data-only backup into its migrations' schema in one
    // transaction, and skips the dump's own `PRAGMA defer_foreign_keys`;
    // Prisma's redefine migration has just turned deferral off there, so
    // `DELETE FROM "User"` is a query of Post and the gate refuses it:
    // every data-only backup of such a database is BAD ("statements: ...
    // refused by the SQL gate: it reads Post in a query"), never `latest`.
    let sb = sandbox_with_migrations(&[
        ("0005_prisma_init.sql", PRISMA_INIT),
        ("0006_prisma_redefine.sql", PRISMA_REDEFINE),
    ]);
    sb.execute_sql(PRISMA_ROWS);

    let backup = sb.xtask(&["backup", "local", "--data-only"]);
    backup.assert_ok();
    let name = only_backup(&sb);
    assert_eq!(
        manifest_for(&sb, &name)["verification"]["outcome"],
        "good",
        "{}",
        backup.all()
    );
}

#[test]
fn a_migration_that_empties_a_table_says_so_when_migrate_applies_it() {
    // Prisma's RedefineTables turns foreign keys off around `DROP TABLE
    // "Post"`; D1 enforces them whatever a migration says, so the drop
    // deletes every Post first and `ON DELETE CASCADE` takes every Comment
    // with it. migrate took its backup, applied the migration and said
    // only "Applied 1 migration": the comments are gone and nothing names
    // Comment (only a `diff` against the pre-migration backup shows it).
    let init = PRISMA_INIT.to_owned()
        + "\n-- CreateTable\n\
           CREATE TABLE \"Comment\" (\n\
           \x20   \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n\
           \x20   \"body\" TEXT NOT NULL,\n\
           \x20   \"postId\" INTEGER NOT NULL,\n\
           \x20   CONSTRAINT \"Comment_postId_fkey\" FOREIGN KEY (\"postId\") REFERENCES \"Post\" (\"id\") ON DELETE CASCADE ON UPDATE CASCADE\n\
           );\n";
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", &init)]);
    sb.execute_sql(
        &(PRISMA_ROWS.to_owned()
            + "INSERT INTO \"Comment\" (\"body\", \"postId\") VALUES ('{\"md\":\"**bold**\\t\\\"q\\\"\"}', 1), ('Nice 👍', 2);\n"),
    );
    std::fs::write(
        sb.path().join("migrations/0006_prisma_redefine.sql"),
        PRISMA_REDEFINE,
    )
    .unwrap();

    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    let left = sb.query("SELECT count(*) AS n FROM \"Comment\"");
    assert_eq!(
        left[0][0]["n"], 0,
        "D1 cascades the drop, as it does remotely"
    );
    assert!(
        run.stderr.contains("Comment"),
        "the migration emptied Comment (2 rows before, 0 after) and migrate did not say so:\n{}",
        run.all()
    );
}

#[test]
fn a_migration_whose_drop_cascades_to_some_rows_of_a_table_warns_of_it() {
    // rvAG: an optional relation (`postId` may be NULL) with `onDelete:
    // Cascade`: Prisma's redefinition of Post drops it, and D1 deletes
    // every Comment of a post. The comment without a post stays, so
    // Comment is not emptied (3 -> 1 rows): `say_rows_lost` only says it
    // on stdout, among "rows the app deleted meanwhile", with no warning,
    // and with -q says nothing at all. The cascade is the same one that
    // warns when it takes every row.
    let init = PRISMA_INIT.to_owned()
        + "\n-- CreateTable\n\
           CREATE TABLE \"Comment\" (\n\
           \x20   \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n\
           \x20   \"body\" TEXT NOT NULL,\n\
           \x20   \"postId\" INTEGER,\n\
           \x20   CONSTRAINT \"Comment_postId_fkey\" FOREIGN KEY (\"postId\") REFERENCES \"Post\" (\"id\") ON DELETE CASCADE ON UPDATE CASCADE\n\
           );\n";
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", &init)]);
    sb.execute_sql(
        &(PRISMA_ROWS.to_owned()
            + "INSERT INTO \"Comment\" (\"body\", \"postId\") VALUES ('first', 1), ('second', 2), \
               ('site-wide notice', NULL);\n"),
    );
    std::fs::write(
        sb.path().join("migrations/0006_prisma_redefine.sql"),
        PRISMA_REDEFINE,
    )
    .unwrap();

    let run = sb.xtask(&["migrate", "local", "--yes", "-q"]);
    run.assert_ok();
    let left = sb.query("SELECT count(*) AS n FROM \"Comment\"");
    assert_eq!(
        left[0][0]["n"], 1,
        "D1 cascades the drop to both comments of a post"
    );
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("Comment"),
        "the migration's drop deleted 2 of Comment's 3 rows, and migrate did not warn:\n{}",
        run.all()
    );
}

/// Prisma's RedefineTables for a new column on User, whose Posts refer to
/// it by an optional relation with `onDelete: SetNull`.
const PRISMA_SET_NULL_INIT: &str = "-- CreateTable\n\
     CREATE TABLE \"User\" (\n\
     \x20   \"id\" TEXT NOT NULL PRIMARY KEY,\n\
     \x20   \"email\" TEXT NOT NULL\n\
     );\n\
     -- CreateTable\n\
     CREATE TABLE \"Post\" (\n\
     \x20   \"id\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n\
     \x20   \"title\" TEXT NOT NULL,\n\
     \x20   \"authorId\" TEXT,\n\
     \x20   CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\" (\"id\") ON DELETE SET NULL ON UPDATE CASCADE\n\
     );\n";

const PRISMA_REDEFINE_USER: &str = "-- RedefineTables\n\
     PRAGMA defer_foreign_keys=ON;\n\
     PRAGMA foreign_keys=OFF;\n\
     CREATE TABLE \"new_User\" (\n\
     \x20   \"id\" TEXT NOT NULL PRIMARY KEY,\n\
     \x20   \"email\" TEXT NOT NULL,\n\
     \x20   \"name\" TEXT NOT NULL DEFAULT ''\n\
     );\n\
     INSERT INTO \"new_User\" (\"email\", \"id\") SELECT \"email\", \"id\" FROM \"User\";\n\
     DROP TABLE \"User\";\n\
     ALTER TABLE \"new_User\" RENAME TO \"User\";\n\
     PRAGMA foreign_keys=ON;\n\
     PRAGMA defer_foreign_keys=OFF;\n";

/// A sandbox on PRISMA_SET_NULL_INIT, with a table the app made itself
/// (`app_settings`) and two posts by one user.
fn set_null_sandbox() -> Sandbox {
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", PRISMA_SET_NULL_INIT)]);
    sb.execute_sql(
        "CREATE TABLE \"app_settings\" (\"k\" TEXT NOT NULL PRIMARY KEY, \"v\" TEXT);\n\
         INSERT INTO \"User\" VALUES ('u1', 'ana@example.com');\n\
         INSERT INTO \"Post\" (\"title\", \"authorId\") VALUES ('Hello', 'u1'), ('Again', 'u1');\n",
    );
    sb
}

/// The plan's line for PRISMA_REDEFINE_USER as `migration`.
fn set_null_line(migration: &str) -> String {
    format!(
        "CHANGES      {migration}: DROP TABLE User also sets Post.authorId through a foreign \
         key's action"
    )
}

#[test]
fn a_migration_whose_drop_sets_a_relation_to_null_is_told_in_the_plan_before_it_runs() {
    // rvAG: D1 runs the ON DELETE SET NULL action of Post's key when the
    // redefinition drops User: every post loses its author. No row count
    // changes, so only the plan can tell it, before anything is applied.
    let sb = set_null_sandbox();
    std::fs::write(
        sb.path().join("migrations/0006_prisma_redefine_user.sql"),
        PRISMA_REDEFINE_USER,
    )
    .unwrap();
    let authors = "SELECT count(*) AS n FROM \"Post\" WHERE \"authorId\" IS NOT NULL";

    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&set_null_line("0006_prisma_redefine_user.sql")),
        "{}",
        dry.all()
    );
    assert!(dry.stderr.contains("warning"), "{}", dry.all());
    assert_eq!(sb.query(authors)[0][0]["n"], 2, "a dry run changes nothing");

    let json = sb.xtask(&["migrate", "local", "--dry-run", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.all()));
    assert_eq!(
        json["plan"]["foreign_key_actions"],
        serde_json::json!([{
            "migration": "0006_prisma_redefine_user.sql", "statement": "DROP TABLE",
            "table": "User", "changes": "Post", "deletes_rows": false,
            "sets_columns": ["authorId"],
        }])
    );

    // Even with -q, the warning comes before the migration is applied; and
    // what it foretold is what D1 does.
    let run = sb.xtask(&["migrate", "local", "--yes", "-q"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("Post.authorId"),
        "{}",
        run.all()
    );
    assert_eq!(
        sb.query(authors)[0][0]["n"],
        0,
        "D1 set every author to NULL"
    );
}

#[test]
fn a_redefinition_whose_references_restrict_tells_no_foreign_key_change() {
    // Prisma's default relation (ON DELETE RESTRICT) has no action: its
    // redefinition changes no other table, and the plan says nothing of it.
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", PRISMA_INIT)]);
    std::fs::write(
        sb.path().join("migrations/0006_prisma_redefine.sql"),
        PRISMA_REDEFINE,
    )
    .unwrap();
    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("0006_prisma_redefine.sql"),
        "{}",
        dry.all()
    );
    assert!(!dry.stdout.contains("CHANGES"), "{}", dry.all());
    assert!(!dry.stderr.contains("warning"), "{}", dry.all());
}

#[test]
fn a_later_migration_on_a_table_made_outside_migrations_does_not_hide_a_set_null() {
    // rvAH: the app made `app_settings` itself (the console, a script), as
    // many do; a pending seed into it runs in D1 but not in memory, where
    // only the migrations' schema is. That one failure throws away what
    // the run found before it: the plan says `CHANGES  not known: …` of
    // 0007 and nothing of 0006, whose drop sets every Post.authorId to NULL;
    // no warning, and with -q not a word.
    let sb = set_null_sandbox();
    let migrations = sb.path().join("migrations");
    std::fs::write(
        migrations.join("0006_prisma_redefine_user.sql"),
        PRISMA_REDEFINE_USER,
    )
    .unwrap();
    std::fs::write(
        migrations.join("0007_default_theme.sql"),
        "INSERT INTO \"app_settings\" (\"k\", \"v\") VALUES ('theme', 'dark');\n",
    )
    .unwrap();
    let authors = "SELECT count(*) AS n FROM \"Post\" WHERE \"authorId\" IS NOT NULL";

    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&set_null_line("0006_prisma_redefine_user.sql")),
        "a later migration that does not run in memory hides 0006's SET NULL:\n{}",
        dry.all()
    );

    let run = sb.xtask(&["migrate", "local", "--yes", "-q"]);
    run.assert_ok();
    assert_eq!(
        sb.query(authors)[0][0]["n"],
        0,
        "D1 set every author to NULL"
    );
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("Post.authorId"),
        "every post lost its author, and migrate -q said nothing:\n{}",
        run.all()
    );
}

#[test]
fn an_applied_seed_into_a_table_made_outside_migrations_does_not_blind_every_later_plan() {
    // rvAH: once a migration that writes a table the app made itself is
    // applied, the applied migrations never run in memory again, so every
    // later plan of that database says `CHANGES  not known` and warns of
    // nothing: here, a Prisma redefinition that sets every Post.authorId
    // to NULL.
    let sb = set_null_sandbox();
    let migrations = sb.path().join("migrations");
    std::fs::write(
        migrations.join("0006_default_theme.sql"),
        "INSERT INTO \"app_settings\" (\"k\", \"v\") VALUES ('theme', 'dark');\n",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    std::fs::write(
        migrations.join("0007_prisma_redefine_user.sql"),
        PRISMA_REDEFINE_USER,
    )
    .unwrap();

    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&set_null_line("0007_prisma_redefine_user.sql"))
            && dry.stderr.contains("warning"),
        "an applied migration that does not run in memory blinds the plan for good:\n{}",
        dry.all()
    );
}

#[test]
fn a_table_is_chosen_by_its_name_in_any_case_as_sqlite_reads_it() {
    // Prisma names its tables `User` and `Post`; SQLite takes `post` for
    // `Post`, and so does `--table`, in backup and in diff. The backup
    // records the tables as the database spells them, with Post's
    // AUTOINCREMENT counter.
    let sb = sandbox_with_migrations(&[("0005_prisma_init.sql", PRISMA_INIT)]);
    sb.execute_sql(PRISMA_ROWS);
    let before = sb.query(PRISMA_PROBE);
    let run = sb.xtask(&["backup", "local", "--table", "post", "--table", "user"]);
    run.assert_ok();
    let name = only_backup(&sb);
    let file = sb.backups().join(&name);
    let manifest = manifest_for(&sb, &name);
    assert_eq!(
        manifest["tables"],
        serde_json::json!(["Post", "User"]),
        "{manifest}"
    );
    assert_eq!(manifest["rows"]["Post"], 2, "{manifest}");
    assert_eq!(manifest["sequences"]["Post"], 2, "{manifest}");

    let diff = sb.xtask(&[
        "diff",
        file.to_str().unwrap(),
        "live:local",
        "--table",
        "POST",
    ]);
    assert_eq!(diff.code, Some(0), "{}", diff.all());
    assert!(diff.stdout.contains("Result: the same"), "{}", diff.all());

    sb.execute_sql("DELETE FROM \"Post\"; DELETE FROM \"User\";");
    let restore = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--partial",
        "--yes",
    ]);
    restore.assert_ok();
    assert_eq!(sb.query(PRISMA_PROBE), before);
}
