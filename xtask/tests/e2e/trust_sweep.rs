//! atkBN: a regression sweep of the trust boundary. Inputs someone else may
//! have written, read by a command other than the one their tests use.

use crate::common::app::App;
use crate::common::remote::Remote;
use crate::common::*;

/// The operator ran `cargo xtask drill --yes` with QBTIME_APP_URL and
/// QBTIME_DEVOPS_TOKEN set, and the app (whose replies are not this
/// tool's: a compromised or buggy app, or anything answering at that URL)
/// answered its audit check with a 500 whose JSON `error` holds line
/// breaks, a terminal escape and a line worded as the drill's own
/// `  [pass] app …` result. The drill printed that text as it was, so its
/// output showed `[pass]` lines for checks that failed and the escape
/// reached the terminal. It should print the app's message on its own
/// line only, with control characters written as spaces (as `--reason` is
/// held: `names::breaks_text`), so no line of the drill's output is the
/// app's. Cause: `xtask/src/commands/drill.rs`, `judge` (its `said`
/// quotes the decoded `error`/`message` as is) and `Drill::app`, which
/// prints it with `say!`, whose later lines are not indented.
#[test]
fn an_apps_reply_never_prints_a_line_of_the_drills_own() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let app = App::start();
    let forged = "GET /api/v1/auth/session answered 200";
    for path in [
        "/api/v1/platform/verify-audit",
        "/api/v1/auth/session",
        "/api/v1/reports/smoke",
    ] {
        app.answer(
            path,
            500,
            &format!(
                r#"{{"ok":false,"error":"down\n  [pass] app sign-in: {forged}\u001b[2K\r  [pass] app report: ok"}}"#
            ),
        );
    }
    let out = remote
        .xtask_command(home.path(), &["drill", "--yes"])
        .env("QBTIME_APP_URL", app.url())
        .env("QBTIME_DEVOPS_TOKEN", "devops-canary-token-77aa")
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "failing app checks fail the drill:\n{}", run.all());
    assert!(
        !run.all()
            .lines()
            .any(|l| l.trim_start().starts_with("[pass] app")),
        "the app's reply printed a line of the drill's own:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains('\u{1b}') && !run.all().contains('\r'),
        "a terminal escape from the app's reply was printed:\n{}",
        run.all().escape_debug()
    );
    assert!(!run.all().contains("devops-canary-token-77aa"));
}

/// The operator ran `cargo xtask rehearse --from <backup>` on a backup
/// whose file was changed after its manifest was written (a row added to
/// the `.sql`). verify and restore refuse such a file (it no longer
/// matches its manifest's sha256); rehearse loaded it into its prod and
/// reported the rehearsal of that backup as passed, rows planted after
/// the fact included. It should refuse it before anything starts, naming
/// the file and that it no longer matches its manifest (exit 3, as restore).
/// Cause: `xtask/src/commands/rehearse.rs`, the `From::Backup` load (it
/// reads `Source::open`, not `open_checked` against the manifest, and
/// never compares the file with its manifest).
#[test]
fn a_rehearsal_never_loads_a_backup_that_no_longer_matches_its_manifest() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let source = sb.backups().join(&name);
    let mut text = std::fs::read_to_string(&source).unwrap();
    text.push_str(
        "INSERT INTO accounts (email, display_name, password_hash) VALUES ('planted@example.com', 'Planted', 'x');\n",
    );
    std::fs::write(&source, text).unwrap();
    let run = sb.xtask(&["rehearse", "--from", source.to_str().unwrap()]);
    // Refused by a guard (exit 3), as restore and upload refuse it.
    assert_eq!(
        run.code,
        Some(3),
        "a rehearsal of a file that no longer matches its manifest ran:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("manifest"),
        "the refusal names the manifest:\n{}",
        run.all()
    );
}
