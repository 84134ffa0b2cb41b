//! The commands that got less attention than backup and restore, attacked
//! by someone who can write any file they read (the tracked hooks, the
//! wrangler configuration): `hooks install` and `deploy`. Each hostile run
//! leaves the files outside the tool's own directories as they were.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::decoys::Decoys;
use common::remote::*;
use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn hooks_path(sb: &Sandbox) -> String {
    sb.git(&["config", "--get", "core.hooksPath"])
        .stdout
        .trim()
        .to_owned()
}

/// `hooks install` makes the tracked hooks executable. A hook that git
/// checks out as a symbolic link (git stores links, so a pull request can
/// make `scripts/git-hooks/pre-commit` one) led that `chmod` out of the
/// checkout: a private file elsewhere (an age identity, mode 600) was made
/// 755, readable by everyone, and git was then pointed at it. The same
/// through `scripts/git-hooks` itself linked to a directory outside. Both
/// are refused (exit 3), with nothing changed: the file's mode, its
/// contents, and core.hooksPath.
#[test]
fn hooks_install_never_changes_a_file_outside_the_checkout_through_a_linked_hook() {
    let sb = Sandbox::new();
    let decoys = Decoys::plant(sb.path());
    let identity = decoys.outside("victim");
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hook = sb.path().join("scripts/git-hooks/pre-commit");
    std::fs::remove_file(&hook).unwrap();
    std::os::unix::fs::symlink(&identity, &hook).unwrap();
    let before = decoys.hashes();

    let run = sb.xtask(&["hooks", "install"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("scripts/git-hooks/pre-commit") && run.stderr.contains("link"),
        "{}",
        run.all()
    );
    assert_eq!(mode(&identity), 0o600, "the file outside was made readable");
    assert_eq!(hooks_path(&sb), "", "changed though refused");
    assert_eq!(decoys.hashes(), before);

    // The hooks directory itself linked out of the checkout.
    let hooks = sb.path().join("scripts/git-hooks");
    let elsewhere = decoys.outside("nested");
    for name in ["pre-commit", "pre-push"] {
        let file = elsewhere.join(name);
        std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::remove_dir_all(&hooks).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &hooks).unwrap();
    let run = sb.xtask(&["hooks", "install"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    for name in ["pre-commit", "pre-push"] {
        assert_eq!(
            mode(&elsewhere.join(name)),
            0o600,
            "{name} outside was changed"
        );
    }
    assert_eq!(hooks_path(&sb), "", "changed though refused");
}

/// A tracked hook that is a hard link to a file outside the checkout
/// (mode 640): `hooks install` made that file 750 through it, exit 0
/// (rvCL 3). Refused as a link (exit 3), as every file the tool writes or
/// chmods: the file outside keeps its mode and contents, core.hooksPath
/// is not set.
#[test]
fn hooks_install_never_chmods_a_file_outside_through_a_hard_linked_hook() {
    let sb = Sandbox::new();
    let decoys = Decoys::plant(sb.path());
    let outside = decoys.outside("o");
    std::fs::write(&outside, "x").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o640)).unwrap();
    let hook = sb.path().join("scripts/git-hooks/pre-commit");
    std::fs::remove_file(&hook).unwrap();
    std::fs::hard_link(&outside, &hook).unwrap();
    let before = decoys.hashes();

    let run = sb.xtask(&["hooks", "install"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("pre-commit") && run.stderr.contains("hard link"),
        "{}",
        run.all()
    );
    assert_eq!(mode(&outside), 0o640, "the file outside was chmodded");
    assert_eq!(decoys.hashes(), before);
    assert_eq!(hooks_path(&sb), "", "changed though refused");
}

/// A tracked hook checked out without its executable bit (a `chmod` lost
/// in a zip download) is made executable only for those who can read it:
/// a private one stays private.
#[test]
fn hooks_install_makes_a_private_hook_executable_without_making_it_readable_to_others() {
    let sb = Sandbox::new();
    let hook = sb.path().join("scripts/git-hooks/pre-push");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o600)).unwrap();
    sb.xtask(&["hooks", "install"]).assert_ok();
    assert_eq!(mode(&hook), 0o700);
    assert_eq!(hooks_path(&sb), "scripts/git-hooks");
}

