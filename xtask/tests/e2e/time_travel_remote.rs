//! `cargo xtask time-travel info|restore`, end to end: the real wrangler's
//! `d1 time-travel` commands against the loopback D1 API on 127.0.0.1,
//! which keeps every state of qbtime_db_prod since it started.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::remote::*;
use common::*;
use serde_json::Value;

const PROD: &str = "qbtime_db_prod";

/// Adds a company to a served database behind the server's back, as another
/// client would; the server notices the write at its next request.
fn add_company(db: &Path, name: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "INSERT INTO companies (name, timezone) VALUES (?1, 'UTC')",
        [name],
    )
    .unwrap();
}

fn companies(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.prepare("SELECT name FROM companies ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `time-travel info prod --json`'s bookmark, checking the rest of its JSON.
fn bookmark_now(remote: &Remote, home: &Path) -> String {
    let run = remote.xtask(home, &["time-travel", "info", "prod", "--json"]);
    run.assert_ok();
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "time-travel info --json printed no JSON ({e}):\n{}",
            run.all()
        )
    });
    assert_eq!(json["environment"], "prod", "{json}");
    assert_eq!(json["database"], PROD, "{json}");
    assert_eq!(json["at"], Value::Null, "{json}");
    json["bookmark"].as_str().unwrap().to_owned()
}

/// Adds "First Co" to prod, has the server notice it, and gives a time
/// (RFC 3339) 2.1 s after that and 2.1 s before the function returns: a
/// restore point between the first company and whatever a test does next,
/// apart from both by more than a clock's second.
fn a_time_after_the_first_company(remote: &Remote, home: &Path) -> String {
    add_company(&remote.db, "First Co");
    bookmark_now(remote, home);
    std::thread::sleep(Duration::from_millis(2100));
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(2100));
    at
}

/// Writes the migration `name` (a new column of companies) into the
/// sandbox's migrations and applies it to prod's database as wrangler
/// does, with its `d1_migrations` row: returns that row's `applied_at`.
fn apply_on_prod(remote: &Remote, name: &str) -> rusqlite::Result<String> {
    let sql = "ALTER TABLE companies ADD COLUMN notes TEXT;";
    std::fs::write(remote.sb.path().join("migrations").join(name), sql).unwrap();
    let conn = rusqlite::Connection::open(&remote.db)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(sql)?;
    conn.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [name])?;
    conn.query_row(
        "SELECT applied_at FROM d1_migrations WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
}

#[test]
fn a_migration_pending_before_a_time_travel_restore_too_is_told_as_pending() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Oops Co");
    // Written, never applied: the restore does not take it back.
    let waiting = "0005_company_notes.sql";
    std::fs::write(
        remote.sb.path().join("migrations").join(waiting),
        "ALTER TABLE companies ADD COLUMN notes TEXT;",
    )
    .unwrap();
    let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &before);
    run.assert_ok();
    assert!(
        run.stderr.contains(&format!(
            "warning: {PROD} has 1 migration pending after the restore (not applied before it \
             either): {waiting}. Apply it with `cargo xtask migrate prod --confirm {PROD}`"
        )),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("took back"), "{}", run.all());
}

/// `time-travel restore prod --at AT`, confirmed.
fn restore_prod_at(remote: &Remote, home: &Path, at: &str) -> Run {
    remote.xtask(
        home,
        &[
            "time-travel",
            "restore",
            "prod",
            "--at",
            at,
            "--confirm",
            PROD,
        ],
    )
}

/// The journal's lines, parsed.
fn journal(remote: &Remote) -> Vec<Value> {
    let path = remote.sb.backups().join("time-travel.jsonl");
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn time_travel_requests(remote: &Remote) -> Vec<String> {
    remote
        .server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/time_travel/"))
        .collect()
}

/// The `cargo xtask time-travel restore ...` line the restore printed to undo it.
#[track_caller]
fn undo_command(run: &Run) -> Vec<String> {
    let line = run
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo xtask time-travel restore "))
        .unwrap_or_else(|| panic!("no undo command printed:\n{}", run.all()));
    line.split_whitespace().skip(2).map(str::to_owned).collect()
}

#[test]
fn a_restore_to_a_bookmark_drops_later_writes_is_journaled_and_can_be_undone() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    add_company(&remote.db, "Kept Co");
    let before = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Oops Co");
    // A migration applied after the bookmark, as `migrate` would record it.
    let later = "0005_company_notes.sql";
    apply_on_prod(&remote, later).unwrap();

    let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &before);
    run.assert_ok();
    let names = companies(&remote.db);
    assert!(names.contains(&"Kept Co".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"Oops Co".to_owned()),
        "the write after the bookmark survived the restore: {names:?}\n{}",
        run.all()
    );
    assert!(run.stdout.contains(&before), "{}", run.stdout);
    // Its tables counted as a backup counts them: not sqlite_sequence.
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    let app_tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    assert!(
        run.stdout
            .contains(&format!("{PROD} answers: {app_tables} tables.")),
        "{}",
        run.stdout
    );
    // The migration went back with the database, and the restore says so.
    assert!(
        run.stderr.contains(&format!(
            "warning: {PROD} has 1 migration pending after the restore: {later}. The restore \
             took back 1 migration ({later}), applied after the time it went back to: if it \
             broke the database, fix or remove it in the migrations directory first, as `cargo \
             xtask migrate prod --confirm {PROD}` would apply it again as it is"
        )),
        "{}",
        run.all()
    );

    // The loopback restored once, to the bookmark asked for.
    let restores = remote.server.time_travel_restores();
    assert_eq!(restores.len(), 1, "{restores:?}");
    assert_eq!(restores[0].database_uuid, PROD_UUID);
    assert_eq!(restores[0].bookmark, before);
    let previous = restores[0].previous_bookmark.clone();
    assert_ne!(previous, before);

    // The journal is private and holds the way back.
    let path = remote.sb.backups().join("time-travel.jsonl");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the journal is mode {mode:o}");
    let lines = journal(&remote);
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["started", "done"], "{lines:#?}");
    for line in &lines {
        assert_eq!(line["restore_to"], before.as_str(), "{line}");
        assert_eq!(line["bookmark_before"], previous.as_str(), "{line}");
    }
    assert_eq!(lines[1]["previous_bookmark"], previous.as_str());

    // The undo command printed is the way back, and it works.
    let undo = undo_command(&run);
    assert_eq!(
        undo,
        [
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            previous.as_str(),
            "--confirm",
            PROD
        ]
    );
    let args: Vec<&str> = undo.iter().map(String::as_str).collect();
    let undone = remote.xtask(home.path(), &args);
    undone.assert_ok();
    assert!(
        !undone.stderr.contains("pending after the restore"),
        "{}",
        undone.all()
    );
    let names = companies(&remote.db);
    assert!(
        names.contains(&"Oops Co".to_owned()) && names.contains(&"Kept Co".to_owned()),
        "the undo did not bring the later write back: {names:?}"
    );
    assert_eq!(remote.server.time_travel_restores().len(), 2);
    assert_eq!(journal(&remote).len(), 4, "the undo is journaled too");
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );
}

