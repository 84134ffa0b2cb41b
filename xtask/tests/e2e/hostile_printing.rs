//! Printed text as an attack channel: names and keys read from a dump or a
//! manifest reach the terminal, the log and the scheduled job's mail. A
//! line break there forges a line of output; an escape code (an OSC 52
//! clipboard write, a line erase) reaches a terminal as it is. These fail
//! while `diff` and `verify` print a dump's table names, a dump's primary
//! keys and a manifest's `rows` keys unescaped.

use crate::common;

use common::*;

/// What a hostile name may hold: an OSC 52 clipboard write (base64 of
/// `echo pwned`), a line erase, a carriage return and a line break that
/// starts a forged line.
const HOSTILE: &str = "x\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\u{1b}[2K\rY\nforged: Result: SAME";

#[track_caller]
fn assert_nothing_forged(run: &Run) {
    let all = run.all();
    assert!(
        !all.contains('\r') && !all.contains('\u{1b}') && !all.contains('\u{7}'),
        "a control character from a file reached the output:\n{}",
        all.escape_debug()
    );
    assert!(
        !all.lines().any(|l| l.starts_with("forged")),
        "a line break from a file forged a line of output:\n{all}"
    );
}

fn quoted_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quoted_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[test]
fn diff_never_prints_a_dumps_table_names_or_keys_as_they_are() {
    let sb = Sandbox::new();
    let a = sb.path().join("a.sql");
    let b = sb.path().join("b.sql");
    std::fs::write(
        &a,
        "CREATE TABLE k (id TEXT PRIMARY KEY, v TEXT);\nINSERT INTO k VALUES('a','1');\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        format!(
            "CREATE TABLE k (id TEXT PRIMARY KEY, v TEXT);\n\
             INSERT INTO k VALUES('a','1');\n\
             INSERT INTO k VALUES({},'2');\n\
             CREATE TABLE {} (id INTEGER PRIMARY KEY);\n",
            quoted_text(HOSTILE),
            quoted_ident(HOSTILE)
        ),
    )
    .unwrap();
    let run = sb.xtask(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "the dumps differ:\n{}", run.all());
    assert_nothing_forged(&run);
}

#[test]
fn verify_never_prints_a_manifests_row_counts_table_names_as_they_are() {
    let (sb, name) = sandbox_with_a_backup();
    let stem = name.split(".sql").next().unwrap();
    let path = sb.backups().join(format!("{stem}.manifest.json"));
    let mut manifest = manifest_for(&sb, &name);
    manifest["rows"][HOSTILE] = serde_json::json!(7);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let run = sb.xtask(&["verify", &name]);
    // Refused as a manifest that fails its checks (exit 2), or judged bad
    // (exit 1): either way, never printed as it is.
    assert!(
        !run.ok,
        "a manifest with a forged table name verified:\n{}",
        run.all()
    );
    assert_nothing_forged(&run);
}

/// A reason is often text from elsewhere (`--reason "$(git log -1
/// --format=%s)"` in a deploy script, a commit message anyone may write;
/// `with-backup`'s command typed over several lines). The manifest records
/// it on one line, but `backup --dry-run`'s plan printed it as given: a line
/// break forged a plan line, an escape code reached the terminal. Printed
/// or recorded, it stays on one line, and its backup stays usable.
#[test]
fn a_reason_with_a_line_break_or_an_escape_code_keeps_its_backup_usable() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "true\nexit 0"]);
    run.assert_ok();
    let list = sb.xtask(&["list", "--env", "local"]);
    assert!(
        list.ok && !list.all().contains("refus") && list.stdout.contains("before task"),
        "with-backup's own backup was refused for its reason:\n{}",
        list.all()
    );
    let run = sb.xtask(&["backup", "local", "--dry-run", "--reason", HOSTILE]);
    assert_nothing_forged(&run);
    sb.xtask(&["backup", "local", "--reason", HOSTILE])
        .assert_ok();
    let list = sb.xtask(&["-v", "list", "--env", "local"]);
    list.assert_ok();
    assert_nothing_forged(&list);
    assert!(
        list.stdout.contains("forged: Result: SAME"),
        "-v lists the reason:\n{}",
        list.stdout
    );
    assert!(
        !list.all().contains("refus") && !list.all().contains("untrusted"),
        "a backup this tool took was refused for its own reason:\n{}",
        list.all()
    );
    assert_eq!(
        sb.backup_files()
            .iter()
            .filter(|f| f.ends_with(".sql"))
            .count(),
        2
    );
    for f in sb.backup_files().iter().filter(|f| f.ends_with(".sql")) {
        let run = sb.xtask(&["restore", f, "--to", "local", "--replace", "--dry-run"]);
        run.assert_ok();
        assert_nothing_forged(&run);
    }
}

