//! atkAY: the README read as a contract. Each test takes one concrete claim
//! of the README ("Exit codes", `with-backup`, `drill`) and checks it as an
//! operator would meet it, through the real xtask and local D1.
//!
//! Found by them:
//! - `verify` in a backup directory others can write to is refused with
//!   exit 2 ("the verification could not run"), where the README's table
//!   gives such a directory 3 ("refused by a guard"), as `backup`,
//!   `restore` and `with-backup` give it;
//! - a `drill` in such a directory exits 1 and logs a FAIL row for the
//!   backup (its restore "failed") in docs/restore-drills.md, though no
//!   restore ran: the guard refused it, as the held lock does, which is 4
//!   and logs nothing;
//! - `with-backup` given a command that exists but is not executable says
//!   "no such program" and exits 127; a shell (which the README says the
//!   codes follow) says "Permission denied" and exits 126;
//! - `status` in such a directory reports its newest backup ok, silently,
//!   though `doctor` fails on it and every backup refuses it;
//! - the pre-commit hook lets a dump through when a byte order mark or a
//!   blank line comes before its header, though `verify` and `restore` read
//!   it as a dump;
//! - a span of a number without a unit is answered "write 1d for 1 days".

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn open_to_everyone(sb: &Sandbox) {
    std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// README "Exit codes": 3 is "refused by a guard: … a backup directory
/// others can write to". `backup`, `restore` and `with-backup` give it 3;
/// `verify`, which reads a backup and rewrites its manifest there, gives 2.
#[test]
fn verify_in_a_backup_directory_others_can_write_to_is_refused_with_the_guards_code() {
    let (sb, name) = sandbox_with_a_backup();
    open_to_everyone(&sb);
    // The guard holds for the commands that write a backup…
    let restore = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    assert_eq!(restore.code, Some(3), "{}", restore.all());
    assert!(restore.stderr.contains("writable by other users"));
    // …and verify says the same, with another code.
    for backup in [name.as_str(), "latest:local"] {
        let run = sb.xtask(&["verify", backup]);
        assert!(
            run.stderr.contains("writable by other users"),
            "verify {backup}: {}",
            run.all()
        );
        assert_eq!(
            run.code,
            Some(3),
            "verify {backup} in a backup directory others can write to is refused by a guard \
             (README \"Exit codes\": 3), as restore refuses it, not 'could not run' (2):\n{}",
            run.all()
        );
    }
}

/// A drill that a guard stops before its restore runs did not rehearse
/// anything: README "Exit codes" gives the refusal 3, and a drill so stopped
/// (the held lock's case) is not logged. In a backup directory others can
/// write to, the drill verifies the backup, is refused at the restore, exits
/// 1 and appends a row that says the backup's restore FAILED.
#[test]
fn a_drill_refused_for_a_backup_directory_others_can_write_to_exits_3_and_logs_no_failure() {
    let (sb, name) = sandbox_with_a_backup();
    open_to_everyone(&sb);
    let log_before =
        std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap_or_default();
    let run = sb.xtask(&["drill", "--from", "local", "--to", "local", "--yes"]);
    assert!(
        run.stderr.contains("writable by other users"),
        "{}",
        run.all()
    );
    let log_after =
        std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap_or_default();
    let new_rows: Vec<&str> = log_after
        .lines()
        .filter(|l| !log_before.contains(*l) && l.contains(&name))
        .collect();
    assert!(
        new_rows.is_empty(),
        "a drill refused by the backup directory's guard logged {name} as rehearsed:\n{}",
        new_rows.join("\n")
    );
    assert_eq!(
        run.code,
        Some(3),
        "a drill stopped by a guard before anything ran is a refusal (README \"Exit codes\": 3), \
         not a failed drill (1):\n{}",
        run.all()
    );
}

/// README `with-backup`: "127 when the command cannot be started and 128+N
/// when a signal stopped it, as a shell does". A script that is there but
/// not executable (a forgotten `chmod +x`) is 126 in a shell, "Permission
/// denied"; with-backup tells the operator there is "no such program".
#[test]
fn with_backup_says_a_command_that_is_there_but_not_executable_is_not_executable() {
    let sb = Sandbox::new();
    let script = sb.path().join("task.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shell = std::process::Command::new("sh")
        .args(["-c", "./task.sh"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    let run = sb.xtask(&["with-backup", "local", "--", "./task.sh"]);
    assert!(
        !run.stderr.contains("no such program"),
        "./task.sh is there (mode 644): the message must not send the operator looking for a \
         typo:\n{}",
        run.all()
    );
    assert_eq!(
        run.code,
        shell.status.code(),
        "a shell gives {:?} for a command that is there but not executable:\n{}",
        shell.status.code(),
        run.all()
    );
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// rvAF: a script whose `#!` interpreter is missing (`#!/usr/bin/pyhton3`,
/// or `#!/usr/bin/env` and a name on no PATH) got a backup, kept a week,
/// then "No such file or directory ... check the program name and PATH"
/// and 127, though the script is there. Now it is refused before any
/// backup, naming the script and its interpreter, 127 as a shell gives.
#[test]
fn with_backup_refuses_a_script_whose_interpreter_is_missing_before_its_backup() {
    let sb = Sandbox::new();
    for (script, interpreter) in [
        ("direct.sh", "/nonexistent/pyhton3"),
        ("env.sh", "/usr/bin/env no-such-interpreter-rvaf"),
    ] {
        let path = sb.path().join(script);
        std::fs::write(&path, format!("#!{interpreter}\nprint('hi')\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let shown = format!("./{script}");
        let shell = std::process::Command::new("sh")
            .args(["-c", &shown])
            .current_dir(sb.path())
            .output()
            .unwrap();
        let run = sb.xtask(&["with-backup", "local", "--", &shown]);
        assert_eq!(run.code, shell.status.code(), "{}", run.all());
        let named = interpreter.rsplit([' ', '/']).next().unwrap();
        assert!(
            run.stderr.contains(script) && run.stderr.contains(named),
            "the refusal does not name {script} and its interpreter {named}:\n{}",
            run.all()
        );
        assert!(
            sb.backup_files().is_empty(),
            "a backup was taken for {script}, which cannot run: {:?}",
            sb.backup_files()
        );
    }
}

/// rvAJ: a script whose `#!` interpreter is there but not executable was
/// refused with 127 and "No such file or directory"; a shell says
/// "Permission denied" and 126. Now it is said to be not executable, with
/// the shell's code, and no backup is taken.
#[test]
fn with_backup_says_a_scripts_interpreter_is_not_executable_when_it_is_there() {
    let sb = Sandbox::new();
    let interpreter = sb.path().join("interp-kd");
    std::fs::write(&interpreter, "").unwrap();
    std::fs::set_permissions(&interpreter, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = sb.path().join("plain.sh");
    std::fs::write(&path, format!("#!{}\nexit 0\n", interpreter.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shell = std::process::Command::new("sh")
        .args(["-c", "./plain.sh"])
        .current_dir(sb.path())
        .output()
        .unwrap();
    let run = sb.xtask(&["with-backup", "local", "--", "./plain.sh"]);
    assert_eq!(run.code, shell.status.code(), "{}", run.all());
    assert!(
        run.stderr.contains("interp-kd") && run.stderr.contains("not executable"),
        "{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("No such file"),
        "the interpreter is there:\n{}",
        run.all()
    );
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// A with-backup of local whose command fails (exit 3) after the words
/// that make it a line running `sshpass`; a test adds its credentials.
const FAILING_SSHPASS: [&str; 7] = [
    "with-backup",
    "local",
    "--",
    "sh",
    "-c",
    "exit 3",
    "sshpass",
];

/// rvAF: with-backup's command line is printed ("Running:", the failure)
/// and stored in the backup's manifest as its reason, which `upload`
/// copies to R2. Credentials on it went by shape only: `sshpass -p`,
/// `--auth user:pw`, GitHub, OpenAI and Slack tokens, and the value of a
/// `*_TOKEN` variable passed as an argument were all kept. None is now in
/// the output nor in the manifest.
#[test]
fn with_backup_keeps_command_line_credentials_out_of_output_and_manifest() {
    let sb = Sandbox::new();
    let from_env = "zq8Lr2Vt9bWmK4";
    let secrets = [
        "hunter2hunter2",
        "admin:pwpwpwpw",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "xoxb-1234567890-abcdefghijklmnop",
        from_env,
    ];
    let mut command = FAILING_SSHPASS.to_vec();
    command.extend(["-p", secrets[0], "--auth", secrets[1]]);
    command.extend(&secrets[2..]);
    let run = Run::from_output(
        sb.xtask_command(&command)
            .env("QBTIME_DEPLOY_TOKEN", from_env)
            .output()
            .unwrap(),
    );
    kept_out(&sb, &run, &secrets);
}

/// with-backup's command (`sh -c 'exit 3' sshpass …`) failed with its
/// exit, is shown and recorded in a manifest, and no `secrets` is in either.
fn kept_out(sb: &Sandbox, run: &Run, secrets: &[&str]) {
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.all().contains("sshpass"), "{}", run.all());
    let manifests: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".json"))
        .map(|f| std::fs::read_to_string(sb.backups().join(f)).unwrap())
        .collect();
    assert!(
        manifests.iter().any(|m| m.contains("sshpass")),
        "no manifest records the command: {:?}",
        sb.backup_files()
    );
    for secret in secrets {
        assert!(
            !run.all().contains(secret),
            "{secret} is printed:\n{}",
            run.all()
        );
        for m in &manifests {
            assert!(!m.contains(secret), "{secret} is in the manifest:\n{m}");
        }
    }
}

/// rvAJ: with-backup shows its command quoted for the shell, so a
/// password holding `$` or `!` stands in quotes (`-p 'Pa$$w0rd!'`,
/// `'-pPa$$w0rd!'`); a secret-named variable's value sits next to
/// punctuation (`deploy $T;notify`), and a webhook's URL is one. None is
/// printed nor recorded in the manifest.
#[test]
fn with_backup_keeps_quoted_and_punctuated_credentials_out_of_output_and_manifest() {
    let sb = Sandbox::new();
    let (token, hook) = (
        "zq8Lr2Vt9bWmK4",
        "https://hooks.slack.com/services/T0001/B0002/Xq9sLr2Vt9bWmK4zz",
    );
    let deploy = format!("deploy {token};notify {hook}");
    let mut command = FAILING_SSHPASS.to_vec();
    command.extend(["-p", "Pa$$w0rd!", "-pPa$$w0rd2!", &deploy]);
    let run = Run::from_output(
        { sb.xtask_command(&command) }
            .env("QBTIME_DEPLOY_TOKEN", token)
            .env("SLACK_WEBHOOK_SECRET", hook)
            .output()
            .unwrap(),
    );
    kept_out(&sb, &run, &["w0rd", token, "T0001", "Xq9sLr2Vt9bWmK4zz"]);
}

/// A directory on PATH named like the command (a checkout's `bin/task/`
/// before the `bin/` that holds `task`) is passed over, as a shell passes it
/// over: the command runs, after its backup, and exits as the shell's run
/// of it does; a name found only as a directory is "not found" (127).
#[test]
fn with_backup_passes_over_a_directory_on_path_as_a_shell_does() {
    let sb = Sandbox::new();
    let first = sb.path().join("first");
    let second = sb.path().join("second");
    std::fs::create_dir_all(first.join("task")).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let script = second.join("task");
    std::fs::write(&script, "#!/bin/sh\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        first.display(),
        second.display(),
        std::env::var("PATH").unwrap()
    );
    let shell = |name: &str| {
        std::process::Command::new("sh")
            .args(["-c", name])
            .env("PATH", &path)
            .current_dir(sb.path())
            .output()
            .unwrap()
            .status
            .code()
    };
    let run = Run::from_output(
        sb.xtask_command(&["with-backup", "local", "--", "task"])
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(shell("task"), Some(7));
    assert_eq!(
        run.code,
        Some(7),
        "the script on PATH after the directory runs:\n{}",
        run.all()
    );
    let dumps = || {
        sb.backup_files()
            .into_iter()
            .filter(|f| f.ends_with(".sql"))
            .count()
    };
    assert_eq!(dumps(), 1, "{:?}", sb.backup_files());

    std::fs::remove_file(&script).unwrap();
    let run = Run::from_output(
        sb.xtask_command(&["with-backup", "local", "--", "task"])
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, shell("task"), "{}", run.all());
    assert_eq!(run.code, Some(127), "{}", run.all());
    assert!(run.stderr.contains("no such program"), "{}", run.all());
    assert_eq!(dumps(), 1, "no second backup: {:?}", sb.backup_files());
}

/// README "Spans": a unit-less number is refused with the form to use
/// instead. The advice reads "write 1d for 1 days".
#[test]
fn a_span_without_a_unit_is_told_in_english() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["prune", "--dry-run", "--keep-within", "1"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("write 1d for"), "{}", run.all());
    assert!(
        !run.stderr.contains("1 days"),
        "\"1 days\" in the advice:\n{}",
        run.all()
    );
}

/// README `status`: "A cron job or an uptime monitor can run it and alert
/// on a backup job that silently stopped or went bad", and "Keep the backup
/// directory private (the tool refuses one others can write to)"; `doctor`
/// fails on such a directory. `status` reads it and calls its newest backup
/// fresh and ok, without a word: anyone who can write there can plant a
/// "verified" backup and manifest that keep the monitor green.
#[test]
fn status_never_calls_a_backup_directory_others_can_write_to_ok_without_a_word() {
    let (sb, _name) = sandbox_with_a_backup();
    open_to_everyone(&sb);
    let doctor = sb.xtask(&["doctor"]);
    assert!(
        !doctor.ok && doctor.all().contains("writable by other users"),
        "{}",
        doctor.all()
    );
    let status = sb.xtask(&["status", "--env", "local"]);
    assert!(
        !status.ok || status.stderr.contains("writable by other users"),
        "status calls the newest backup in a backup directory others can write to ok, and says \
         nothing of the directory (exit {:?}):\n{}",
        status.code,
        status.all()
    );
}

/// README `hooks install`: the pre-commit hook refuses "a file that starts
/// with the D1 export header". A dump saved by an editor that writes a byte
/// order mark first (Notepad's UTF-8), or with a blank line before its
/// header, is one the tool itself verifies and restores as a dump (README
/// "Trust boundary": a byte order mark before the first line is not part of
/// a statement), and the hook lets it into a commit: customer rows in git.
#[test]
fn the_pre_commit_hook_refuses_a_dump_the_tool_itself_restores_whatever_precedes_its_header() {
    let (sb, name) = sandbox_with_a_backup();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let dump = std::fs::read(sb.backups().join(&name)).unwrap();
    let mut with_bom = b"\xef\xbb\xbf".to_vec();
    with_bom.extend_from_slice(&dump);
    let mut after_a_blank_line = b"\n".to_vec();
    after_a_blank_line.extend_from_slice(&dump);
    for (path, content) in [
        ("notes/saved-in-notepad.txt", with_bom),
        ("notes/pasted.txt", after_a_blank_line),
    ] {
        let full = sb.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, &content).unwrap();
        // The tool reads it as the dump it is.
        sb.xtask(&["verify", full.to_str().unwrap(), "--no-manifest"])
            .assert_ok();
        sb.git(&["add", "-f", path]).assert_ok();
        let commit = sb.git(&["commit", "-q", "-m", "notes"]);
        assert!(
            !commit.ok,
            "the pre-commit hook let {path}, a D1 export that `verify` and `restore` take as one, \
             into a commit:\n{}",
            commit.all()
        );
        sb.git(&["reset", "-q"]).assert_ok();
        std::fs::remove_file(&full).unwrap();
    }
    // Saved as UTF-16 (Windows PowerShell's `dump > file`), either byte
    // order: the tool names it UTF-16 and the conversion, and its rows are
    // still customer data that the hook keeps out of git.
    let text = String::from_utf8(dump).unwrap();
    let le: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for (path, content) in [("notes/ps-le.txt", le), ("notes/ps-be.txt", be)] {
        let full = sb.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, &content).unwrap();
        let verify = sb.xtask(&["verify", full.to_str().unwrap(), "--no-manifest"]);
        assert!(
            verify.all().contains("it is UTF-16 text")
                && verify.all().contains("iconv -f UTF-16 -t UTF-8"),
            "{}",
            verify.all()
        );
        sb.git(&["add", "-f", path]).assert_ok();
        let commit = sb.git(&["commit", "-q", "-m", "notes"]);
        assert!(
            !commit.ok && commit.stderr.contains(path),
            "the pre-commit hook let {path}, a D1 export saved as UTF-16, into a commit:\n{}",
            commit.all()
        );
        sb.git(&["reset", "-q"]).assert_ok();
        std::fs::remove_file(&full).unwrap();
    }
}