#[test]
fn guards_refuse_before_anything_is_restored() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Newer Co");
    let restore = |extra: &[&str]| {
        let mut args = vec!["time-travel", "restore", "prod"];
        args.extend_from_slice(extra);
        remote.xtask(home.path(), &args)
    };

    // --yes is never enough for production.
    restore(&["--bookmark", &old, "--yes"]).assert_refused("--confirm qbtime_db_prod");
    // Nor is nothing, without a terminal to ask at.
    restore(&["--bookmark", &old]).assert_refused("--confirm qbtime_db_prod");
    // Naming another database is not confirming this one.
    restore(&["--bookmark", &old, "--confirm", "qbtime_db_staging"])
        .assert_refused("does not name the target database qbtime_db_prod");
    // A dry run prints the plan, with the way back, and stops.
    let run = restore(&["--bookmark", &old, "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("Time Travel restore plan"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(PROD), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("bookmark {old}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("now at"), "{}", run.stdout);
    assert!(
        run.stdout.contains("time-travel restore"),
        "the plan names the wrangler command: {}",
        run.stdout
    );
    assert!(run.stdout.contains("Dry run"), "{}", run.stdout);

    assert!(
        remote.server.time_travel_restores().is_empty(),
        "{:?}",
        remote.server.time_travel_restores()
    );
    assert!(
        !time_travel_requests(&remote)
            .iter()
            .any(|r| r.contains("/time_travel/restore")),
        "{:?}",
        remote.server.requests()
    );
    assert!(
        companies(&remote.db).contains(&"Newer Co".to_owned()),
        "prod changed"
    );
    assert!(journal(&remote).is_empty(), "nothing was started");

    // Malformed input is refused before wrangler asks D1 anything.
    let requests = remote.server.requests().len();
    restore(&["--bookmark", "nope", "--confirm", PROD]).assert_refused("not a D1 bookmark");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    restore(&["--at", &future, "--confirm", PROD]).assert_refused("in the future");
    let ancient = (chrono::Utc::now() - chrono::Duration::days(31)).to_rfc3339();
    restore(&["--at", &ancient, "--confirm", PROD]).assert_refused("more than 30 days");
    restore(&["--at", "yesterday", "--confirm", PROD]).assert_refused("not a time");
    remote
        .xtask(
            home.path(),
            &["time-travel", "info", "prod", "--at", &future],
        )
        .assert_refused("in the future");
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "a refused command reached D1: {:?}",
        &remote.server.requests()[requests..]
    );

    // Local D1 has no Time Travel.
    remote
        .xtask(home.path(), &["time-travel", "info", "local"])
        .assert_refused("no Time Travel");
    remote
        .xtask(
            home.path(),
            &[
                "time-travel",
                "restore",
                "local",
                "--bookmark",
                &old,
                "--yes",
            ],
        )
        .assert_refused("no Time Travel");
    assert!(remote.server.time_travel_restores().is_empty());
    assert!(companies(&remote.db).contains(&"Newer Co".to_owned()));
}

#[test]
fn a_restore_at_a_time_goes_back_to_the_state_at_that_time() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    add_company(&remote.db, "First Co");
    // The server notices the write here, so that state began before `at`.
    let first = bookmark_now(&remote, home.path());
    std::thread::sleep(Duration::from_millis(1500));
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(1500));
    add_company(&remote.db, "Second Co");

    // info --at names the state at that time.
    let run = remote.xtask(
        home.path(),
        &["time-travel", "info", "prod", "--at", &at, "--json"],
    );
    run.assert_ok();
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(json["bookmark"], first.as_str(), "{json}");
    assert_eq!(json["at"], at.as_str(), "{json}");

    let run = restore_prod_at(&remote, home.path(), &at);
    run.assert_ok();
    let names = companies(&remote.db);
    assert!(names.contains(&"First Co".to_owned()), "{names:?}");
    assert!(!names.contains(&"Second Co".to_owned()), "{names:?}");
    let restores = remote.server.time_travel_restores();
    assert_eq!(restores.len(), 1, "{restores:?}");
    assert_eq!(restores[0].bookmark, first);
    assert!(
        remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("/time_travel/bookmark?timestamp=")),
        "the time was turned into a bookmark by D1: {:?}",
        remote.server.requests()
    );
    assert!(
        run.stdout.contains(&at),
        "the plan names the time: {}",
        run.stdout
    );
}