/// `migrate --no-backup` warns with the reason given, printed as a backup's
/// manifest records one: on one line, with no escape code.
#[test]
fn migrate_without_a_backup_warns_with_its_reason_on_one_line() {
    let sb = Sandbox::new();
    let run = sb.xtask(&[
        "migrate",
        "local",
        "--no-backup",
        "--reason",
        HOSTILE,
        "--yes",
    ]);
    run.assert_ok();
    assert_nothing_forged(&run);
    assert!(
        run.stderr.contains("without a backup; reason given: x")
            && run.stderr.contains("forged: Result: SAME"),
        "{}",
        run.all()
    );
}

/// `list -v` cuts a manifest's reason at 120 characters, and the line was
/// redacted after the cut: a secret that straddled the cut (in a manifest
/// written on another machine, or before its reason was redacted) lost its
/// end, and what was left of it, most of the token, was printed as it is.
/// The reason is redacted before it is cut.
#[test]
fn list_v_never_prints_part_of_a_secret_cut_off_in_a_reason() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let token = "zqTOKEN0123456789abcdefghijklmnopqrstuvwxyz";
    // Recorded as it is: this run holds no such secret. Words before it
    // (100 `x` in a row would be refused as a piece of an age key).
    let reason = format!("{}{token}", "x ".repeat(50));
    sb.xtask(&["backup", "local", "--reason", &reason])
        .assert_ok();
    let list = Run::from_output(
        sb.xtask_command(&["-v", "list", "--env", "local"])
            .env("CLOUDFLARE_API_TOKEN", token)
            .output()
            .unwrap(),
    );
    list.assert_ok();
    assert!(
        list.stdout.contains("x x x x x "),
        "-v lists no reason:\n{}",
        list.stdout
    );
    assert!(
        !list.all().contains(&token[..12]),
        "part of the token was printed:\n{}",
        list.all()
    );
}

