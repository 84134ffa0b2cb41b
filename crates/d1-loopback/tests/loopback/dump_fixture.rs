//! Holds the Rust dumper to the bytes the real wrangler writes.
//!
//! `fixtures/dump_expected.sql` is what `wrangler d1 export --local` (the
//! pinned 4.164.0, whose miniflare runs the original `dumpSql`) wrote after
//! `wrangler d1 execute --local --file fixtures/dump_source.sql`. The test
//! `local_wrangler_export_matches_fixture` in `wrangler_remote.rs` redoes
//! that with the real wrangler, so the fixture cannot go stale unnoticed.

use d1_dump::{DumpOptions, dump_sql};
use rusqlite::Connection;

const SOURCE: &str = include_str!("../fixtures/dump_source.sql");
const EXPECTED: &str = include_str!("../fixtures/dump_expected.sql");

#[test]
fn rust_dump_matches_wrangler_local_export_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("fixture.sqlite")).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    conn.execute_batch(SOURCE).unwrap();
    let dump = dump_sql(&conn, &DumpOptions::default()).unwrap();
    if dump != EXPECTED {
        let first_diff = dump.lines().zip(EXPECTED.lines()).find(|(a, b)| a != b);
        panic!(
            "dump differs from the fixture; first differing line: {first_diff:?}\n--- got ---\n{dump}"
        );
    }
}