#[test]
fn a_refused_restore_says_so_is_journaled_and_changes_nothing() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Still Here Co");
    let before = dump_of(&remote.db);
    // A clear refusal (a 4xx): D1 did not make the restore.
    remote.server.set_faults(d1_loopback::Faults {
        time_travel_restore_status: Some(400),
        ..Default::default()
    });

    let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &old);
    run.assert_refused("the Time Travel restore of qbtime_db_prod failed");
    assert!(
        !run.stdout.contains("To undo it"),
        "a failed restore offered an undo: {}",
        run.stdout
    );
    assert!(remote.server.time_travel_restores().is_empty());
    assert_eq!(dump_of(&remote.db), before, "prod changed");
    assert!(companies(&remote.db).contains(&"Still Here Co".to_owned()));

    let lines = journal(&remote);
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["started", "failed"], "{lines:#?}");
    assert_eq!(lines[1]["restore_to"], old.as_str());
    assert!(lines[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
}

/// atkAM: a Time Travel restore to a time before a migration un-applies it
/// (the schema and `d1_migrations` go back too), while the app deployed for
/// that migration keeps running against the old schema. The plan is what
/// the operator confirms, yet it says only "writes since then are gone":
/// the migration is named only after the restore, in a warning. With
/// `--at`, `d1_migrations.applied_at` says which migrations come after the
/// time; the plan (and `--dry-run`) should name what goes back with it.
/// The migration a test applies after its time.
const LATER: &str = "0005_company_notes.sql";

/// A remote with the migration `name` applied on prod as wrangler applies
/// it ([`apply_on_prod`]) after a time between writes
/// ([`a_time_after_the_first_company`]): the remote, the home and that time.
fn applied_after_a_time(name: &str) -> (Remote, tempfile::TempDir, String) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let at = a_time_after_the_first_company(&remote, home.path());
    apply_on_prod(&remote, name).unwrap();
    (remote, home, at)
}

#[test]
fn the_plan_names_the_migrations_a_restore_to_a_time_takes_back() {
    let (remote, home, at) = applied_after_a_time(LATER);
    let later = LATER;

    let run = remote.xtask(
        home.path(),
        &["time-travel", "restore", "prod", "--at", &at, "--dry-run"],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("Time Travel restore plan"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(later),
        "the plan does not say that {later}, applied after {at}, goes back with the restore:\n{}",
        run.all()
    );
    assert!(remote.server.time_travel_restores().is_empty());
}

/// atkAM: a SIGTERM sent to the xtask alone (`kill`, systemd, a CI
/// timeout) while wrangler's restore is under way does not stop wrangler,
/// which finishes the restore; but the xtask's check for the signal after
/// wrangler exits turns wrangler's success into an error, so the journal
/// records the restore as "failed", D1's `previous_bookmark` is never
/// recorded, and `status` reports "last Time Travel restore … (failed)"
/// for a database that was restored.
#[test]
fn a_restore_done_while_a_sigterm_came_is_not_journaled_as_failed() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Newer Co");
    // A slow API: the restore is done at once, its answer comes 3 s later.
    let child = slow_restore_to(&remote, home.path(), &old, "/time_travel/restore");
    let started = std::time::Instant::now();
    while !time_travel_requests(&remote)
        .iter()
        .any(|r| r.contains("/time_travel/restore"))
    {
        assert!(started.elapsed().as_secs() < 120, "no restore was sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    remote.server.set_faults(d1_loopback::Faults::default());
    // The premise: D1 restored the database.
    assert_eq!(remote.server.time_travel_restores().len(), 1, "{all}");
    assert!(
        !companies(&remote.db).contains(&"Newer Co".to_owned()),
        "{all}"
    );

    let lines = journal(&remote);
    let last = lines.last().unwrap_or_else(|| panic!("no journal:\n{all}"));
    assert_ne!(
        last["status"], "failed",
        "the journal records a restore D1 did as failed: {lines:#?}\n{all}"
    );
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        !status.stdout.contains("(failed)"),
        "status says the restore failed:\n{}",
        status.all()
    );
}

/// atkAS: an operator reads `applied_at` of the migration to undo
/// (`2026-11-24 09:30:00`, to the second, as D1 writes it) and goes back to
/// that time. The bookmark of `09:30:00.000` is the state before the
/// migration (applied some milliseconds into that second), so the restore
/// takes it back; but the plan's query asks for `applied_at >
/// '09:30:00'`, which leaves it out, and the plan (a dry run too) says
/// "takes back no migration".
#[test]
fn a_restore_to_the_second_a_migration_was_applied_names_it_in_the_plan() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    add_company(&remote.db, "First Co");
    bookmark_now(&remote, home.path());
    // The state before the migration began well before the second the
    // migration is applied in.
    std::thread::sleep(Duration::from_millis(2100));
    // Not on the second's first millisecond, so that its bookmark is the
    // state before.
    while chrono::Utc::now().timestamp_subsec_millis() < 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let later = "0005_company_notes.sql";
    let applied_at = apply_on_prod(&remote, later).unwrap();
    // The server notices the migration now, after its second began.
    bookmark_now(&remote, home.path());
    std::thread::sleep(Duration::from_millis(1100));
    let at = format!("{}Z", applied_at.replace(' ', "T"));

    let plan = remote.xtask(
        home.path(),
        &["time-travel", "restore", "prod", "--at", &at, "--dry-run"],
    );
    plan.assert_ok();
    assert!(remote.server.time_travel_restores().is_empty());

    let run = restore_prod_at(&remote, home.path(), &at);
    run.assert_ok();
    // The premise: the restore took the migration back.
    let names: Vec<String> = {
        let conn = rusqlite::Connection::open(&remote.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.prepare("SELECT name FROM d1_migrations")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(
        !names.contains(&later.to_owned()),
        "{names:?}\n{}",
        run.all()
    );
    assert!(run.stderr.contains(later), "{}", run.all());
    assert!(
        plan.stdout.contains(later),
        "the restore to {at} took back {later} (applied_at {applied_at}), but the plan said:\n{}",
        plan.all()
    );
}

/// atkBC: a Time Travel restore of prod killed (`kill -9`, a machine that
/// dies) while D1 works on it. The journal's last line stays `started`,
/// and `status`, read long after, says "last Time Travel restore …
/// (started)", as if it were still running: neither that the run is gone
/// and prod may or may not be back, nor the bookmark that undoes it (the
/// journal has it), which a SIGINT at the same point records
/// (`interrupted`, with `time-travel info` and the undo).
#[test]
fn status_after_a_killed_time_travel_restore_does_not_call_it_started() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Newer Co");
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(3000),
        response_delay_from: Some("/time_travel/restore".into()),
        ..Default::default()
    });
    let mut child = remote
        .xtask_command(
            home.path(),
            &[
                "time-travel",
                "restore",
                "prod",
                "--bookmark",
                &old,
                "--confirm",
                PROD,
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !time_travel_requests(&remote)
        .iter()
        .any(|r| r.contains("/time_travel/restore"))
    {
        assert!(started.elapsed().as_secs() < 120, "no restore was sent");
        assert!(child.try_wait().unwrap().is_none(), "it ended first");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Its wrangler, orphaned, gets D1's answer and ends.
    std::thread::sleep(Duration::from_millis(4000));
    remote.server.set_faults(d1_loopback::Faults::default());
    let lines = journal(&remote);
    let undo = lines.last().unwrap()["bookmark_before"]
        .as_str()
        .unwrap()
        .to_owned();

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    let line = status
        .stdout
        .lines()
        .find(|l| l.contains("last Time Travel restore"))
        .unwrap_or_else(|| panic!("{}", status.all()))
        .to_owned();
    assert!(
        !line.ends_with("(started)"),
        "status calls a Time Travel restore whose run was killed `started`, and gives no way \
         back ({undo}):\n{}",
        status.all()
    );
}

/// atkBE: the Time Travel journal is read by the environment's name, and
/// an environment's first database is renamed `prod.<database>` when a
/// second one is added (README, Offsite copies), as drills and offsite
/// copies already know. A Time Travel restore of qbtime_db_prod journaled
/// under `prod` the day before the second database was added is then
/// gone from `status`: "last Time Travel restore  none", and the
/// migrations line says "all applied as of that backup" although prod was
/// taken back after that backup (before the split it says the migrations
/// are unknown: a Time Travel restore came after it).
#[test]
fn status_still_names_a_time_travel_restore_of_prod_after_a_second_database_is_added() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Later Co");
    remote.backup_prod(home.path());
    remote
        .xtask(
            home.path(),
            &[
                "time-travel",
                "restore",
                "prod",
                "--bookmark",
                &before,
                "--confirm",
                PROD,
            ],
        )
        .assert_ok();
    let single = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        single
            .stdout
            .contains("a Time Travel restore came after that backup"),
        "{}",
        single.all()
    );

    let config = remote.sb.path().join("wrangler.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[env.production.d1_databases]]\nbinding = \"ANALYTICS\"\n\
         database_name = \"analytics_prod\"\n\
         database_id = \"9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7ca1\"\n\
         migrations_dir = \"migrations\"\n",
    );
    std::fs::write(&config, text).unwrap();

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    let block: String = status
        .stdout
        .split(&format!("prod.{PROD} ({PROD})"))
        .nth(1)
        .unwrap_or_else(|| panic!("no block for {PROD}:\n{}", status.all()))
        .split("prod.analytics_prod")
        .next()
        .unwrap()
        .to_owned();
    let line = block
        .lines()
        .find(|l| l.contains("last Time Travel restore"))
        .unwrap_or_else(|| panic!("{}", status.all()));
    assert!(
        !line.trim_end().ends_with("none"),
        "the Time Travel restore of {PROD} journaled under `prod` is forgotten once a second \
         database is added:\n{}",
        status.all()
    );
    assert!(
        block.contains("a Time Travel restore came after that backup"),
        "status says {PROD}'s migrations are known from a backup a Time Travel restore came \
         after:\n{}",
        status.all()
    );
}

