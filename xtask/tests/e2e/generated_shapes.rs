//! Shapes found by generating many schemas and data sets D1 accepts (STRICT
//! and WITHOUT ROWID tables, generated columns, every affinity and storage
//! class, odd identifiers, AUTOINCREMENT gaps, foreign-key cycles, triggers,
//! 100-column and 200+-table databases), applying them with the real
//! wrangler, and round-tripping each through backup, verify, diff and
//! restore (atkBP's report). Each test here failed when it was written.

use crate::common;

use common::*;

/// The REAL values of `table.column` in the local D1, read from its SQLite
/// file as the app's SQLite holds them (rowid order).
fn reals(sb: &Sandbox, table: &str, column: &str) -> Vec<f64> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.local_d1_file(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT {column} FROM {table} ORDER BY rowid"))
        .unwrap();
    stmt.query_map([], |r| r.get::<_, f64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The user stored `-0.0` in columns that keep the type they are given (no
/// declared type, BLOB, a STRICT table's ANY), as `DEFAULT -0.0` or an
/// INSERT does, took `backup local` (GOOD), and restored it, into the same
/// database and into a new one: every value came back as `+0.0`, a
/// different double (`atan2(v, -1)` gives pi instead of -pi, a Worker sees
/// `0` instead of `-0`), while verify, the restore's content check and
/// `diff BACKUP live:local` all said the data was the same. It should come
/// back with its sign, as every other REAL does. Cause: `d1-dump`'s
/// `write_cell` writes a REAL through `js_cell_number`, which prints -0 as
/// JavaScript does, `0`, and then adds `.0` to keep it REAL; it never writes
/// the sign. The digest (`d1_core::digest::canonical`, by bits) would see
/// the difference, but it is computed from the dump, not from the source.
#[test]
fn negative_zero_in_a_column_that_keeps_its_type_backs_up_and_restores_with_its_sign() {
    let shape = "CREATE TABLE zeros (id INTEGER PRIMARY KEY, v, b BLOB, d DEFAULT -0.0);\n\
                 CREATE TABLE strict_zeros (id INTEGER PRIMARY KEY, a ANY) STRICT;\n";
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations/0005_shape.sql"), shape).unwrap();
    sb.apply_migrations();
    sb.execute_sql(
        "INSERT INTO zeros (id, v, b) VALUES (1, -0.0, -0.0), (2, 0.0, 0.0);\n\
         INSERT INTO strict_zeros VALUES (1, -0.0);",
    );
    let signs = |sb: &Sandbox| {
        let mut all = Vec::new();
        for (t, c) in [
            ("zeros", "v"),
            ("zeros", "b"),
            ("zeros", "d"),
            ("strict_zeros", "a"),
        ] {
            all.extend(reals(sb, t, c).iter().map(|x| (t, c, x.is_sign_negative())));
        }
        all
    };
    let before = signs(&sb);
    assert!(before.iter().any(|(_, _, neg)| *neg), "setup: {before:?}");

    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let path = sb.backups().join(&name);

    // Into the same database, after a change.
    sb.execute_sql("DELETE FROM strict_zeros;");
    restore_replacing(&sb, "latest:local").assert_ok();
    assert_eq!(
        signs(&sb),
        before,
        "restored in place: the sign of zero was lost"
    );

    // Into a brand-new local database of another checkout.
    let target = Sandbox::new();
    std::fs::write(target.path().join("migrations/0005_shape.sql"), shape).unwrap();
    target
        .xtask(&["restore", path.to_str().unwrap(), "--to", "local", "--yes"])
        .assert_ok();
    assert_eq!(
        signs(&target),
        before,
        "restored into a new database: the sign of zero was lost"
    );
}
