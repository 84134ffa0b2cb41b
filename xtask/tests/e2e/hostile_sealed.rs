//! Encrypted backups anyone may have written (atkBI). The age recipients
//! are public (backups.toml), so whoever can write to `backups/` or to the
//! offsite bucket can seal a perfectly valid `.sql.zst.age` to them, with
//! a manifest that agrees with it. What `verify` and `restore` do with one
//! must be bounded in time, told as what it is, and never restore a part.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// The pinned Node, as the xtask finds it.
fn node() -> PathBuf {
    let pinned = repo_root().join("node_modules/.bin/node");
    if pinned.is_file() {
        pinned
    } else {
        PathBuf::from("node")
    }
}

/// The SQL inside an encrypted backup, decrypted and decompressed.
fn plaintext(key: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new(node())
        .arg(repo_root().join("scripts/age.mjs"))
        .args(["decrypt", "-i", key.to_str().unwrap()])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    zstd::decode_all(&out.stdout[..]).unwrap()
}

/// `compressed` sealed to `recipient` with the pinned age-encryption
/// package, as `age -r` seals it, but with `junk` X25519 stanzas of random
/// keys before the recipient's own: a valid age file that every identity
/// must try the junk stanzas of before it opens it.
fn seal(recipient: &str, compressed: &[u8], junk: usize) -> Vec<u8> {
    let module = repo_root().join("node_modules/age-encryption/dist/index.js");
    let script = format!(
        r#"
import {{ Readable, Writable }} from "node:stream";
import {{ randomBytes }} from "node:crypto";
import {{ Encrypter, Stanza }} from {module:?};
const e = new Encrypter();
e.addRecipient({{ async wrapFileKey() {{
  const out = [];
  for (let i = 0; i < {junk}; i++)
    out.push(new Stanza(["X25519", randomBytes(32).toString("base64").replace(/=+$/, "")], randomBytes(32)));
  return out;
}} }});
e.addRecipient({recipient:?});
await (await e.encrypt(Readable.toWeb(process.stdin))).pipeTo(Writable.toWeb(process.stdout));
"#,
        module = format!("file://{}", module.display()),
    );
    let mut cmd = Command::new(node());
    cmd.args(["--input-type=module", "-e", &script]);
    output_fed(cmd, compressed)
}

fn manifest_path(sb: &Sandbox, name: &str) -> PathBuf {
    let stem = name.split(".sql").next().unwrap();
    sb.backups().join(format!("{stem}.manifest.json"))
}

/// Puts `bytes` in place of the backup `name` and makes its manifest agree
/// with them: the file's size and sha256, and `sealed` as `edit` leaves it.
fn forge(sb: &Sandbox, name: &str, bytes: &[u8], edit: impl FnOnce(&mut Value)) {
    let file = sb.backups().join(name);
    std::fs::write(&file, bytes).unwrap();
    let path = manifest_path(sb, name);
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["file"]["bytes"] = bytes.len().into();
    m["file"]["sha256"] = sha256_hex(bytes).into();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// Records the plaintext `sql` in the manifest's `sealed`.
fn sealed_as(sql: &[u8]) -> impl FnOnce(&mut Value) + '_ {
    move |m| {
        m["sealed"]["plaintext_bytes"] = sql.len().into();
        m["sealed"]["plaintext_sha256"] = sha256_hex(sql).into();
    }
}

/// The xtask with `args`, sent `signal` after `seconds` and SIGKILL 10 s
/// later: the run, and whether it had to be signalled.
fn within(sb: &Sandbox, args: &[&str], seconds: u64) -> (Run, bool) {
    signalled(sb, args, seconds, libc::SIGKILL)
}

fn signalled(sb: &Sandbox, args: &[&str], seconds: u64, signal: i32) -> (Run, bool) {
    let mut child = sb
        .xtask_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let killer = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: kill(2) with signal 0 only asks whether it still runs.
            if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: kill(2) on our own child, not yet waited for.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
        let stop = Instant::now() + Duration::from_secs(10);
        // SAFETY: as above; signal 0 only asks.
        while Instant::now() < stop && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        true
    });
    let _ = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    let killed = killer.join().unwrap();
    (Run::from_output(out), killed)
}