/// atkCF: prod's short name changed (`vars.APP_ENV` prod -> live), the
/// database the same (same name, same id), as a team does when it renames
/// its environments. prod's backups stay live's (`status`, `latest:live`),
/// but a Time Travel restore of qbtime_db_prod journaled under `prod` the
/// day before is gone from `status --env live`: "last Time Travel restore
/// none", and its migrations line says they are known from the backup,
/// although the database was taken back after it. The restore itself, by
/// the new name, still needs the typed name and prints its undo.
#[test]
fn a_time_travel_restore_of_prod_is_still_told_after_prods_short_name_changed() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Later Co");
    remote.backup_prod(home.path());
    restore_prod_at_bookmark(&remote, home.path(), "prod", &before).assert_ok();

    remote.sb.rename_prod_to_live();

    let status = remote.xtask(home.path(), &["status", "--env", "live"]);
    let line = status
        .stdout
        .lines()
        .find(|l| l.contains("last Time Travel restore"))
        .unwrap_or_else(|| panic!("{}", status.all()));
    assert!(
        !line.trim_end().ends_with("none"),
        "the Time Travel restore of {PROD} journaled under `prod` is forgotten once prod is \
         called live:\n{}",
        status.all()
    );
    assert!(
        status
            .stdout
            .contains("a Time Travel restore came after that backup"),
        "status says {PROD}'s migrations are known from a backup a Time Travel restore came \
         after:\n{}",
        status.all()
    );

    // Under its new name it is still production: --yes is never enough,
    // and the restore prints the way back by the new name.
    let now = bookmark_now_of(&remote, home.path(), "live");
    let yes = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "live",
            "--bookmark",
            &now,
            "--yes",
        ],
    );
    yes.assert_refused(&format!("--confirm {PROD}"));
    let run = restore_prod_at_bookmark(&remote, home.path(), "live", &now);
    run.assert_ok();
    assert_eq!(undo_command(&run)[2], "live", "{}", run.all());
}

/// `time-travel restore ENV --bookmark B --confirm qbtime_db_prod`.
fn restore_prod_at_bookmark(remote: &Remote, home: &Path, env: &str, bookmark: &str) -> Run {
    remote.xtask(
        home,
        &[
            "time-travel",
            "restore",
            env,
            "--bookmark",
            bookmark,
            "--confirm",
            PROD,
        ],
    )
}