/// `hooks install` refused over the hooks git already runs (a
/// `.git/hooks/pre-commit`), saying "Nothing was changed", after it had
/// made the tracked hooks executable: a hook checked out without its
/// executable bit was left 0755, a change git shows as the hook's mode
/// changed. A refusal changes no hook's mode.
#[test]
fn hooks_install_refused_over_the_hooks_git_runs_leaves_the_tracked_hooks_as_they_were() {
    let sb = Sandbox::new();
    let ours = sb.path().join("scripts/git-hooks/pre-commit");
    std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o644)).unwrap();
    let theirs = sb.path().join(".git/hooks/pre-commit");
    std::fs::write(&theirs, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run = sb.xtask(&["hooks", "install"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    run.assert_refused("Nothing was changed");
    assert_eq!(mode(&ours), 0o644, "the refusal changed the hook's mode");
    assert_eq!(hooks_path(&sb), "", "changed though refused");
    // Installed with --replace, it is made executable.
    sb.xtask(&["hooks", "install", "--replace"]).assert_ok();
    assert_eq!(mode(&ours), 0o755);
}

/// The pre-commit hook told a dump by its name or its first bytes, and a
/// compressed one only by a backup's name: a compressed backup copied
/// under another name (`ops/prod.zst`), or a hand export gzipped as
/// `prod.sql.gz`, was committed with every row, its bytes only packed. A
/// zstd-compressed file (as every compressed backup is) and a gzip one
/// that unpacks to a dump are refused; a gzip one of anything else is not.
#[test]
fn the_pre_commit_hook_refuses_a_compressed_dump_whatever_its_name() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read(sb.backups().join(name)).unwrap();
    // As `backup --compress` stores it.
    let packed = zstd::stream::encode_all(&dump[..], 3).unwrap();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let gzip = |bytes: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let commit = |path: &str, content: &[u8]| sb.try_commit(path, content);
    for (path, content, why) in [
        ("ops/prod.zst", packed, "zstd"),
        ("ops/prod.gz", gzip(&dump), "gzip"),
    ] {
        let run = commit(path, &content);
        assert!(!run.ok, "{path} was committed:\n{}", run.all());
        assert!(
            run.stderr.contains(path) && run.stderr.contains(why),
            "{path}:\n{}",
            run.all()
        );
    }
    commit("site/notes.txt.gz", &gzip(b"release notes\n")).assert_ok();
    // HU: an age identity in a gzip file is searched for unpacked too (in
    // two halves, so that the hook lets this test file itself in).
    let plugin = concat!("AGE-PLUGIN-", "YUBIKEY-1QYQ3Z6W5QXSQZ8AWMCVY82PC7\n");
    let run = commit("site/key.txt.gz", &gzip(plugin.as_bytes()));
    assert!(
        !run.ok && run.stderr.contains("site/key.txt.gz") && run.stderr.contains("age identity"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains("QYQ3Z6W5"), "{}", run.all());
}

/// JB 3: the pre-commit hook unpacked a staged gzip file without bound: a
/// bomb (1 MiB that unpacks to 1 GiB) was read whole, twice, and
/// committed. What it unpacks is bounded at deploy's 200 MiB, and such a
/// file is refused as too large to check, named, with how to commit it if
/// it is meant to be; a file outside the repository is unchanged.
#[test]
fn the_pre_commit_hook_refuses_a_gzip_bomb_as_too_large_to_check() {
    let (sb, _) = sandbox_with_a_backup();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let outside = tempfile::tempdir().unwrap();
    let decoy = outside.path().join("decoy.txt");
    std::fs::write(&decoy, "decoy\n").unwrap();
    let run = sb.try_commit("site/data.bin.gz", &gzip_of_blocks(1024));
    let told = ["site/data.bin.gz", "too large to check", "--no-verify"];
    assert!(
        !run.ok && told.iter().all(|t| run.stderr.contains(t)),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "decoy\n");
    sb.try_commit("site/small.bin.gz", &gzip_of_blocks(8))
        .assert_ok();
}

/// `bytes` gzip-compressed (as `gzip -9`).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut packed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    packed.write_all(bytes).unwrap();
    packed.finish().unwrap()
}

/// A gzip file of `blocks` members, each 1 MiB of blanks packed alone:
/// 1024 of them (about 1 MiB) unpack to 1 GiB, a bomb.
fn gzip_of_blocks(blocks: usize) -> Vec<u8> {
    let mut block = vec![b' '; (1 << 20) - 1];
    block.push(b'\n');
    gzip(&block).repeat(blocks)
}

/// A PEM private key, built from halves so that none stands in this file.
fn pem_key() -> String {
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    format!(
        "{}\n{body}\nAbCd==\n{}\n",
        ["-----BEGIN OPENSSH PRIVATE ", "KEY-----"].concat(),
        ["-----END OPENSSH PRIVATE ", "KEY-----"].concat()
    )
}

/// Writes `content` to `path` in the sandbox and stages it, ignored or not.
fn stage(sb: &Sandbox, path: &str, content: &[u8]) {
    let full = sb.path().join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(&full, content).unwrap();
    sb.git(&["add", "-f", "--", path]).assert_ok();
}

/// JM 1 (rvAE): a commit staging a gzip bomb beside a private key and a
/// backup was refused for the bomb alone, "commit it with `git commit
/// --no-verify`": which commits the key and the backup too, unchecked.
/// Every refusal is named, and `--no-verify` offered only when the
/// too-large file is the only one, saying that it skips every check and
/// to commit that file alone; a bomb named as a backup is refused as one.
#[test]
fn the_pre_commit_hook_names_every_refusal_beside_a_gzip_bomb() {
    let sb = Sandbox::new();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let bomb = gzip_of_blocks(1024);
    stage(&sb, "logs.gz", &bomb);
    stage(&sb, "deploy/id_ed25519", pem_key().as_bytes());
    stage(&sb, "ops/backup-prod.sql", b"-- nothing\n");
    let commit = || sb.git(&["commit", "-q", "-m", "try"]);
    let refused = |told: &[&str], advised: bool| {
        let run = commit();
        assert!(
            !run.ok && told.iter().all(|t| run.stderr.contains(t)),
            "{told:?}:\n{}",
            run.all()
        );
        assert_eq!(
            run.stderr.contains("--no-verify"),
            advised,
            "{told:?}:\n{}",
            run.all()
        );
    };
    let large = ["  logs.gz\n", "too large to check"];
    let key = ["deploy/id_ed25519: ", "PEM private key"];
    refused(
        &[&large[..], &key, &["ops/backup-prod.sql: "]].concat(),
        false,
    );
    sb.git(&["rm", "-q", "--cached", "--", "ops/backup-prod.sql"])
        .assert_ok();
    refused(&[large, key].concat(), false);
    sb.git(&["rm", "-q", "--cached", "--", "deploy/id_ed25519"])
        .assert_ok();
    refused(&[&large[..], &["skips every check"]].concat(), true);
    sb.git(&["rm", "-q", "--cached", "--", "logs.gz"])
        .assert_ok();
    stage(&sb, "ops/backup-prod.sql.gz", &bomb);
    refused(&["ops/backup-prod.sql.gz: ", "name is a"], false);
}

/// JM 2 (rvAE): the hook read a staged file as `git cat-file -p
/// ":<name>"`, and git reads `:0:prod.sql` as stage 0 of `prod.sql`: a
/// file named `0:prod.sql` (a wrangler export), `1:id_rsa` (a key),
/// `0:notes.gz` or `2:key.txt` was read as another, missing, file and
/// committed unchecked. Each is read as itself, and refused.
#[test]
fn the_pre_commit_hook_reads_a_name_like_an_index_stage_as_itself() {
    let sb = Sandbox::new();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let export =
        std::fs::read(repo_root().join("crates/d1-loopback/tests/fixtures/dump_expected.sql"))
            .unwrap();
    let utf16 = |text: &str| {
        let units = std::iter::once(0xfeff).chain(text.encode_utf16());
        units.flat_map(u16::to_le_bytes).collect::<Vec<u8>>()
    };
    let mut wrong = Vec::new();
    for (path, content, why) in [
        ("0:prod.sql", export.clone(), "wrangler d1 export header"),
        ("1:id_rsa", pem_key().into_bytes(), "PEM private key"),
        ("0:notes.gz", gzip(&export), "gzip-compressed, and unpacked"),
        ("2:key.txt", utf16(&pem_key()), "PEM private key"),
    ] {
        let run = sb.try_commit(path, &content);
        if run.ok || !run.stderr.contains(&format!("{path}: ")) || !run.stderr.contains(why) {
            wrong.push(format!("{path}: not refused with {why:?}:\n{}", run.all()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// JM 3 (rvAE): the hook's `awk` program that tells a PEM key cut its line
/// after each `-----BEGIN ` it found, and its blanks one at a time, a copy
/// of the rest each time: one long line of markers (or of blanks after
/// one) took it hours. A 5 MB line of markers before a key, or of blanks
/// between a marker and a key, is refused; of markers alone, committed.
#[test]
fn the_pre_commit_hook_reads_a_long_line_of_pem_markers_through() {
    let sb = Sandbox::new();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let begin = ["-----BEGIN PRIVATE ", "KEY-----"].concat();
    let markers = "-----BEGIN ".repeat((5 << 20) / 11);
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let blanks = " ".repeat(5 << 20);
    for (path, text) in [
        ("notes/markers.txt", format!("{markers}{}", pem_key())),
        ("notes/blanks.txt", format!("{begin}{blanks}{body}\n")),
    ] {
        let run = sb.try_commit(path, text.as_bytes());
        assert!(
            !run.ok
                && run.stderr.contains(&format!("{path}: "))
                && run.stderr.contains("PEM private key"),
            "{path} was committed:\n{}",
            &run.stderr[..run.stderr.len().min(2000)]
        );
    }
    let labels = begin.repeat((5 << 20) / begin.len());
    sb.try_commit("notes/labels.txt", format!("{labels}\n").as_bytes())
        .assert_ok();
}

/// rvAO 1: the pre-commit hook searched the whole index for an age
/// identity, so a repository whose sources already hold a test's fixture
/// identity (this one's do) had every commit refused, a harmless one too,
/// with advice to `git rm --cached` those files and make a new key; the
/// only way on was `--no-verify`, which skips the backup checks too. The
/// hook judges what the commit adds: a file changed or renamed beside a
/// committed identity is committed (the tracked one warned of); an
/// identity on an added line, in a new file or a changed one, and a backup
/// are still refused, with `git restore --staged` as the way back.
#[test]
fn the_pre_commit_hook_judges_what_a_commit_adds_not_the_keys_already_committed() {
    let sb = Sandbox::new();
    // Built from halves, so that no identity stands in this file.
    let key = ["AGE-SECRET-KEY-1", &"GFPYYSJZ".repeat(7), "GFPQ4EGAEX"].concat();
    let fixture = format!("const KEY: &str = \"{key}\";\n");
    // Committed before the hook was installed, as this repository's are.
    sb.try_commit("src/fixture.rs", fixture.as_bytes())
        .assert_ok();
    sb.xtask(&["hooks", "install"]).assert_ok();
    sb.try_commit("notes.txt", b"release notes\n").assert_ok();
    let changed = format!("{fixture}// a line beside the fixture\n");
    sb.try_commit("src/fixture.rs", changed.as_bytes())
        .assert_ok();
    sb.git(&["mv", "src/fixture.rs", "src/keys.rs"]).assert_ok();
    sb.git(&["commit", "-q", "-m", "rename"]).assert_ok();
    let refused = |path: &str, content: &[u8], why: &str| {
        let run = sb.try_commit(path, content);
        assert!(
            !run.ok && run.stderr.contains(&format!("{path}: ")) && run.stderr.contains(why),
            "{path} was not refused with {why:?}:\n{}",
            run.all()
        );
        assert!(run.stderr.contains("git restore --staged"), "{}", run.all());
        assert!(!run.all().contains("GFPYYSJZ"), "{}", run.all());
    };
    refused("ops/backup-prod.sql", b"-- nothing\n", "name is a backup's");
    refused(
        "keys/new.txt",
        format!("{key}\n").as_bytes(),
        "age identity",
    );
    let added = format!("{changed}const B: &str = \"{}\";\n", key.to_lowercase());
    refused("src/keys.rs", added.as_bytes(), "age identity");
}

/// IE 2: the pre-commit hook was bypassed three ways: a staged name that
/// is a glob (`notes[1].sql`) was read as the committed file it matched
/// (`notes1.sql`), so the dump was never checked; a symbolic link replaced
/// by a file (a change of type) was not checked at all; and a zstd file
/// that starts with a skippable frame (as `pzstd` writes it) was not told
/// as compressed. Each is refused, naming the file.
#[test]
fn the_pre_commit_hook_checks_a_glob_name_a_link_made_a_file_and_a_pzstd_frame() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read(sb.backups().join(name)).unwrap();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let refused = |path: &str, content: &[u8], why: &str| {
        let run = sb.try_commit(path, content);
        assert!(!run.ok, "{path} was committed:\n{}", run.all());
        assert!(
            run.stderr.contains(&format!("{path}: ")) && run.stderr.contains(why),
            "{path}:\n{}",
            run.all()
        );
    };
    sb.try_commit("notes1.sql", b"-- notes\n").assert_ok();
    refused("notes[1].sql", &dump, "wrangler d1 export header");
    std::os::unix::fs::symlink("notes1.sql", sb.path().join("ops.sql")).unwrap();
    sb.git(&["add", "ops.sql"]).assert_ok();
    sb.git(&["commit", "-q", "-m", "link"]).assert_ok();
    std::fs::remove_file(sb.path().join("ops.sql")).unwrap();
    refused("ops.sql", &dump, "wrangler d1 export header");
    let mut pzstd = b"\x50\x2a\x4d\x18\x04\0\0\0pzst".to_vec();
    pzstd.extend(zstd::stream::encode_all(&dump[..], 3).unwrap());
    refused("ops/prod.bin", &pzstd, "zstd");
}

/// `keygen --out` took any path git ignores, and `*.agekey` is ignored
/// everywhere: the identity that opens every encrypted backup was written
/// into the Pages build (`dist/prod.agekey`), which `deploy` then publishes
/// on a public site (its check of the build looks for backups and
/// databases, not keys), or beside the backups it opens, in the backup
/// directory that a shared directory or a copy of it hands to whoever has
/// the backups. Both are refused (exit 3), through a link to them too,
/// with nothing written.
#[test]
fn keygen_never_writes_the_identity_into_the_published_build_or_beside_the_backups() {
    let sb = Sandbox::new();
    let dist = sb.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<html></html>\n").unwrap();
    let backups = sb.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("dist", sb.path().join("keys")).unwrap();
    for (out, needle) in [
        ("dist/prod.agekey", "pages_build_output_dir"),
        ("keys/prod.agekey", "pages_build_output_dir"),
        ("backups/prod.agekey", "backup directory"),
    ] {
        let run = sb.xtask(&["keygen", "--out", out]);
        assert_eq!(run.code, Some(3), "{out}:\n{}", run.all());
        run.assert_refused(needle);
        assert!(run.stderr.contains("Nothing was written"), "{}", run.all());
        assert!(!sb.path().join(out).exists(), "{out} was written");
    }
    assert!(!dist.join("prod.agekey").exists());
    // Elsewhere in the checkout, ignored, it is still written.
    let run = sb.xtask(&["keygen", "--out", "prod.agekey"]);
    run.assert_ok();
    assert!(sb.path().join("prod.agekey").exists());
}

/// prod's deploy, as the workflow's line runs it.
const DEPLOY_PROD: &str = "deploy prod --branch main --confirm qbtime_db_prod";

/// The deploy as the workflow runs it, the Pages deploy replaced by a
/// command that writes `deployed.log` (a real one needs Cloudflare).
fn deploy(remote: &Remote, home: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&str> = DEPLOY_PROD.split(' ').collect();
    all.extend_from_slice(args);
    let mut cmd = remote.xtask_command(home, &all);
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    Run::from_output(cmd.output().unwrap())
}

/// Changes wrangler.toml's `pages_build_output_dir` from `from` to `to`.
fn move_output_dir(sb: &Sandbox, from: &str, to: &str) {
    let config = sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("pages_build_output_dir = {from:?}"),
        &format!("pages_build_output_dir = {to:?}"),
    );
    std::fs::write(&config, text).unwrap();
}

/// `wrangler pages deploy` publishes every file in the configuration's
/// `pages_build_output_dir` on a public site (only `node_modules`, `.git`
/// and the top `.wrangler` left out), following symbolic links. Set to
/// `.` (or `backups`, or a `dist` with a link into `backups/`), the deploy
/// published every backup, with every row, at
/// `https://<branch>.<project>.pages.dev/backups/…`. Such a deploy is
/// refused (exit 2) before anything runs, its dry run too, naming the
/// setting; nothing is deployed, and the database is left alone.
#[test]
fn a_deploy_never_publishes_the_backup_directory_or_a_directory_outside_the_checkout() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    remote.backup_prod(home.path());
    let deployed = sb.path().join("deployed.log");
    let refused_saying = |how: &str, args: &[&str], says: &str| {
        let run = deploy(&remote, home.path(), args);
        assert_eq!(run.code, Some(2), "{how}:\n{}", run.all());
        assert!(run.stderr.contains(says), "{how}:\n{}", run.all());
        assert!(!deployed.exists(), "{how}: deployed");
        assert!(
            !run.stdout.contains("doctor"),
            "{how}: ran first:\n{}",
            run.all()
        );
    };
    let refused = |how: &str, args: &[&str]| refused_saying(how, args, "pages_build_output_dir");

    move_output_dir(sb, "dist", ".");
    refused("the checkout", &[]);
    refused("the checkout, dry run", &["--dry-run"]);
    move_output_dir(sb, ".", "backups");
    refused("the backup directory", &[]);
    // A directory of the build is what it names; a link leads there.
    std::fs::create_dir(sb.backups().join("site")).unwrap();
    move_output_dir(sb, "backups", "backups/site");
    refused_saying(
        "a directory in the backup directory",
        &[],
        "pages_build_output_dir (backups/site) is ",
    );
    std::fs::remove_dir(sb.backups().join("site")).unwrap();
    move_output_dir(sb, "backups/site", "../outside");
    refused("a directory outside", &[]);
    move_output_dir(sb, "../outside", "dist");

    // dist itself a link out of the checkout; then a link inside it that
    // leads into backups/.
    let dist = sb.path().join("dist");
    std::os::unix::fs::symlink(decoys.outside("nested"), &dist).unwrap();
    refused_saying(
        "dist linked out of the checkout",
        &[],
        "pages_build_output_dir (dist) leads to ",
    );
    std::fs::remove_file(&dist).unwrap();
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<h1>qbtime</h1>\n").unwrap();
    std::os::unix::fs::symlink("../backups", dist.join("assets")).unwrap();
    refused_saying(
        "a link in dist into backups/",
        &[],
        "dist/assets under pages_build_output_dir (dist) leads to ",
    );

    // The build's own directory deploys.
    std::fs::remove_file(dist.join("assets")).unwrap();
    deploy(&remote, home.path(), &[]).assert_ok();
    assert!(deployed.exists());
    assert_eq!(decoys.hashes(), before);
}

/// EI: `wrangler pages deploy` judges each path it walks, not each
/// directory: in `dist/a/node_modules -> ../../backups` with `dist/.b ->
/// a`, it leaves out `a/node_modules` but publishes `.b/node_modules/…`
/// (its `**/node_modules` passes through no dot-directory), every backup.
/// The deploy's check walked each real directory once, so when it reached
/// `a` first it never looked under `.b`, and the deploy went ahead. It is
/// refused (exit 2) before anything runs, naming the backup directory,
/// whichever of the two the directory lists first, and however deep under
/// the linked directory the `node_modules` is.
#[test]
fn a_deploy_never_publishes_the_backups_through_a_directory_linked_under_a_dot_directory() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let backups = sb.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(backups.join("secret.sql"), "INSERT INTO users VALUES(1);\n").unwrap();
    let dist = sb.path().join("dist");
    // Both orders of making them, under several names: a directory lists
    // its entries in an order of its own.
    let layouts = [
        ("a", ".b"),
        ("z", ".a"),
        ("site", ".well-known"),
        ("m", ".n"),
    ];
    // The `node_modules` right under the linked directory, or deeper
    // (`a/b/node_modules`: `a` itself has none, and looks the same by
    // either path).
    let depths = [("", "../../backups"), ("b/", "../../../backups")];
    for ((real, alias), (below, up)) in layouts.into_iter().flat_map(|l| depths.map(|d| (l, d))) {
        for alias_first in [false, true] {
            let how =
                format!("dist/{real}/{below}node_modules, dist/{alias} -> {real} ({alias_first})");
            let _ = std::fs::remove_dir_all(&dist);
            std::fs::create_dir(&dist).unwrap();
            std::fs::write(dist.join("index.html"), "<h1>qbtime</h1>\n").unwrap();
            if alias_first {
                std::os::unix::fs::symlink(real, dist.join(alias)).unwrap();
            }
            std::fs::create_dir_all(dist.join(real).join(below)).unwrap();
            std::os::unix::fs::symlink(up, dist.join(real).join(below).join("node_modules"))
                .unwrap();
            if !alias_first {
                std::os::unix::fs::symlink(real, dist.join(alias)).unwrap();
            }
            let run = deploy(&remote, home.path(), &["--dry-run"]);
            assert_eq!(run.code, Some(2), "{how}:\n{}", run.all());
            assert!(
                run.stderr.contains("the backup directory")
                    && run.stderr.contains(&format!("{alias}/{below}node_modules")),
                "{how}:\n{}",
                run.all()
            );
            assert!(!sb.path().join("deployed.log").exists(), "{how}: deployed");
        }
    }
    // Without the link under the dot-directory, wrangler leaves the
    // `node_modules` out, and so does the check.
    std::fs::remove_file(dist.join(".n")).unwrap();
    deploy(&remote, home.path(), &["--dry-run"]).assert_ok();
}

/// EJ: the check above judges where each entry of the build leads, so a
/// file in `dist` that is itself a backup passed, its real path in
/// `dist`, and was published: a hard link to a backup or its manifest
/// (the same file under another name), or a copy (`cp
/// backups/backup-prod-….sql dist/`), an encrypted backup, a manifest.
/// Each is refused (exit 2) before anything runs, its dry run too, naming
/// the file relative to the checkout, why, and the fix, and never what it
/// holds; nothing is backed up, migrated or deployed, and the backups and
/// decoys are left as they were. What wrangler leaves out
/// (`dist/node_modules`) is not published, so not judged: that build
/// deploys. EK: a hard link to the local D1's SQLite file is refused the
/// same way, and a backup's name in another case (`BACKUP-….SQL`) too.
#[test]
fn a_deploy_never_publishes_a_backup_hard_linked_or_copied_into_the_build() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let decoys = Decoys::plant(sb.path());
    let name = remote.backup_prod(home.path());
    let stem = name.trim_end_matches(".sql");
    // The deploy's own backup, for the migration pending, is encrypted
    // and uploaded: its dry run checks it can be.
    remote.server.add_bucket("qbtime-d1-backups");
    let key = home.path().join("key.txt");
    let keygen = remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]);
    encrypt_backups_of(sb, "prod", &keygen_recipient(&keygen));
    let backups = || -> Vec<(String, String)> {
        { sb.backup_files().into_iter() }
            .map(|f| {
                let sha = sha256_hex(&std::fs::read(sb.backups().join(&f)).unwrap());
                (f, sha)
            })
            .collect()
    };
    let before = (decoys.hashes(), backups());
    let dist = sb.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<h1>qbtime</h1>\n").unwrap();
    let refused = |file: &str, why: &str| {
        let path = dist.join(file);
        for args in [&["--dry-run"][..], &[]] {
            let run = deploy(&remote, home.path(), args);
            assert_eq!(run.code, Some(2), "{file} {args:?}:\n{}", run.all());
            assert!(
                run.stderr.contains(&format!("dist/{file} "))
                    && run.stderr.contains(why)
                    && run.stderr.contains("Remove it from pages_build_output_dir"),
                "{file}:\n{}",
                run.all()
            );
            assert!(!run.all().contains("INSERT INTO"), "{}", run.all());
            assert!(
                !run.stdout.contains("doctor"),
                "{file}: ran:\n{}",
                run.all()
            );
        }
        std::fs::remove_file(path).unwrap();
        assert!(!sb.path().join("deployed.log").exists(), "{file}: deployed");
        assert_eq!(counts(&remote.db)["d1_migrations"], 3, "{file}: migrated");
        assert_eq!((decoys.hashes(), backups()), before, "{file}");
    };

    let manifest = format!("{stem}.manifest.json");
    std::fs::hard_link(sb.backups().join(&name), dist.join("data.bin")).unwrap();
    refused("data.bin", "hard link");
    std::fs::hard_link(sb.backups().join(&manifest), dist.join("assets/m.json")).unwrap();
    refused("assets/m.json", "hard link");
    // EK: the local D1's own SQLite file, hard linked: its real path is in
    // the build too, and it holds the local database's rows.
    sb.execute_sql("CREATE TABLE IF NOT EXISTS deploy_probe(x);");
    std::fs::hard_link(sb.local_d1_file(), dist.join("assets/db.bin")).unwrap();
    refused("assets/db.bin", "hard link to a file of the local D1 state");
    // Copies, under names a backup or its manifest has, in any case (EK:
    // on a case-insensitive file system, and to a reader, the same name).
    for copy in [
        name.clone(),
        "backup-prod-20261130-1200.sql.age".to_owned(),
        format!("assets/{manifest}"),
        "export.sql.zst".to_owned(),
        "BACKUP-PROD-20261130-1200.SQL".to_owned(),
        "assets/Backup-prod-20261130-1200.Manifest.JSON".to_owned(),
    ] {
        let from = sb.backups().join(if copy.ends_with(".json") {
            &manifest
        } else {
            &name
        });
        std::fs::copy(from, dist.join(&copy)).unwrap();
        refused(&copy, "named as");
    }

    // wrangler leaves out node_modules: a hard link there is not published.
    std::fs::create_dir(dist.join("node_modules")).unwrap();
    std::fs::hard_link(
        sb.backups().join(&name),
        dist.join("node_modules").join(&name),
    )
    .unwrap();
    deploy(&remote, home.path(), &["--dry-run"]).assert_ok();
    assert_eq!((decoys.hashes(), backups()), before);
    // But a link to a copy there is: the message says the name is the
    // link's target's, not the page's.
    let copied = "node_modules/backup-prod-20261130-1200.sql";
    std::fs::copy(sb.backups().join(&name), dist.join(copied)).unwrap();
    std::os::unix::fs::symlink(copied, dist.join("page.txt")).unwrap();
    refused(
        "page.txt",
        "backup-prod-20261130-1200.sql, which is named as a backup",
    );
}