/// `status --json` reads the migrations a pre-migration backup was taken
/// before from its manifest's reason (`taken_before_migrations`), and a
/// manifest not written here (another machine's, an older version's) may
/// hold a credential there, by name, where `--json`'s own redaction (by
/// value alone) would pass it on. It is redacted as `list --json` redacts
/// a reason; and a reason holding an escape code and a line break is
/// refused with its manifest, never printed. Either way the output is JSON
/// a monitor can parse.
#[test]
fn status_json_never_prints_a_secret_or_an_escape_code_from_a_manifests_reason() {
    let (sb, name) = sandbox_with_a_backup();
    let token = "zqTOKEN0123456789abcdefghijklmnop";
    edit_manifest(&sb, &name, |m| {
        m["reason"] = serde_json::json!(format!(
            "pre-migration: 0005_x.sql, CLOUDFLARE_API_TOKEN={token} (deploy)"
        ));
    });
    let run = sb.xtask(&["status", "--env", "local", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("status --json is no JSON ({e}):\n{}", run.all()));
    let taken_before = &json["environments"][0]["newest_verified"]["taken_before_migrations"];
    assert_eq!(
        taken_before[0], "0005_x.sql",
        "the reason was not read:\n{}",
        run.stdout
    );
    assert!(
        !run.all().contains(&token[..12]),
        "the token in the reason was printed:\n{}",
        run.all()
    );
    assert_eq!(
        taken_before[1], "CLOUDFLARE_API_TOKEN=[REDACTED]",
        "{}",
        run.stdout
    );

    edit_manifest(&sb, &name, |m| {
        m["reason"] = serde_json::json!(format!("pre-migration: 0005_x.sql, {HOSTILE}"));
    });
    let run = sb.xtask(&["status", "--env", "local", "--json"]);
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .unwrap_or_else(|e| panic!("status --json is no JSON ({e}):\n{}", run.all()));
    assert_nothing_forged(&run);
    assert!(
        !run.all().contains("forged: Result: SAME"),
        "the reason was printed:\n{}",
        run.all()
    );
}

/// A word as an operator may paste it by mistake (from a log, a chat): a
/// colour code, a bell, a carriage return, a right-to-left override and a
/// line break that starts a forged line.
const TYPED: &str = "x\u{1b}[31m\u{7}\rY\u{202e}Z\nforged: Result: SAME";

/// What a message that echoes [`TYPED`] shows: each of those characters as
/// its escape, the rest as typed, on one line.
const TYPED_SHOWN: &str = "x\\u{1b}[31m\\u{7}\\u{d}Y\\u{202e}Z\\u{a}forged: Result: SAME";

/// [`TYPED`] as a command to paste quotes it (`with-backup` names the
/// program it could not start so): in bash's `$'…'`, which reads back as
/// typed.
const TYPED_QUOTED: &str = "$'x\\x1b[31m\\x07\\x0dY\\u202eZ\\x0aforged: Result: SAME'";

#[test]
fn a_typed_word_is_echoed_escaped_by_every_message_that_names_it() {
    let sb = Sandbox::new();
    let outside = sb.path().join("decoy.txt");
    std::fs::write(&outside, "decoy").unwrap();
    let backup_dir = format!("--backup-dir={TYPED}");
    let database = format!("--database={TYPED}");
    let new_name = format!("new:{TYPED}");
    let cases: [&[&str]; 9] = [
        &["restore", TYPED, "--to", "local"],
        &["verify", TYPED],
        &["restore", "latest:local", "--to", TYPED],
        &["backup", TYPED],
        &["with-backup", "local", "--", TYPED],
        &[&database, "backup", "local"],
        &[&backup_dir, "list"],
        &["keygen", "--out", TYPED],
        &["restore", "latest:local", "--to", &new_name],
    ];
    for args in cases {
        let run = sb.xtask(args);
        assert_nothing_forged(&run);
        assert!(
            !run.all().contains('\u{202e}') && !run.all().contains('\u{fffd}'),
            "{args:?}: the word reached the output unescaped or mangled:\n{}",
            run.all().escape_debug()
        );
        assert!(
            run.all().contains(TYPED_SHOWN) || run.all().contains(TYPED_QUOTED),
            "{args:?}: the word is not shown as typed, escaped:\n{}",
            run.all().escape_debug()
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "decoy");
}

#[test]
fn a_typed_word_clap_refuses_is_echoed_escaped() {
    let sb = Sandbox::new();
    let cases: [&[&str]; 3] = [&["list", TYPED], &["hooks", TYPED], &["completions", TYPED]];
    for args in cases {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert_nothing_forged(&run);
        assert!(
            !run.stderr.contains('\u{202e}') && run.stderr.contains(TYPED_SHOWN),
            "{args:?}: clap's error echoes the word unescaped:\n{}",
            run.stderr.escape_debug()
        );
    }
}

/// rvY 3: clap echoes fragments of a word (`-q<U+202E>abc`'s flags after
/// `q`) and one-character words, which the typed words escaped
/// ([`TYPED_SHOWN`]) do not hold, and its refusal was written as it was:
/// a bidi override, an OSC title write and a carriage return reached the
/// terminal raw. None does: no control or bidi character is in stderr.
#[test]
fn a_fragment_of_a_word_clap_refuses_never_reaches_the_terminal_raw() {
    let sb = Sandbox::new();
    let cases: [&[&str]; 3] = [&["-q\u{202e}abc"], &["-v\u{1b}]0;PWNED\u{7}"], &["\r"]];
    for args in cases {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        let raw = |c: char| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c);
        assert!(
            !run.stderr.contains(raw) && !run.stdout.contains(raw),
            "{args:?}: a control or bidi character reached the terminal:\n{}",
            run.stderr.escape_debug()
        );
        assert!(
            run.stderr.contains("error:"),
            "{}",
            run.stderr.escape_debug()
        );
    }
}

/// rvY 4: a typed word of line breaks alone (`verify --jsn $'\n\n'`) was
/// among the words shown escaped wherever a message holds them, so
/// clap's whole refusal was printed as one line, `\u{a}\u{a}` in place
/// of its blank lines. A word of whitespace alone is left to the
/// stripping every line gets: the refusal keeps its lines.
#[test]
fn a_typed_word_of_line_breaks_never_rewrites_a_message() {
    let sb = Sandbox::new();
    for word in ["\n\n", " \n", "\t\t"] {
        let run = sb.xtask(&["verify", "--jsn", word]);
        assert_eq!(run.code, Some(2), "{word:?}:\n{}", run.all());
        assert!(
            !run.stderr.contains("\\u{a}") && !run.stderr.contains("\\u{9}"),
            "{word:?}: a message was rewritten:\n{}",
            run.stderr
        );
        let lines = run.stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            lines >= 3,
            "{word:?}: the refusal lost its lines:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("--jsn"), "{}", run.stderr);
    }
}

/// A typed word a `--json` document carries (a `--table` name) is there as
/// typed, each character that does not print as itself written as a JSON
/// escape (`\u202e`): none reaches stdout raw, nor mangled into U+FFFD,
/// and the document reads back to the word typed.
#[test]
fn a_typed_word_in_a_json_document_is_escaped_and_reads_back_as_typed() {
    let sb = Sandbox::new();
    let args = ["diff", "live:local", "live:local", "--dry-run", "--json"];
    let run = sb.xtask(&[&args[..], &["--table", TYPED]].concat());
    run.assert_ok();
    let raw = |c: char| c == '\u{fffd}' || (c.is_control() && c != '\n') || c == '\u{202e}';
    assert!(
        !run.all().contains(raw) && run.stdout.contains("\\u202e"),
        "the typed --table reached the output raw or mangled:\n{}",
        run.all().escape_debug()
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["plan"]["tables"][0], TYPED, "{}", run.stdout);
}

/// The objects a restore's target holds are named in its plan (`drops`),
/// in its refusals and in its report: names another process or person gave
/// them, printed escaped as `diff` prints them. A table, a view and an
/// index named with a line break forged plan lines (`drops … table x⏎forged…`)
/// while the plan printed them as they were.
#[test]
fn a_restore_names_the_targets_objects_escaped_in_its_plan_and_its_run() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let backup = only_backup(&sb);
    sb.execute_sql(&format!(
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY);\n\
         CREATE VIEW {v} AS SELECT 1 AS one;\n\
         CREATE INDEX {i} ON accounts(id);\n",
        t = quoted_ident(HOSTILE),
        v = quoted_ident(&format!("v{HOSTILE}")),
        i = quoted_ident(&format!("i{HOSTILE}")),
    ));
    let path = sb.backups().join(&backup);
    let plan = sb.xtask(&[
        "-v",
        "restore",
        path.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    plan.assert_ok();
    assert_nothing_forged(&plan);
    assert!(
        plan.all().contains("forged: Result: SAME") || plan.all().contains("\\u{a}forged"),
        "the plan names the target's objects:\n{}",
        plan.all()
    );
    let run = restore_replacing(&sb, path.to_str().unwrap());
    run.assert_ok();
    assert_nothing_forged(&run);
}

/// A sandbox with a backup, and a directory `name` under backups/ as a
/// rehearsal leaves one that is removed when it ends.
fn with_a_rehearsals_directory(name: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let dir = sb.backups().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(".removed-when-done"), "").unwrap();
    sb
}