/// `time-travel restore prod --bookmark BOOKMARK`, confirmed, started
/// against an API that answers each request 3 s late from the first whose
/// `METHOD URL` contains `from` on (the test stops it there), its output
/// piped.
fn slow_restore_to(
    remote: &Remote,
    home: &Path,
    bookmark: &str,
    from: &str,
) -> std::process::Child {
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(3000),
        response_delay_from: Some(from.into()),
        ..Default::default()
    });
    remote
        .xtask_command(
            home,
            &[
                "time-travel",
                "restore",
                "prod",
                "--bookmark",
                bookmark,
                "--confirm",
                PROD,
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `time-travel info ENV --json`'s bookmark.
fn bookmark_now_of(remote: &Remote, home: &Path, env: &str) -> String {
    let run = remote.xtask(home, &["time-travel", "info", env, "--json"]);
    run.assert_ok();
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    json["bookmark"].as_str().unwrap().to_owned()
}

/// An interrupt while the restore reads which migrations are applied (the
/// read under the lock, just before D1 is asked to restore) stops it there:
/// nothing is journaled as started, and the operator is not told that the
/// database "may already be back" at the bookmark, with a restore to run
/// to undo what never happened.
#[test]
fn an_interrupt_while_reading_the_applied_migrations_stops_before_the_restore_starts() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Newer Co");
    let before = remote.server.requests().len();
    // A slow API: the interrupt comes while the read waits for its answer.
    let child = slow_restore_to(&remote, home.path(), &old, "/query");
    let started = std::time::Instant::now();
    // With a bookmark, the plan sends no query: the first is the read of
    // the applied migrations, under the lock.
    while !remote.server.requests()[before..]
        .iter()
        .any(|r| r.ends_with("/query"))
    {
        assert!(started.elapsed().as_secs() < 120, "no query was sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    remote.server.set_faults(d1_loopback::Faults::default());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(stderr.contains("interrupted by SIGINT"), "{all}");
    assert!(!stderr.contains("may already be back"), "{all}");
    assert!(journal(&remote).is_empty(), "nothing was started:\n{all}");
    assert!(remote.server.time_travel_restores().is_empty(), "{all}");
    assert!(
        companies(&remote.db).contains(&"Newer Co".to_owned()),
        "{all}"
    );
}

/// fxDU: a Time Travel journal padded past the 64 MiB its readers read
/// turned the warning of an unsettled earlier restore off without a word,
/// and a restore then ran, its journal lines written where no reader
/// would read them. The dry run says the journal cannot be read, naming
/// it and the fix; the restore is refused before D1 is asked anything,
/// and the journal is left as it was.
#[test]
fn a_journal_past_its_readers_limit_is_told_and_no_restore_runs_unjournaled() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = bookmark_now(&remote, home.path());
    let path = remote.sb.backups().join("time-travel.jsonl");
    std::fs::create_dir_all(remote.sb.backups()).unwrap();
    let line = serde_json::json!({
        "at": chrono::Utc::now().to_rfc3339(),
        "started_at": chrono::Utc::now().to_rfc3339(),
        "environment": "prod",
        "database": PROD,
        "database_id": PROD_UUID,
        "status": "started",
        "restore_to": before,
        "bookmark_before": before,
    });
    let mut text = format!("{line}\n").into_bytes();
    text.resize((64 << 20) + 10, b' ');
    text.push(b'\n');
    std::fs::write(&path, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &before,
            "--dry-run",
        ],
    );
    assert!(
        dry.stderr.contains("time-travel.jsonl")
            && dry.stderr.contains("larger than 64 MiB")
            && dry.stderr.contains("move it aside"),
        "the dry run does not say the journal could not be read:\n{}",
        dry.all()
    );
    let requests = time_travel_requests(&remote).len();
    let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &before);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("time-travel.jsonl") && run.stderr.contains("move it aside"),
        "{}",
        run.all()
    );
    assert!(
        !time_travel_requests(&remote)[requests..]
            .iter()
            .any(|r| r.contains("/time_travel/restore")),
        "a restore ran that its journal could not record:\n{}",
        run.all()
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        text,
        "the journal was changed"
    );
}

/// rvDW: a Time Travel restore of prod killed while D1 worked on it (its
/// journal line stays `started`), and prod renamed `live` since. `status`
/// still tells it by the database id the journal records; the next
/// restore of that database, run as `live`, did not warn of it nor name
/// the bookmark from before it: the warning went by the short name alone.
#[test]
fn a_restore_after_a_killed_one_warns_of_it_after_prods_short_name_changed() {
    use std::os::unix::fs::PermissionsExt as _;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = "00000002-00000000-00000000-ffadacd0df6fcafbe4e5cdfdc899d44d";
    let started = chrono::Utc::now() - chrono::Duration::hours(1);
    let line = serde_json::json!({
        "at": started,
        "started_at": started,
        "environment": "prod",
        "database": PROD,
        "database_id": PROD_UUID,
        "status": "started",
        "restore_to": "00000001-00000000-00000000-49755e4b9618ee7937b2ba62733a1175",
        "bookmark_before": before,
    });
    let backups = remote.sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let journal = backups.join("time-travel.jsonl");
    std::fs::write(&journal, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    remote.sb.rename_prod_to_live();
    let status = remote.xtask(home.path(), &["status", "--env", "live"]);
    assert!(
        status.stdout.contains("stopped") && status.stdout.contains(before),
        "the premise: status tells it by its database id:\n{}",
        status.all()
    );

    let now = bookmark_now_of(&remote, home.path(), "live");
    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "live",
            "--bookmark",
            &now,
            "--dry-run",
        ],
    );
    dry.assert_ok();
    assert!(
        dry.stderr.contains("stopped before D1 answered") && dry.stderr.contains(before),
        "the killed restore of {PROD}, journaled under `prod`, is not told once prod is \
         called live:\n{}",
        dry.all()
    );
}