/// `wrangler pages deploy` takes no `--config`: it reads the first
/// `wrangler.json`, `wrangler.jsonc` or `wrangler.toml` from its directory
/// upwards, and follows a `.wrangler/deploy/config.json` there to another
/// configuration, whose `pages_build_output_dir` nothing here checked (a
/// build tool writes that file; so can anyone who can write the checkout).
/// The deploy is refused (exit 2) before anything runs, naming the file.
/// So is a deploy run with `--config` naming another file than the one
/// the Pages deploy reads.
#[test]
fn a_deploy_never_publishes_what_another_configuration_than_its_own_names() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let redirect = sb.path().join(".wrangler/deploy");
    std::fs::create_dir_all(&redirect).unwrap();
    std::fs::write(
        sb.path().join("pages.toml"),
        "name = \"qbtime\"\npages_build_output_dir = \".\"\n",
    )
    .unwrap();
    std::fs::write(
        redirect.join("config.json"),
        "{\"configPath\": \"../../pages.toml\"}\n",
    )
    .unwrap();
    let run = deploy(&remote, home.path(), &[]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains(".wrangler/deploy/config.json"),
        "{}",
        run.all()
    );
    assert!(!sb.path().join("deployed.log").exists());

    std::fs::remove_dir_all(sb.path().join(".wrangler/deploy")).unwrap();

    // This run reads checked.toml; the Pages deploy reads wrangler.toml.
    let checked = sb.path().join("checked.toml");
    std::fs::copy(sb.path().join("wrangler.toml"), &checked).unwrap();
    move_output_dir(sb, "dist", ".");
    let mut dry_run: Vec<&str> = DEPLOY_PROD.split(' ').collect();
    dry_run.push("--dry-run");
    let mut cmd = remote.xtask_command(home.path(), &dry_run);
    cmd.env("QBTIME_WRANGLER_CONFIG", &checked);
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("wrangler.toml"), "{}", run.all());
}