/// A `.rehearsal-*` directory under backups/ is named by `status` (one a
/// rehearsal left, or one it removes): a name with a line break printed a
/// forged `note:` line of its own.
#[test]
fn status_names_a_rehearsals_directory_escaped() {
    let sb = with_a_rehearsals_directory(".rehearsal-FAKE\nforged: note 99999");
    let run = sb.xtask(&["status"]);
    assert_nothing_forged(&run);
    let run = sb.xtask(&["list"]);
    assert_nothing_forged(&run);
}

/// LO: a killed rehearsal's directory whose name ends in a pid (so that
/// `status` removes it) and holds a line break: the note saying it was
/// removed printed a forged line of its own.
#[test]
fn status_names_a_killed_rehearsals_directory_it_removes_escaped() {
    let sb = with_a_rehearsals_directory(".rehearsal-X\nforged: prod backup deleted-999999");
    let run = sb.xtask(&["status"]);
    assert!(run.all().contains("removed"), "{}", run.all());
    assert_nothing_forged(&run);
}

/// LO: a manifest whose own name holds a line break is refused (its
/// file.name must print as itself), and the warning that refuses it
/// printed that name with the line break: `list`, `status` and `prune`
/// each printed a forged line.
#[test]
fn a_manifest_named_with_a_line_break_is_refused_by_an_escaped_name() {
    let (sb, name) = sandbox_with_a_backup();
    let stem = "backup-local-20261206-0601\nforged: x";
    let mut m = manifest_for(&sb, &name);
    m["file"]["name"] = format!("{stem}.sql").into();
    std::fs::copy(
        sb.backups().join(&name),
        sb.backups().join(format!("{stem}.sql")),
    )
    .unwrap();
    std::fs::write(
        sb.backups().join(format!("{stem}.manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    for args in [
        &["list"][..],
        &["status"],
        &["prune", "--env", "local", "--dry-run"],
    ] {
        let run = sb.xtask(args);
        assert!(run.all().contains("is ignored"), "{args:?}:\n{}", run.all());
        // A warning's lines after its first are indented: the name's line
        // break shows as a line that starts with the rest of the name.
        assert!(
            !run.all().contains("0601\n"),
            "{args:?} printed the manifest's name with its line break:\n{}",
            run.all()
        );
        assert_nothing_forged(&run);
    }
}

/// LO: a restore plan's `LOSES` line named a table of the target the
/// backup lacks in full, 10,000 characters of it: a name in a plan line is
/// cut, as `list -v` cuts a reason.
#[test]
fn a_restore_plan_cuts_a_long_table_name_it_loses() {
    let (sb, backup) = sandbox_with_a_backup();
    let long = "t".repeat(10_000);
    sb.execute_sql(&format!("CREATE TABLE {long} (id INTEGER PRIMARY KEY);\n"));
    let plan = replace_plan(&sb, &backup);
    let all = plan.all();
    let line = { all.lines() }
        .find(|l| l.contains("LOSES"))
        .unwrap_or_else(|| panic!("no LOSES line:\n{}", plan.all()))
        .to_owned();
    assert!(
        line.len() < 1_000,
        "the LOSES line is {} characters long",
        line.len()
    );
}

/// MY: file-controlled text is shown escaped, never stripped: a
/// `backups.toml` table named `pr`, an escape code and `od` was named
/// `[prod]`, an unknown environment `prod`, once the output's cleaning
/// dropped the escape code: a name that is not the table's.
#[test]
fn a_settings_table_named_with_an_escape_code_is_named_escaped_not_stripped() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("backups.toml"),
        "[\"pr\\u001b[0mod\".offsite]\nbucket = \"qbtime-d1-backups\"\n",
    )
    .unwrap();
    let run = sb.xtask(&["status", "--env", "prod"]);
    let all = run.all();
    assert!(all.contains("[pr\\u{1b}[0mod]"), "{all}");
    assert!(all.contains("`pr\\u{1b}[0mod`"), "{all}");
    assert!(!all.contains("[prod]") && !all.contains("`prod`"), "{all}");
    assert_nothing_forged(&run);
}