fn outcome(sb: &Sandbox, name: &str) -> Value {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path(sb, name)).unwrap()).unwrap();
    m["verification"]["outcome"].clone()
}

/// A 300 KB encrypted backup whose header holds 3,000 X25519 stanzas of
/// random keys before the recipient's own (its manifest records the one
/// recipient; file and plaintext digests agree). age (typage, no limit on
/// stanzas) does an X25519 multiplication for each one on every read, and
/// verify reads the file three times, restore five: about 2 s a read here,
/// so a 30 MB header holds a verify or a restore for hours. The backup
/// itself checks that the header has one stanza per recipient
/// (`stored::check_age_header`); verify and restore never do, and call it
/// GOOD and restore it.
#[test]
fn an_age_header_of_thousands_of_stanzas_is_refused_before_age_tries_them() {
    let (sb, _keys, key, recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    let sealed = seal(&recipient, &zstd::encode_all(&sql[..], 3).unwrap(), 3000);
    assert!(sealed.len() < 400_000, "{}", sealed.len());
    forge(&sb, &name, &sealed, |_| {});
    let identity = format!("--identity={}", key.display());

    let run = sb.xtask(&["verify", &name, &identity]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("BAD"), "{}", run.all());

    sb.execute_sql("INSERT INTO accounts (email, display_name, password_hash) VALUES ('late@example.com', 'Late', 'x');");
    let before = sb.live_row_counts();
    let run = sb.xtask(&[
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--yes",
        &identity,
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(sb.live_row_counts(), before, "{}", run.all());
}

/// A `.sql.zst.age` whose manifest records no `sealed` (as a plain
/// backup's does): the load then checks the SQL it decrypts against the
/// *file's* size and sha256, and verify and restore both say "the backup
/// changed while it was read", which sends the operator after a process
/// that wrote to the file. Nothing changed: the manifest does not say the
/// file is sealed, which is what must be told (restore: a file that does
/// not match its manifest is exit 3).
#[test]
fn an_encrypted_backup_whose_manifest_says_it_is_not_sealed_is_not_called_changed() {
    let (sb, _keys, key, _recipient, name) = sealed_backup();
    let bytes = std::fs::read(sb.backups().join(&name)).unwrap();
    forge(&sb, &name, &bytes, |m| m["sealed"] = Value::Null);
    let identity = format!("--identity={}", key.display());

    // A manifest that contradicts its file's name is not trusted: bad
    // input, exit 2, as any such manifest (what was chosen).
    let run = sb.xtask(&["verify", &name, &identity]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.all().contains("changed while it was read"),
        "{}",
        run.all()
    );
    assert!(run.all().contains("sealed"), "{}", run.all());

    let run = sb.xtask(&[
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--yes",
        &identity,
    ]);
    // Refused as the untrusted manifest it is.
    assert!(!run.ok, "{}", run.all());
    assert!(
        !run.all().contains("changed while it was read"),
        "{}",
        run.all()
    );
}

/// An encrypted backup cut after its first 64 KiB chunk, with a manifest
/// that agrees with the cut file (age's STREAM rejects it: "invalid tag").
/// verify says "the verification could not run" (exit 2, as for a missing
/// file or a full disk) and records nothing, so `list` still shows the
/// verification its manifest claims ("good"). A backup that cannot be
/// decrypted to its end is BAD (exit 1), and recorded so.
#[test]
fn an_encrypted_backup_cut_at_a_chunk_is_bad_not_could_not_run() {
    let (sb, _keys, key, recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    // The dump's frame, then a skippable frame of 200 KB of noise: the
    // same SQL, and a payload of several chunks.
    let mut compressed = zstd::encode_all(&sql[..], 3).unwrap();
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    compressed.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    compressed.extend_from_slice(&(noise.len() as u32).to_le_bytes());
    compressed.extend_from_slice(&noise);
    let sealed = seal(&recipient, &compressed, 0);
    let header = sealed.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    let header = header + sealed[header..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let cut = &sealed[..header + 16 + 65_536 + 16];
    forge(&sb, &name, cut, sealed_as(&sql));
    let identity = format!("--identity={}", key.display());

    let run = sb.xtask(&["verify", &name, &identity]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("BAD"), "{}", run.all());
    assert_eq!(outcome(&sb, &name), "bad", "{}", run.all());
}

/// A 200 KB encrypted backup whose manifest records the real dump's 8 KB
/// of SQL, but which decodes to that dump followed by 4 GiB of blank lines
/// (4,096 zstd frames of a mebibyte of `\n`, 50 bytes each). verify and
/// restore read all 4 GiB through age and zstd before they compare
/// (`Source::plaintext_digest`, `Checked`): minutes here (10 GiB held a
/// verify past 5 minutes), and hours for a file of a few megabytes. Past
/// the manifest's size the answer is known: the read must stop there.
#[test]
fn a_plaintext_past_its_manifests_size_is_refused_without_reading_it_all() {
    let (sb, _keys, key, recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    let mut compressed = zstd::encode_all(&sql[..], 3).unwrap();
    let blank = zstd::encode_all(&vec![b'\n'; 1 << 20][..], 19).unwrap();
    for _ in 0..4096 {
        compressed.extend_from_slice(&blank);
    }
    let sealed = seal(&recipient, &compressed, 0);
    assert!(sealed.len() < 400_000, "{}", sealed.len());
    forge(&sb, &name, &sealed, sealed_as(&sql));
    let identity = format!("--identity={}", key.display());

    let (run, killed) = within(&sb, &["verify", &name, &identity], 30);
    assert!(!killed, "verify still ran after 30 s:\n{}", run.all());
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("BAD"), "{}", run.all());

    let (run, killed) = within(
        &sb,
        &[
            "restore",
            &name,
            "--to",
            "local",
            "--replace",
            "--dry-run",
            &identity,
        ],
        30,
    );
    assert!(!killed, "restore still ran after 30 s:\n{}", run.all());
    assert_eq!(run.code, Some(3), "{}", run.all());
}

/// The same 4 GiB of blank lines after the dump, with a manifest that
/// agrees with all of it. SIGTERM (or Ctrl-C) three seconds into verify
/// is not acted on while the plaintext is read for its digest
/// (`Source::plaintext_digest` reads to the end and never looks at the
/// signal): the run went on for minutes after it (over 70 s for 10 GiB
/// here), then exited 143. README: interrupted runs stop, clean up and
/// exit 130/143.
#[test]
fn a_sigterm_stops_verify_while_it_reads_a_large_sealed_plaintext() {
    use sha2::Digest as _;
    let (sb, _keys, key, recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    let mut compressed = zstd::encode_all(&sql[..], 3).unwrap();
    let mebibyte = vec![b'\n'; 1 << 20];
    let blank = zstd::encode_all(&mebibyte[..], 19).unwrap();
    let mut digest = sha2::Sha256::new();
    digest.update(&sql);
    for _ in 0..4096 {
        compressed.extend_from_slice(&blank);
        digest.update(&mebibyte);
    }
    let sha256: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sealed = seal(&recipient, &compressed, 0);
    forge(&sb, &name, &sealed, |m| {
        m["sealed"]["plaintext_bytes"] = (sql.len() as u64 + (4096u64 << 20)).into();
        m["sealed"]["plaintext_sha256"] = sha256.into();
    });
    let identity = format!("--identity={}", key.display());

    let started = Instant::now();
    let (run, _) = signalled(&sb, &["verify", &name, &identity], 3, libc::SIGTERM);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "verify ran {took:?}, 3 s of it before SIGTERM:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(143), "{}", run.all());
}

/// A sealed backup replaced by the same SQL sealed to another key (anyone
/// can: a recipient is public), its manifest still recording the team's
/// recipient, and agreeing with the new file's size and sha256. verify,
/// given the identity of exactly the recipient the manifest records, says
/// the verification could not run because "no identity given is the key
/// of one of them" and sends the operator hunting for another key
/// (`Source::is_unopened` takes age's "no identity matched" for a wrong
/// identity whatever the identity is). The identity's own recipient is
/// one the manifest records: the file is not sealed as its manifest says,
/// it is BAD, and recorded so.
#[test]
fn an_encrypted_backup_sealed_to_a_stranger_is_bad_for_the_recorded_recipients_identity() {
    let (sb, keys, key, _recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    let stranger_key = keys.path().join("stranger.agekey");
    let stranger =
        keygen_recipient(&sb.xtask(&["keygen", "--out", stranger_key.to_str().unwrap()]));
    let sealed = seal(&stranger, &zstd::encode_all(&sql[..], 3).unwrap(), 0);
    forge(&sb, &name, &sealed, sealed_as(&sql));
    let identity = format!("--identity={}", key.display());

    let run = sb.xtask(&["verify", &name, &identity]);
    assert!(
        !run.all().contains("is the key of one of them"),
        "the identity given is the key of the recipient the manifest records:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("BAD"), "{}", run.all());
    assert_eq!(outcome(&sb, &name), "bad", "{}", run.all());
}

/// A tired operator passes the wrong key file (a colleague's, last
/// quarter's): the refusal names the file given and the recipient it
/// holds the key of, next to the recipients the backup is sealed to, so
/// that the mistake shows; nothing runs and the local D1 is unchanged.
#[test]
fn the_wrong_identity_is_refused_naming_the_file_given_and_whose_key_it_holds() {
    let (sb, keys, _key, recipient, name) = sealed_backup();
    let other_key = keys.path().join("last quarter.agekey");
    let other = keygen_recipient(&sb.xtask(&["keygen", "--out", other_key.to_str().unwrap()]));
    let before = sb.live_row_counts();
    let identity = format!("--identity={}", other_key.display());
    for args in [
        vec!["verify", name.as_str(), identity.as_str()],
        vec![
            "restore",
            &name,
            "--to",
            "local",
            "--replace",
            "--yes",
            &identity,
        ],
    ] {
        let run = sb.xtask(&args);
        run.assert_refused(&format!("is sealed to {recipient}"));
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains(&format!(
                "({} holds the key of {other})",
                other_key.display()
            )),
            "{}",
            run.all()
        );
    }
    assert_eq!(sb.live_row_counts(), before, "the local D1 changed");
}

/// The memory this machine has available, as `/proc/meminfo` says.
fn memory_available() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = { info.lines() }
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib << 10
}

/// A zstd bomb of real rows, sealed to the public recipient: a few MB
/// that decode to more SQL than the machine has memory (rows of 90 KB
/// values, each a legal D1 statement), its manifest recording that size.
/// An encrypted backup is verified in a scratch database in memory, which
/// the gate lets grow up to D1's 10 GB: verify read all of it, then loaded
/// it until the kernel killed it. It is refused before a byte of it is
/// read, naming the backup, its size, the memory and what to do. (Its
/// sha256 is not worked out here: no run that refuses it reads that far,
/// and one that does not is killed long before.)
#[test]
fn a_sealed_bomb_of_real_rows_larger_than_memory_is_refused_before_it_is_read() {
    let (sb, _keys, key, recipient, name) = sealed_backup();
    let file = sb.backups().join(&name);
    let sql = plaintext(&key, &file);
    let row = format!("INSERT INTO t VALUES('{}');\n", "x".repeat(90_000));
    let block = row.repeat(11);
    let frame = zstd::encode_all(block.as_bytes(), 19).unwrap();
    let head = [&sql[..], b"CREATE TABLE t(v TEXT);\n"].concat();
    let blocks = (memory_available() + (1 << 30)) / block.len() as u64 + 1;
    let mut compressed = zstd::encode_all(&head[..], 3).unwrap();
    for _ in 0..blocks {
        compressed.extend_from_slice(&frame);
    }
    assert!(compressed.len() < 64 << 20, "{} bytes", compressed.len());
    let sealed = seal(&recipient, &compressed, 0);
    forge(&sb, &name, &sealed, |m| {
        m["sealed"]["plaintext_bytes"] = (head.len() as u64 + blocks * block.len() as u64).into();
    });
    let identity = format!("--identity={}", key.display());

    let (run, killed) = within(&sb, &["verify", &name, &identity], 20);
    assert!(!killed, "verify still ran after 20 s:\n{}", run.all());
    assert_eq!(run.code, Some(2), "{}", run.all());
    run.assert_refused(&name);
    run.assert_refused("memory");
    assert_ne!(outcome(&sb, &name), "bad", "{}", run.all());
}