/// `wrangler pages deploy` publishes `pages_build_output_dir`: with none
/// set, or with that directory not built, it fails, but only after the
/// migrations ran and the backup was taken. Such a deploy by wrangler is
/// refused (exit 2) before anything runs, its dry run too, naming the
/// setting and the fix; nothing runs against the database.
#[test]
fn a_deploy_with_nothing_to_publish_is_refused_before_its_migrations() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let by_wrangler = |args: &[&str]| {
        let mut all: Vec<&str> = DEPLOY_PROD.split(' ').collect();
        all.extend_from_slice(args);
        let mut cmd = remote.xtask_command(home.path(), &all);
        cmd.env_remove("QBTIME_PAGES_DEPLOY");
        Run::from_output(cmd.output().unwrap())
    };
    let refused = |how: &str, needle: &str| {
        for args in [&[][..], &["--dry-run"]] {
            let run = by_wrangler(args);
            assert_eq!(run.code, Some(2), "{how} {args:?}:\n{}", run.all());
            assert!(run.stderr.contains(needle), "{how}:\n{}", run.all());
            assert!(
                !run.stdout.contains("doctor") && !run.all().contains("Migrations to be applied"),
                "{how}: ran first:\n{}",
                run.all()
            );
            assert!(!sb.path().join("backups").exists(), "{how}: backed up");
        }
    };
    refused("dist not built", "build the site first");
    let config = sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("pages_build_output_dir = \"dist\"\n", ""),
    )
    .unwrap();
    refused(
        "no pages_build_output_dir",
        "names no pages_build_output_dir",
    );
}

