//! What comes back from outside the tool, an API's error message or the
//! drill's app's answer, is text the tool does not control: a secret it
//! echoes is redacted however it is split, and a line break in it never
//! prints a line of the tool's own.

use crate::common;

use common::remote::{Remote, TOKEN};
use common::*;

/// The API token split in half by each thing the printer removes or
/// replaces, or that shows as nothing: an escape code, a window-title
/// sequence, a carriage return, a zero-width space, NUL, a soft hyphen,
/// DEL, a backspace, a word joiner and an interlinear annotation mark
/// (Unicode format characters); a charset designation, the escape
/// strings (DCS, APC, PM, SOS, OSC ended by ST), in their 8-bit C1 forms
/// too, a braille blank, a combining accent, a paragraph separator and a
/// Hangul filler (rvCN).
fn split_tokens(token: &str) -> String {
    let (head, tail) = token.split_at(token.len() / 2);
    let cuts = concat!(
        "\u{1b}[0m|\u{1b}]0;title\u{7}|\r|\u{200b}|\u{0}|\u{ad}|\u{7f}|\u{8}|\u{2060}|\u{fff9}",
        "|\u{1b}(B|\u{1b}P1$r0m\u{1b}\\|\u{1b}_apc body\u{1b}\\|\u{1b}^pm body\u{1b}\\",
        "|\u{1b}Xsos body\u{7}|\u{1b}]0;title\u{1b}\\|\u{90}dcs body\u{9c}|\u{9b}31m",
        "|\u{9d}0;title\u{7}|\u{9e}pm body\u{9c}|\u{9f}apc body\u{9c}",
        "|\u{2800}|\u{301}|\u{2029}|\u{3164}"
    );
    { cuts.split('|') }
        .map(|cut| format!("{head}{cut}{tail}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Neither half of `token` shows in what `run` printed, nor the whole
/// once what does not print is taken out.
fn assert_token_unshown(run: &Run, token: &str) {
    let all = run.all();
    let (head, tail) = token.split_at(token.len() / 2);
    let joined: String = { all.chars() }
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    for piece in [head, tail, token] {
        assert!(
            !all.contains(piece) && !joined.contains(token),
            "{piece:?} shown:\n{all:?}"
        );
    }
}

/// An API that answers every request with an error echoing the token
/// split: `backup`, `time-travel info` and `doctor`, at `-v` and with
/// `--json` too, never print it, whole or in halves, nor the body of an
/// escape string that cuts it (rvCL 1, rvCN).
#[test]
fn an_api_error_echoing_the_token_split_never_shows_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        every_request_error: Some((400, format!("bad token {}", split_tokens(TOKEN)))),
        ..d1_loopback::Faults::default()
    });
    for args in [
        &["backup", "staging"][..],
        &["-v", "time-travel", "info", "staging"],
        &["time-travel", "info", "staging", "--json"],
        &["backup", "staging", "--json"],
        &["doctor"],
    ] {
        let run = remote.xtask(home.path(), args);
        // Relayed, so that the test sees what a user sees of it.
        assert!(run.all().contains("bad token"), "{args:?}:\n{}", run.all());
        assert_token_unshown(&run, TOKEN);
        // An escape string is taken out whole, never spliced in.
        assert!(!run.all().contains("body"), "{args:?}:\n{}", run.all());
    }
}

/// The drill's app answering a check with an error that echoes the DevOps
/// token split: the `[FAIL]` lines, the drill's error and its log never
/// show it, whole or in halves (rvCL 1).
#[test]
fn an_app_answer_echoing_the_devops_token_split_never_shows_it() {
    const DEVOPS_TOKEN: &str = "drill-devops-token-0123456789";
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let app = common::app::App::start();
    let body = serde_json::json!({
        "ok": false,
        "error": format!("bad token {}", split_tokens(DEVOPS_TOKEN)),
    });
    app.answer("/api/v1/platform/verify-audit", 200, &body.to_string());
    let out = { remote.xtask_command(home.path(), &["drill", "--yes"]) }
        .env("QBTIME_APP_URL", app.url())
        .env("QBTIME_DEVOPS_TOKEN", DEVOPS_TOKEN)
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "{}", run.all());
    assert!(run.stdout.contains("[FAIL]"), "{}", run.all());
    assert_token_unshown(&run, DEVOPS_TOKEN);
    let log = std::fs::read_to_string(remote.sb.path().join("docs/restore-drills.md")).unwrap();
    let (head, tail) = DEVOPS_TOKEN.split_at(DEVOPS_TOKEN.len() / 2);
    assert!(!log.contains(head) && !log.contains(tail), "{log}");
}

/// An API error message holding line breaks: `backup` and `time-travel
/// info` (at `-v` too) show it as what the API said, never as lines of
/// their own (`Result: GOOD`, `warning: …`): its breaks escaped in the
/// error wrangler prints as JSON, and each line wrangler prints of it
/// marked `wrangler | ` (rvCL 2).
#[test]
fn an_api_error_with_line_breaks_prints_no_line_of_its_own() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        every_request_error: Some((
            400,
            "boom\rResult: GOOD\nwarning: prod backup deleted".into(),
        )),
        ..d1_loopback::Faults::default()
    });
    for args in [
        &["backup", "staging"][..],
        &["time-travel", "info", "staging"],
        &["-v", "time-travel", "info", "staging"],
    ] {
        let run = remote.xtask(home.path(), args);
        assert!(!run.ok, "{args:?}:\n{}", run.all());
        assert!(run.stderr.contains("prod backup deleted"), "{}", run.all());
        let all = run.all();
        let forged: Vec<&str> = { all.lines() }
            .flat_map(|l| l.split('\r'))
            .map(str::trim_start)
            .filter(|l| l.starts_with("warning: prod") || l.starts_with("Result: GOOD"))
            .collect();
        assert!(forged.is_empty(), "{args:?}: {forged:?}\n{all}");
    }
}