/// MY: a manifest named with an escape code that does not parse was
/// named escaped, then again with the escape code stripped (a name that is
/// not the file's) by the reason it is ignored: one fault, one name.
#[test]
fn a_manifest_named_with_an_escape_code_is_named_escaped_once() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups()
            .join("backup-local-20261206-2115\u{1b}[31m.manifest.json"),
        "",
    )
    .unwrap();
    let run = sb.xtask(&["list"]);
    let all = run.all();
    assert!(all.contains("is ignored"), "{all}");
    assert!(all.contains("2115\\u{1b}[31m.manifest.json"), "{all}");
    assert!(!all.contains("2115.manifest.json"), "{all}");
    assert_eq!(all.matches("2115").count(), 1, "{all}");
    assert_nothing_forged(&run);
}

/// OB 1: a table named with a space in the middle (`my child`) or at its
/// end (`parent `) was named unquoted in a finding: `my child references
/// parent ` reads as a table `my` and hides the space. `verify` of a dump
/// whose `my child` references `parent `, which the dump lacks, and the
/// refusal of its restore, name both quoted as SQL spells them.
#[test]
fn a_finding_quotes_a_table_named_with_a_space_in_it_or_at_its_end() {
    let sb = Sandbox::new();
    let dump = sb.path().join("spaced.sql");
    std::fs::write(
        &dump,
        "PRAGMA defer_foreign_keys=TRUE;\n\
         CREATE TABLE \"my child\"(id INTEGER PRIMARY KEY, \
         p INTEGER REFERENCES \"parent \"(id));\n\
         INSERT INTO \"my child\" VALUES(1,1);\n",
    )
    .unwrap();
    let dump = dump.to_str().unwrap();
    let quoted = "\"my child\" references \"parent \"";
    let verified = sb.xtask(&["verify", dump, "--no-manifest"]);
    assert_eq!(verified.code, Some(1), "{}", verified.all());
    assert!(verified.all().contains(quoted), "{}", verified.all());
    assert!(
        !verified.all().contains("my child references"),
        "{}",
        verified.all()
    );
    let args = [
        "restore",
        dump,
        "--to",
        "local",
        "--no-manifest",
        "--partial",
        "--dry-run",
    ];
    let refused = sb.xtask(&args);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let error = { refused.stderr.lines() }.find(|l| l.starts_with("error:"));
    let error = error.unwrap_or_else(|| panic!("{}", refused.all()));
    assert!(error.contains(quoted), "{error}");
}

