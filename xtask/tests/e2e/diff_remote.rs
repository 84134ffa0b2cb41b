//! `cargo xtask diff` with a live remote side: the real wrangler exports
//! prod from the loopback D1 API, and a failure injected in that export
//! leaves nothing behind.

use crate::common;

use common::remote::Remote;
use common::*;

/// Every file in backups/ with its bytes.
fn snapshot(sb: &Sandbox) -> Vec<(String, Vec<u8>)> {
    sb.backup_files()
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(sb.backups().join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

#[test]
fn a_backup_against_live_prod_reports_what_changed_and_a_failed_export_changes_nothing() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());

    // After the backup, prod changes: one customer edited, one added.
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.execute_batch(
        "UPDATE customers SET email = 'moved-away@example.net' WHERE id = 1;\n\
         INSERT INTO customers (company_id, qbt_customer_id, name, email) \
         VALUES (2, 'jc-77', 'Garage door', 'garage@example.com');",
    )
    .unwrap();
    drop(conn);
    let prod_before = std::fs::read(&remote.db).unwrap();
    let kept = snapshot(&remote.sb);
    let exports = |r: &Remote| {
        r.server
            .requests()
            .iter()
            .filter(|q| q.contains("/export"))
            .count()
    };
    let exports_before = exports(&remote);

    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod"]);
    assert_eq!(run.code, Some(1), "differences exit 1:\n{}", run.all());
    assert!(
        exports(&remote) > exports_before,
        "live:prod was not exported"
    );
    let out = &run.stdout;
    assert!(out.contains("customers"), "{out}");
    assert!(
        out.contains("1 added") && out.contains("1 changed"),
        "the report says what changed:\n{out}"
    );
    for value in [
        "moved-away@example.net",
        "garage@example.com",
        "h@example.com",
    ] {
        assert!(!run.all().contains(value), "a value was printed: {value}");
    }
    // Read-only: no backup recorded, no file left, prod untouched.
    assert_eq!(snapshot(&remote.sb), kept);
    assert_eq!(std::fs::read(&remote.db).unwrap(), prod_before);
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    // The export fails part-way: the diff could not run, and nothing changed.
    remote.server.set_faults(d1_loopback::Faults {
        export_api_error: Some("D1 could not start the export".into()),
        ..Default::default()
    });
    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod"]);
    assert_eq!(
        run.code,
        Some(2),
        "a failed export is could-not-run:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("D1 could not start the export"),
        "{}",
        run.all()
    );
    assert_eq!(snapshot(&remote.sb), kept);
    assert_eq!(std::fs::read(&remote.db).unwrap(), prod_before);
}