/// A Time Travel restore reads its plan and asks for the database name
/// under the backup lock: while its question is open, a backup of prod and
/// a second restore are refused (exit 4, naming it), restore nothing and
/// change neither backups/ nor the journal, and a dry run (which takes no
/// lock) still prints its plan; answered, it restores the plan it showed.
/// It used to ask before taking the lock, so both ran while it asked.
#[test]
fn runs_while_a_time_travel_restore_asks_are_refused_and_it_restores_its_plan() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let old = bookmark_now(&remote, home);
    add_company(&remote.db, "Newer Co");
    let args = ["time-travel", "restore", "prod", "--bookmark", &old];
    let mut first = InATerminal::of(remote.xtask_command(home, &args));
    assert!(
        first.prints("Type the database name"),
        "the restore did not ask:\n{}",
        first.seen()
    );
    let state = |remote: &Remote| {
        let restores = remote.server.time_travel_restores().len();
        (
            remote.sb.backups_held(),
            journal(remote),
            companies(&remote.db),
            restores,
        )
    };
    let before = state(&remote);
    let others = [
        remote.xtask(home, &["backup", "prod"]),
        remote.xtask(home, &[&args[..], &["--confirm", PROD]].concat()),
    ];
    let dry_run = remote.xtask(home, &[&args[..], &["--dry-run"]].concat());
    let meanwhile = state(&remote);
    first.answer(PROD);
    let (code, out) = first.end();

    for other in &others {
        assert_eq!(other.code, Some(4), "{}", other.all());
        assert!(
            other
                .stderr
                .contains("(`time-travel restore prod`, started ")
                && other.stderr.contains("Nothing was changed."),
            "the refusal does not name the restore waiting for its answer:\n{}",
            other.all()
        );
    }
    assert_eq!(
        meanwhile, before,
        "something changed while the restore asked"
    );
    dry_run.assert_ok();
    assert!(
        dry_run.stdout.contains("Time Travel restore plan") && dry_run.stdout.contains("Dry run"),
        "{}",
        dry_run.all()
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(remote.server.time_travel_restores().len(), 1, "{out}");
    assert!(
        !companies(&remote.db).contains(&"Newer Co".to_owned()),
        "{out}"
    );
    let statuses: Vec<Value> = journal(&remote)
        .iter()
        .map(|l| l["status"].clone())
        .collect();
    assert_eq!(statuses, ["started", "done"], "{out}");
}

/// A Time Travel restore while another run holds the backup lock is told
/// so before it reads a plan or asks: it used to read its plan from D1,
/// print it and ask for the name first. Without a terminal and without
/// --confirm, it is refused (exit 3) before the lock and before any
/// request, as a restore is: it used to read its plan from D1 first.
#[test]
fn a_time_travel_restore_asks_and_reads_nothing_it_cannot_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let old = bookmark_now(&remote, home);
    let args = ["time-travel", "restore", "prod", "--bookmark", &old];
    let requests = remote.server.requests().len();

    let unconfirmed = remote.xtask(home, &args);
    unconfirmed.assert_refused("--confirm qbtime_db_prod");
    assert_eq!(unconfirmed.code, Some(3), "{}", unconfirmed.all());
    assert!(
        !unconfirmed.stdout.contains("Time Travel restore plan"),
        "{}",
        unconfirmed.all()
    );
    assert!(
        !remote.sb.backups().join(".lock").exists(),
        "it took the backup lock"
    );

    let lock = hold_backup_lock(&remote.sb, "backup prod");
    let mut restore = InATerminal::of(remote.xtask_command(home, &args));
    let asked = restore.prints("Type the database name");
    if asked {
        restore.answer(PROD);
    }
    let (code, out) = restore.end();
    drop(lock);
    assert!(!asked, "it asked with the lock held elsewhere:\n{out}");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("(`backup prod`, started ") && out.contains("Nothing was changed."),
        "{out}"
    );
    assert!(!out.contains("Time Travel restore plan"), "{out}");
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "a restore that could not run reached D1: {:?}",
        &remote.server.requests()[requests..]
    );
    assert!(journal(&remote).is_empty());
}

/// rvX: D1 made the restore, and its answer was lost (a 524 from
/// Cloudflare's edge, a 5xx): the restore is not "failed" (D1 applies it
/// whole or not at all, and may have), but unknown: journaled interrupted,
/// its undo printed, and where the database is now read back and said.
#[test]
fn a_restore_answered_524_after_d1_made_it_is_told_unknown_with_its_undo() {
    for status in [524, 500] {
        let remote = Remote::new("");
        let home = tempfile::tempdir().unwrap();
        let old = bookmark_now(&remote, home.path());
        add_company(&remote.db, "Newer Co");
        let before = bookmark_now(&remote, home.path());
        remote.server.set_faults(d1_loopback::Faults {
            time_travel_restore_applied_status: Some(status),
            ..Default::default()
        });

        let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &old);
        remote.server.set_faults(d1_loopback::Faults::default());
        // The premise: D1 made the restore.
        assert!(
            !remote.server.time_travel_restores().is_empty(),
            "{}",
            run.all()
        );
        assert!(!companies(&remote.db).contains(&"Newer Co".to_owned()));
        assert_ne!(run.code, Some(0), "{}", run.all());
        let all = run.all();
        assert!(
            !all.contains("restore of qbtime_db_prod failed")
                && !all.contains("whole or not at all. It was"),
            "a restore D1 made is told as failed ({status}):\n{all}"
        );
        assert!(all.contains("outcome is unknown"), "{status}:\n{all}");
        // The undo, to paste, and where the database is now.
        assert!(
            all.contains(&format!(
                "cargo xtask time-travel restore prod --bookmark {before}"
            )),
            "no undo ({status}):\n{all}"
        );
        let now = bookmark_now(&remote, home.path());
        assert!(
            all.contains(&format!("now at bookmark {now}")),
            "{status}:\n{all}"
        );
        let lines = journal(&remote);
        assert_eq!(
            lines.last().unwrap()["status"],
            "interrupted",
            "{status}: {lines:#?}"
        );
        let status_run = remote.xtask(home.path(), &["status", "--env", "prod"]);
        let line = { status_run.stdout.lines() }
            .find(|l| l.contains("last Time Travel restore"))
            .unwrap_or_else(|| panic!("{}", status_run.all()))
            .to_owned();
        assert!(!line.contains("(failed)"), "{line}");
        assert!(line.contains(&before), "status gives no way back: {line}");
    }
}