/// rvBS 4: a table named `""` or `trail ` (SQLite takes both) printed in
/// `restore --replace`'s drops line as `table ` and `table trail `: a name
/// that is empty, or starts or ends in a space, reads as another. Every
/// line of the plan names them quoted, as SQL spells them.
#[test]
fn a_plan_quotes_a_table_named_empty_or_ending_in_a_space() {
    let (sb, backup) = sandbox_with_a_backup();
    sb.execute_sql("CREATE TABLE \"\" (x);\nCREATE TABLE \"trail \" (x);");
    // With -v, the drops line names every object, not the first ten.
    let plan = format!("-v restore {backup} --to local --replace --dry-run");
    let run = sb.xtask(&plan.split(' ').collect::<Vec<_>>());
    run.assert_ok();
    for needle in ["  drops ", "  LOSES "] {
        let line = run.stdout_line_with(needle);
        assert!(
            line.contains("table \"\",") && line.contains("table \"trail \""),
            "{line}"
        );
        assert!(!line.contains("table trail "), "{line}");
    }
}

/// OF 1: past OB's finding, names were still printed raw: verify's
/// foreign key row, `backup --table`'s refusal (a name to type again, so a
/// shell word) and diff's tables. `my table` and `parent ` read as other
/// tables there.
#[test]
fn verify_backup_and_diff_quote_a_table_named_with_a_space() {
    let sb = Sandbox::new();
    let dump = sb.path().join("spaced.sql");
    std::fs::write(
        &dump,
        "PRAGMA defer_foreign_keys=TRUE;\n\
         CREATE TABLE \"parent \"(id INTEGER PRIMARY KEY);\n\
         CREATE TABLE \"my child\"(id INTEGER PRIMARY KEY, \
         p INTEGER REFERENCES \"parent \"(id));\n\
         INSERT INTO \"parent \" VALUES(2);\n\
         INSERT INTO \"my child\" VALUES(1,1);\n",
    )
    .unwrap();
    let verified = sb.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(verified.code, Some(1), "{}", verified.all());
    assert!(
        verified
            .all()
            .contains("\"my child\" rowid 1 references a missing row of \"parent \""),
        "{}",
        verified.all()
    );
    sb.apply_migrations();
    sb.execute_sql("CREATE TABLE \"my table\" (id INTEGER PRIMARY KEY, v);\n");
    sb.execute_sql("INSERT INTO \"my table\" VALUES (1, 'a');\n");
    let refused = sb.xtask(&["backup", "local", "--table", "my tabl"]);
    assert_ne!(refused.code, Some(0), "{}", refused.all());
    let all = refused.all();
    assert!(all.contains("--table 'my tabl': no such table"), "{all}");
    assert!(all.contains("'my table'"), "{all}");
    sb.xtask(&["backup", "local"]).assert_ok();
    let backup = only_backup(&sb);
    sb.execute_sql("INSERT INTO \"my table\" VALUES (2, 'b');\n");
    let diff = sb.xtask(&["diff", &backup, "live:local"]);
    let all = diff.all();
    assert!(all.contains("\"my table\""), "{all}");
    assert!(!all.contains(" my table"), "{all}");
}

