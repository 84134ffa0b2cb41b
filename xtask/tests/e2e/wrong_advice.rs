//! NU: errors whose advice was wrong, or named the wrong thing: each
//! names the file or setting at fault, and a fix that works when pasted.

use crate::common::*;

/// A backup gzipped beside its manifest (`gzip -c B.sql > B.sql.gz`), or
/// gzipped where no manifest is, or under a plain `.sql` name: verify
/// tells it by its bytes first, on every path (exit 2), and the command
/// it gives unpacks it when pasted. It used to say the manifest
/// "describes the backup B.sql, not B.sql.gz", or "pass --no-manifest",
/// and, where it did say gzip, `gunzip -k FILE`, which refuses a name
/// that does not end in .gz ("unknown suffix").
#[test]
fn a_gzipped_backup_is_told_by_its_bytes_with_a_command_that_unpacks_it() {
    let (sb, name) = sandbox_with_a_backup();
    let original = sb.backups().join(&name);
    let whole = std::fs::read(&original).unwrap();
    let packed = gzip(&whole);
    let dir = sb.path().join("copies");
    std::fs::create_dir(&dir).unwrap();
    let manifest = name.replace(".sql", ".manifest.json");
    std::fs::copy(sb.backups().join(&manifest), dir.join(&manifest)).unwrap();
    let beside = dir.join(format!("{name}.gz"));
    std::fs::write(&beside, &packed).unwrap();
    let alone = sb.path().join("alone.sql.gz");
    std::fs::write(&alone, &packed).unwrap();
    let plain = sb.path().join("plain.sql");
    std::fs::write(&plain, &packed).unwrap();

    for (file, unpacked) in [
        (&beside, dir.join(&name)),
        (&alone, sb.path().join("alone.sql")),
        (&plain, sb.path().join("plain-unpacked.sql")),
    ] {
        let run = sb.xtask(&["verify", file.to_str().unwrap()]);
        run.assert_refused("gzip-compressed, not a SQL dump");
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            !run.stderr.contains("describes the backup") && !run.stderr.contains("--no-manifest"),
            "{}",
            run.all()
        );
        let said = format!("`gunzip -c {} > {}`", file.display(), unpacked.display());
        assert!(
            run.stderr.contains(&said),
            "expected {said} in:\n{}",
            run.all()
        );
        // Pasted, it writes the dump.
        let pasted = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gunzip -c {} > {}",
                file.display(),
                unpacked.display()
            ))
            .status()
            .unwrap();
        assert!(pasted.success());
        assert_eq!(std::fs::read(&unpacked).unwrap(), whole);
    }
    // Beside its manifest, what it unpacks to is the backup the manifest
    // describes, and verifies.
    sb.xtask(&["verify", dir.join(&name).to_str().unwrap()])
        .assert_ok();
}

/// A copy cut short, its manifest beside it: verify fails it (exit 1) and
/// its file check says so; the statements line no longer advises adding
/// `;` at its end "if it is whole", since the manifest proves it is not.
#[test]
fn a_copy_its_manifest_proves_cut_short_is_never_advised_to_be_edited() {
    let (sb, name) = sandbox_with_a_backup();
    let file = sb.backups().join(&name);
    let whole = std::fs::read(&file).unwrap();
    // Cut just before the `;` that ends an INSERT: the statement left
    // looks whole but for its `;`.
    let insert = whole
        .windows(b"INSERT INTO".len())
        .position(|w| w == b"INSERT INTO")
        .unwrap();
    let end = insert
        + whole[insert..]
            .windows(2)
            .position(|w| w == b";\n")
            .unwrap();
    std::fs::write(&file, &whole[..end]).unwrap();

    let run = sb.xtask(&["verify", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("changed or truncated"), "{}", run.all());
    assert!(!run.all().contains("add `;`"), "{}", run.all());
    assert!(
        run.stdout.contains("not whole"),
        "the statements line says why: {}",
        run.all()
    );
}

/// A backup directory that holds the migrations (`--backup-dir .`, or
/// `QBTIME_BACKUP_DIR` the checkout or its `migrations`): refused, exit 2,
/// naming the setting that was given and its fix, not migrations_dir
/// (which already is the checkout's migrations/).
#[test]
fn a_backup_directory_holding_the_migrations_names_the_setting_given() {
    let sb = Sandbox::new();
    let by_option = sb.xtask(&["--backup-dir", ".", "status"]);
    assert_eq!(by_option.code, Some(2), "{}", by_option.all());
    by_option.assert_refused("--backup-dir");
    assert!(
        !by_option.stderr.contains("Point migrations_dir"),
        "{}",
        by_option.all()
    );
    for dir in [sb.path().to_path_buf(), sb.path().join("migrations")] {
        let run = Run::from_output(
            sb.xtask_command(&["status"])
                .env("QBTIME_BACKUP_DIR", &dir)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, Some(2), "{}", run.all());
        run.assert_refused("QBTIME_BACKUP_DIR");
        run.assert_refused("backups/");
        assert!(
            !run.stderr.contains("Point migrations_dir"),
            "{}",
            run.all()
        );
    }
}

/// A wrangler.toml over 64 MiB, given with `--config`: a configuration
/// that cannot be used, exit 2 (as an oversized backups.toml is), named
/// with its fix; not "pass --config PATH", which was given.
#[test]
fn an_oversized_wrangler_configuration_given_is_bad_input_without_pass_config() {
    let sb = Sandbox::new();
    let config = sb.path().join("wrangler.toml");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let run = Run::from_output(
        sb.xtask_command(&["--config", "wrangler.toml", "status"])
            .env_remove("QBTIME_WRANGLER_CONFIG")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    run.assert_refused("larger than 64 MiB");
    assert!(!run.stderr.contains("pass --config"), "{}", run.all());
}