/// rvAF: two Time Travel restores of prod stopped unfinished, an app write
/// between them: the first killed before it was sent (the database was at
/// bookmark A), the second once it landed (at bookmark B, which holds that
/// write). The next restore warned that bookmark A "brings back the
/// database as it was before both" and printed it alone as the way back,
/// which drops the write; `status` named B. Now both are named, each with
/// the time of the attempt it is from, in the warning, after the restore
/// and in `status` alike, and the writes between them are said to be only
/// in the later one.
#[test]
fn two_unfinished_restores_are_told_with_both_bookmarks_and_times() {
    use std::os::unix::fs::PermissionsExt as _;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let a = "00000002-00000000-00000000-ffadacd0df6fcafbe4e5cdfdc899d44d";
    let b = "00000003-00000000-00000000-0123456789abcdef0123456789abcdef";
    let t1 = chrono::Utc::now() - chrono::Duration::hours(2);
    let t2 = chrono::Utc::now() - chrono::Duration::hours(1);
    let line = |started: chrono::DateTime<chrono::Utc>, before: &str| {
        serde_json::json!({
            "at": started,
            "started_at": started,
            "environment": "prod",
            "database": PROD,
            "database_id": PROD_UUID,
            "status": "started",
            "restore_to": "00000001-00000000-00000000-49755e4b9618ee7937b2ba62733a1175",
            "bookmark_before": before,
        })
    };
    let backups = remote.sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let journal = backups.join("time-travel.jsonl");
    std::fs::write(&journal, format!("{}\n{}\n", line(t1, a), line(t2, b))).unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secs =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (t1, t2) = (secs(t1), secs(t2));
    let names_both = |text: &str| [a, b, &t1, &t2].iter().all(|s| text.contains(s));

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(names_both(&status.stdout), "{}", status.all());

    let now = bookmark_now(&remote, home.path());
    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &now,
            "--dry-run",
        ],
    );
    dry.assert_ok();
    assert!(
        names_both(&dry.stderr) && !dry.stderr.contains("before both"),
        "the warning offers bookmark {a} alone as the way back to before the unfinished \
         restores, which drops the writes only {b} holds:\n{}",
        dry.all()
    );
    assert!(dry.stderr.contains("exist only in"), "{}", dry.all());

    let run = restore_prod_at_bookmark(&remote, home.path(), "prod", &now);
    run.assert_ok();
    for bookmark in [a, b] {
        let back = format!("cargo xtask time-travel restore prod --bookmark {bookmark}");
        assert!(
            run.stdout.lines().any(|l| l.trim() == back),
            "no way back to bookmark {bookmark}:\n{}",
            run.all()
        );
    }
    assert!(names_both(&run.stdout), "{}", run.all());
}

/// rvAF: a `--bookmark` restore's plan never said how far back it goes,
/// though the journal knew when the bookmark was recorded; its printed
/// undo carries `--confirm`, so an old one pasted from scrollback runs
/// without a question. Now the plan says when it was recorded and how long
/// ago, and warns when that is over a day.
#[test]
fn a_bookmark_restore_says_when_its_bookmark_was_recorded() {
    use std::os::unix::fs::PermissionsExt as _;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    add_company(&remote.db, "Newer Co");
    let then = chrono::Utc::now() - chrono::Duration::days(3);
    let line = serde_json::json!({
        "at": then,
        "started_at": then,
        "environment": "prod",
        "database": PROD,
        "database_id": PROD_UUID,
        "status": "done",
        "restore_to": "00000001-00000000-00000000-49755e4b9618ee7937b2ba62733a1175",
        "bookmark_before": "00000003-00000000-00000000-0123456789abcdef0123456789abcdef",
        "previous_bookmark": old,
    });
    let backups = remote.sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let journal = backups.join("time-travel.jsonl");
    std::fs::write(&journal, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let at = then.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &old,
            "--dry-run",
        ],
    );
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&format!("recorded     at {at} (3 days ago")),
        "the plan does not say when bookmark {old} was recorded:\n{}",
        dry.all()
    );
    assert!(
        dry.stderr.contains("warning: bookmark") && dry.stderr.contains("3 days ago"),
        "no warning that the bookmark is days old:\n{}",
        dry.all()
    );
    // One the tool knows nothing of says so.
    let now = bookmark_now(&remote, home.path());
    let fresh = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &now,
            "--dry-run",
        ],
    );
    fresh.assert_ok();
    assert!(
        fresh
            .stdout
            .contains("recorded     not in the journal nor any backup's manifest"),
        "{}",
        fresh.all()
    );
}

/// rvAJ: a `--bookmark` plan took the newest date any record gave the
/// bookmark. A backup's manifest dated minutes ago naming a bookmark the
/// journal recorded days ago (a copied or forged manifest, a clock ahead)
/// made the plan say "3 minutes ago", with no warning, and "none was
/// applied since then" as fact. Now it takes the oldest date, and says
/// the date is as recorded there, not verified.
#[test]
fn a_bookmark_restore_takes_the_oldest_date_recorded_not_a_newer_manifests() {
    use std::os::unix::fs::PermissionsExt as _;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = bookmark_now(&remote, home.path());
    // A backup now, nothing written since `old`: its manifest names `old`,
    // dated now.
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    add_company(&remote.db, "Newer Co");
    let then = chrono::Utc::now() - chrono::Duration::days(20);
    let line = serde_json::json!({
        "at": then,
        "started_at": then,
        "environment": "prod",
        "database": PROD,
        "database_id": PROD_UUID,
        "status": "done",
        "restore_to": "00000001-00000000-00000000-49755e4b9618ee7937b2ba62733a1175",
        "bookmark_before": "00000003-00000000-00000000-0123456789abcdef0123456789abcdef",
        "previous_bookmark": old,
    });
    let journal = remote.sb.backups().join("time-travel.jsonl");
    std::fs::write(&journal, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let at = then.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &old,
            "--dry-run",
        ],
    );
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&format!("recorded     at {at} (20 days ago")),
        "the plan takes the manifest's newer date for bookmark {old}:\n{}",
        dry.all()
    );
    assert!(
        dry.stdout.contains("not verified"),
        "the plan does not say the date is only as recorded:\n{}",
        dry.all()
    );
    assert!(
        dry.stderr.contains("warning: bookmark") && dry.stderr.contains("20 days ago"),
        "no warning that the bookmark is days old:\n{}",
        dry.all()
    );
}