/// `keygen --out OUT` under a file-size limit of 0 (`ulimit -f 0`), under
/// which every write to a file fails with EFBIG, as on a full disk.
fn keygen_whose_write_fails(sb: &Sandbox, out: &Path) -> Run {
    let mut limited = std::process::Command::new("sh");
    limited.args([
        "-c",
        "trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_xtask"),
    ]);
    Run::from_output(
        sb.sandboxed(limited, &["keygen", "--out", out.to_str().unwrap()])
            .output()
            .unwrap(),
    )
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What `run` returns, and the name of every file created in (or moved
/// into) `dir` while it ran, in order: inotify queues each creation,
/// however briefly the file lived.
fn names_created_in(dir: &Path, run: impl FnOnce() -> Run) -> (Run, Vec<String>) {
    use std::os::unix::ffi::OsStrExt;
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(
        fd >= 0,
        "inotify_init1: {}",
        std::io::Error::last_os_error()
    );
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let watch = libc::IN_CREATE | libc::IN_MOVED_TO;
    let wd = unsafe { libc::inotify_add_watch(fd, c_dir.as_ptr(), watch) };
    assert!(
        wd >= 0,
        "inotify_add_watch: {}",
        std::io::Error::last_os_error()
    );
    let result = run();
    let mut names = Vec::new();
    let mut buf = [0u8; 1 << 14];
    let head = std::mem::size_of::<libc::inotify_event>();
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        let mut at = 0;
        while at < n {
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
            assert_eq!(event.mask & libc::IN_Q_OVERFLOW, 0, "inotify overflowed");
            let name = &buf[at + head..at + head + event.len as usize];
            let name = name.split(|&b| b == 0).next().unwrap();
            names.push(String::from_utf8_lossy(name).into_owned());
            at += head + event.len as usize;
        }
    }
    unsafe { libc::close(fd) };
    (result, names)
}