/// OK 3: past OF, the restore refusal's table list, the row-count findings
/// and the audit chain's were not shown to quote a name as SQL spells it.
/// Tables `my table` and `odd "q"`: a restore into the local D1 that holds
/// them is refused naming both quoted (with -v, every table: the refusal
/// named the first ten, with -v too), a manifest recording other row
/// counts for them is a finding naming both quoted, and an audit chain
/// declared on `my table` with columns `prev hash` and `odd "q"` it lacks
/// names the table and the columns quoted.
#[test]
fn a_restore_refusal_row_counts_and_the_audit_chain_quote_names_with_a_space_or_a_quote() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE \"my table\" (id INTEGER PRIMARY KEY, note TEXT);\n\
         CREATE TABLE \"odd \"\"q\"\"\" (id INTEGER PRIMARY KEY);\n\
         INSERT INTO \"my table\" VALUES (1, 'a');\n\
         INSERT INTO \"odd \"\"q\"\"\" VALUES (1);\n",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let backup = only_backup(&sb);
    let (spaced, quoted) = ("\"my table\"", "\"odd \"\"q\"\"\"");
    let raw = |all: &str| all.contains(" my table") || all.contains("odd \"q\"");
    // With -v, the refusal names every table, as a plan does, not the
    // first ten (the migrations' come first).
    let refused = sb.xtask(&["-v", "restore", &backup, "--to", "local", "--dry-run"]);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let error = { refused.stderr.lines() }.find(|l| l.starts_with("error:"));
    let error = error.unwrap_or_else(|| panic!("{}", refused.all()));
    assert!(
        error.contains(spaced) && error.contains(quoted) && !raw(error),
        "{error}"
    );
    let manifest = sb
        .path()
        .join("backups")
        .join(backup.replace(".sql", ".manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["rows"]["my table"] = 7.into();
    m["rows"]["odd \"q\""] = 9.into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let settings = sb.path().join("backups.toml");
    let toml = std::fs::read_to_string(&settings).unwrap();
    let edited = toml
        .replace("table = \"audit_log\"", "table = \"my table\"")
        .replace("prev_hash = \"prev_hash\"", "prev_hash = \"prev hash\"")
        .replace("\nhash = \"hash\"", "\nhash = 'odd \"q\"'");
    assert_ne!(toml, edited);
    std::fs::write(&settings, edited).unwrap();
    let verified = sb.xtask(&["verify", &backup]);
    assert_eq!(verified.code, Some(1), "{}", verified.all());
    let rows = verified.stdout_line_with("rows");
    for said in [
        format!("{spaced}: expected 7, found 1"),
        format!("{quoted}: expected 9, found 1"),
    ] {
        assert!(rows.contains(&said) && !raw(rows), "{said}: {rows}");
    }
    let audit = verified.stdout_line_with("audit chain");
    assert!(
        audit.contains(&format!("{spaced} does not have the shape"))
            && audit.contains(&format!("\"prev hash\", {quoted}"))
            && !raw(audit),
        "{audit}"
    );
}