/// rvAJ: `status` told the restores whose outcome is unknown only when the
/// journal's last line was one of them. Two restores killed, then a third
/// refused by D1 (`failed`): status said only "failed", neither that the
/// two before may have been made nor the bookmarks that undo them (a
/// Time Travel restore's plan warns of them).
#[test]
fn status_tells_restores_killed_before_a_failed_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let bookmark =
        |n: u32| format!("0000000{n}-00000000-00000000-0123456789abcdef0123456789abcdef");
    let line = |hours: i64, n: u32, status: &str| {
        let at = (now - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        serde_json::json!({
            "at": at,
            "started_at": at,
            "environment": "prod",
            "database": PROD,
            "database_id": PROD_UUID,
            "status": status,
            "restore_to": "00000001-00000000-00000000-49755e4b9618ee7937b2ba62733a1175",
            "bookmark_before": bookmark(n),
        })
        .to_string()
    };
    let lines = [
        line(3, 2, "started"),
        line(2, 3, "started"),
        line(1, 4, "started"),
        line(1, 4, "failed"),
    ];
    let backups = remote.sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let journal = backups.join("time-travel.jsonl");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    for n in [2, 3] {
        assert!(
            status.stdout.contains(&bookmark(n)),
            "status does not name bookmark {} of a restore killed before the failed one:\n{}",
            bookmark(n),
            status.all()
        );
    }
    assert!(
        !status.stdout.contains(&bookmark(4)),
        "status offers the bookmark of the failed restore, which was not made:\n{}",
        status.all()
    );
}

/// NO 1: the plan of a restore to a time named the migrations it takes
/// back by `d1_migrations.applied_at` alone, which anyone who can write
/// the database can set (an UPDATE by hand, a trigger): a migration this
/// tool applied after the time, its `applied_at` set back before it, was
/// "takes back no migration", and the restore ran. The migrations journal
/// and the pre-migration backup's manifest record it applied after that
/// time: the plan names it, says the records disagree, and the restore is
/// refused (exit 3, nothing restored) until `--allow-migration-taken-back`.
#[test]
fn a_migration_whose_applied_at_was_set_back_is_told_taken_back_and_guarded() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let at = a_time_after_the_first_company(&remote, home.path());
    let later = "0005_company_notes.sql";
    std::fs::write(
        remote.sb.path().join("migrations").join(later),
        "ALTER TABLE companies ADD COLUMN notes TEXT;",
    )
    .unwrap();
    let args = ["migrate", "prod", "--confirm", PROD];
    remote.xtask(home.path(), &args).assert_ok();
    {
        let conn = rusqlite::Connection::open(&remote.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let set_back =
            "UPDATE d1_migrations SET applied_at = '2000-01-01 00:00:00' WHERE name = ?1";
        assert_eq!(conn.execute(set_back, [later]).unwrap(), 1);
    }
    bookmark_now(&remote, home.path());

    let plan = remote.xtask(
        home.path(),
        &["time-travel", "restore", "prod", "--at", &at, "--dry-run"],
    );
    plan.assert_ok();
    let takes_back = { plan.stdout.lines() }
        .find(|l| l.contains("takes back"))
        .unwrap_or_else(|| panic!("no takes back line:\n{}", plan.all()));
    assert!(
        takes_back.contains(later),
        "the plan trusts applied_at alone:\n{}",
        plan.all()
    );
    assert!(plan.all().contains("applied_at"), "{}", plan.all());

    let run = restore_prod_at(&remote, home.path(), &at);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("--allow-migration-taken-back"),
        "{}",
        run.all()
    );
    assert!(
        remote.server.time_travel_restores().is_empty(),
        "{}",
        run.all()
    );

    let args = [
        "time-travel",
        "restore",
        "prod",
        "--at",
        &at,
        "--confirm",
        PROD,
        "--allow-migration-taken-back",
    ];
    let run = remote.xtask(home.path(), &args);
    run.assert_ok();
    assert_eq!(remote.server.time_travel_restores().len(), 1);
    // rvCM 3: its guard line says the flag was given, not that the
    // restore is refused without it.
    let guard = run.stdout_line_with("guard ");
    assert!(
        guard.contains("--allow-migration-taken-back was given") && !guard.contains("refused"),
        "{}",
        run.all()
    );
}

/// OC 2: a migration that `applied_at` alone dates (applied with wrangler,
/// not this tool: no journal line, and no backup's manifest either way)
/// set back before a restore's time was "takes back no migration". Set
/// back before a migration applied ahead of it (a lower id in
/// d1_migrations), d1_migrations' own order gives it away: told disputed
/// and the restore refused (exit 3, nothing restored) until
/// `--allow-migration-taken-back`. In order, the plan says it is dated by
/// applied_at alone, and restores.
#[test]
fn a_migration_dated_by_applied_at_alone_is_told_so_and_guarded_when_out_of_order() {
    let (remote, home, at) = applied_after_a_time(LATER);
    let later = LATER;
    let set_back = |to: &str| {
        let conn = rusqlite::Connection::open(&remote.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let sql = "UPDATE d1_migrations SET applied_at = ?1 WHERE name = ?2";
        assert_eq!(conn.execute(sql, [to, later]).unwrap(), 1);
    };
    set_back("2000-01-01 00:00:00");
    bookmark_now(&remote, home.path());
    let dry = ["time-travel", "restore", "prod", "--at", &at, "--dry-run"];
    let plan = remote.xtask(home.path(), &dry);
    plan.assert_ok();
    let takes_back = { plan.stdout.lines() }
        .find(|l| l.contains("takes back"))
        .unwrap_or_else(|| panic!("no takes back line:\n{}", plan.all()));
    assert!(takes_back.contains(later), "{}", plan.all());
    assert!(plan.stdout.contains("disputed"), "{}", plan.all());
    let run = restore_prod_at(&remote, home.path(), &at);
    let refused = (
        run.code,
        run.stderr.contains("--allow-migration-taken-back"),
    );
    assert_eq!(refused, (Some(3), true), "{}", run.all());
    assert_eq!(remote.server.time_travel_restores().len(), 0);

    // In order, a second before the time: nothing can dispute it.
    let just_before =
        chrono::DateTime::parse_from_rfc3339(&at).unwrap() - chrono::Duration::seconds(1);
    set_back(&just_before.format("%Y-%m-%d %H:%M:%S").to_string());
    let plan = remote.xtask(home.path(), &dry);
    plan.assert_ok();
    let dated = { plan.stdout.lines() }
        .find(|l| l.contains(later))
        .unwrap_or_else(|| panic!("the plan does not name {later}:\n{}", plan.all()));
    assert!(dated.contains("applied_at alone"), "{}", plan.all());
    for base in ["0001_", "0004_"] {
        assert!(!dated.contains(base), "{base}: {}", plan.all());
    }
    restore_prod_at(&remote, home.path(), &at).assert_ok();
}