/// A keygen whose write of the identity fails part-way (a full disk, an
/// I/O error; here a file-size limit, `ulimit -f 0`, under which every
/// write to a file fails with EFBIG) leaves no file at all: a partial
/// identity at `--out` would be refused by the rerun as "may be the only
/// key to older backups". The rerun at the same path then writes it.
#[test]
fn keygen_whose_write_fails_leaves_nothing_and_the_rerun_writes_the_identity() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let out = keys.path().join("prod.agekey");
    let run = keygen_whose_write_fails(&sb, &out);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let left = names_in(keys.path());
    assert!(left.is_empty(), "left behind: {left:?}\n{}", run.all());
    let rerun = sb.xtask(&["keygen", "--out", out.to_str().unwrap()]);
    rerun.assert_ok();
    assert!(keygen_recipient(&rerun).starts_with("age1"));
    let identity = std::fs::read_to_string(&out).unwrap();
    assert!(identity.contains("AGE-SECRET-KEY-1"), "no identity written");
    assert_eq!(mode(&out) & 0o777, 0o600);
}

/// keygen creates no file in `--out`'s directory but `--out` itself, not
/// even for a moment: a temporary name beside it (`.prod.agekey.PID.partial`)
/// would hold the whole identity while it lived, and a second Ctrl-C, a
/// SIGKILL or a power cut would leave it at a name git's check of `--out`
/// never covered, for `git add .` to commit. So neither a run that writes
/// the identity nor one whose write fails creates any other name, and the
/// failing one names its error and says nothing was left.
#[test]
fn keygen_creates_no_file_but_out_in_its_directory() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let out = keys.path().join("prod.agekey");
    let (run, created) = names_created_in(keys.path(), || {
        sb.xtask(&["keygen", "--out", out.to_str().unwrap()])
    });
    run.assert_ok();
    assert_eq!(created, ["prod.agekey"], "{}", run.all());
    assert_eq!(names_in(keys.path()), ["prod.agekey"]);
    assert_eq!(mode(&out) & 0o777, 0o600);

    let full = tempfile::tempdir().unwrap();
    let out = full.path().join("prod.agekey");
    let (run, created) = names_created_in(full.path(), || keygen_whose_write_fails(&sb, &out));
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        created.iter().all(|name| name == "prod.agekey"),
        "created {created:?}\n{}",
        run.all()
    );
    assert!(names_in(full.path()).is_empty(), "{}", run.all());
    assert!(run.stderr.contains("File too large"), "{}", run.all());
    assert!(run.stderr.contains("Nothing was left at"), "{}", run.all());
}
