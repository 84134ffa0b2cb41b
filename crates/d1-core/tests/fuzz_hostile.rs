//! A seeded mutation fuzz of the pure core on hostile input: a dump, a
//! manifest, a span, an age recipient. Every entry point that reads such
//! input must return (an error or a success) without a panic and in well
//! under a second for an input under 100 KB.
//!
//! Bounded by default (fixed seeds, a few hundred inputs per kind); set
//! `FUZZ_ITERATIONS` to run longer by hand, and `FUZZ_SEED` to start from
//! another seed. A failure prints the seed and the input's file, so that
//! every one can be replayed.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use d1_core::repair::{self, Options, Sink};

/// A small seeded generator (xorshift), so the fuzz needs no dependency
/// and every failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const DUMP: &str = include_str!("fuzz_seeds/dump.sql");
const MANIFEST: &str = include_str!("fuzz_seeds/manifest.json");
const MIGRATIONS: [&str; 4] = [
    include_str!("../../../migrations/0001_accounts_companies_customers.sql"),
    include_str!("../../../migrations/0002_encryption_keys_and_qbt_tokens.sql"),
    include_str!("../../../migrations/0003_report_configs_and_notifications.sql"),
    include_str!("../../../migrations/0004_audit_log.sql"),
];
const SQLITE3_DUMP: &str = include_str!("../../../xtask/tests/fixtures/sqlite3-dump.sql");
const VIRTUAL: &str = "PRAGMA defer_foreign_keys=TRUE;\n\
    CREATE TABLE report_configs (id INTEGER PRIMARY KEY, name TEXT, content TEXT);\n\
    INSERT INTO \"report_configs\" VALUES(1,'a','b');\n\
    CREATE VIRTUAL TABLE customer_search USING fts5(name, email);\n\
    CREATE VIRTUAL TABLE report_search USING fts5(name, content='report_configs', content_rowid='id');\n\
    CREATE TRIGGER t AFTER INSERT ON report_configs BEGIN INSERT INTO report_search(rowid, name) VALUES (new.id, new.name); END;\n\
    CREATE VIEW v AS SELECT * FROM report_configs;\n\
    DELETE FROM sqlite_sequence;\nINSERT INTO \"sqlite_sequence\" VALUES('report_configs',1);\n";

/// Pieces a mutation inserts: the tokens a splitter or a literal parser
/// must get right.
const PIECES: &[&[u8]] = &[
    b"'",
    b"\"",
    b"`",
    b"[",
    b"]",
    b";",
    b"--",
    b"/*",
    b"*/",
    b"X'",
    b"x'0",
    b"\0",
    b"\r",
    b"\r\n",
    b"\n",
    b"\xEF\xBB\xBF",
    b"(",
    b")",
    b"CASE ",
    b" END",
    b"BEGIN ",
    b"END;",
    b"CREATE TRIGGER x AFTER INSERT ON t BEGIN ",
    b"INSERT INTO \"t\" VALUES(",
    b"replace('",
    b"','\\n',char(10))",
    b"unistr('\\0041')",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"99999999999999999999999999999",
    b"-9223372036854775808",
    b"1e999",
    b"9223372036854775808",
    b"NULL",
    b",",
    b"CREATE TABLE ",
    b"CREATE VIRTUAL TABLE v USING fts5(",
    b"PRAGMA ",
    b"ATTACH 'x' AS y;",
    b"BEGIN TRANSACTION;",
    b"COMMIT;",
    b"DELETE FROM sqlite_sequence;",
    b"INSERT INTO sqlite_sequence VALUES('t',",
    b"_cf_KV",
    b"d1_migrations",
    b"\\",
    b"$",
    b"?",
    b":a",
    b"\xe2\x80\xae",
    b"\t",
    b"\x0b",
    b"\x1b[31m",
];

fn mutate(rng: &mut Random, seeds: &[&[u8]]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(11) {
            0 => {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
            }
            1 => data.truncate(at),
            2 => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let tail = other[from..].to_vec();
                data.truncate(at);
                data.extend_from_slice(&tail);
            }
            3..=5 => {
                let piece = PIECES[rng.below(PIECES.len())];
                data.splice(at..at, piece.iter().copied());
            }
            6 => {
                // A long run of one byte.
                let b = *b"'(;-/*x0 \n\"\\".get(rng.below(13)).unwrap_or(&b'(');
                let n = 1 + rng.below(20_000);
                data.splice(at..at, std::iter::repeat_n(b, n));
            }
            7 => {
                // Deep nesting.
                let depth = 1 + rng.below(5_000);
                let (open, close): (&[u8], &[u8]) = match rng.below(4) {
                    0 => (b"(", b")"),
                    1 => (b"CASE WHEN 1 THEN ", b" END"),
                    2 => (b"BEGIN ", b" END;"),
                    _ => (b"(SELECT ", b")"),
                };
                let mut nested = open.repeat(depth);
                nested.push(b'1');
                nested.extend(close.repeat(depth));
                data.splice(at..at, nested);
            }
            8 => {
                // Delete a range.
                let end = (at + rng.below(200)).min(data.len());
                data.drain(at..end);
            }
            9 => {
                // Duplicate a range.
                let end = (at + rng.below(500)).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
            _ => {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
        }
    }
    data.truncate(120_000);
    data
}

fn iterations(default: usize) -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn seed(default: u64) -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` on `input`; a panic or a slow call fails the test, with the
/// input written under the target dir so that it can be replayed.
fn guarded(kind: &str, case: usize, input: &[u8], limit: Duration, f: impl FnOnce()) {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let took = started.elapsed();
    if outcome.is_err() || took > limit {
        let path = std::env::temp_dir().join(format!("fuzz-{kind}-{case}.bin"));
        let _ = std::fs::write(&path, input);
        panic!(
            "{kind} case {case}: {} after {took:?} on {} bytes, input kept in {}",
            if outcome.is_err() {
                "panicked"
            } else {
                "too slow"
            },
            input.len(),
            path.display()
        );
    }
}

/// A sink that keeps nothing: the repair's statements are only counted.
struct Count(usize);

impl Sink for Count {
    fn statement(&mut self, _sql: &str) -> anyhow::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

/// Values of the seed dump that must never appear in an error.
const ROW_VALUES: &[&str] = &[
    "SECRETVALUE",
    "O''Brien",
    "argon2id",
    "line1",
    "example.com",
];

fn no_row_values(kind: &str, message: &str) {
    for value in ROW_VALUES {
        assert!(
            !message
                .to_ascii_lowercase()
                .contains(&value.to_ascii_lowercase()),
            "{kind}: an error quotes a row value ({value}): {message}"
        );
    }
}

/// Every reader of a dump, on `bytes`.
pub fn read_dump(bytes: &[u8]) {
    let _ = d1_core::dump::check_looks_like_sql(&bytes[..bytes.len().min(4096)]);
    let key = Some(d1_core::app::KeyRecord {
        table: "encryption_keys".into(),
        key_id: "key_id".into(),
        fingerprint: "fingerprint".into(),
        retired_at: "retired_at".into(),
        activated_at: "activated_at".into(),
    });
    match d1_core::dump::summarize(bytes, &BTreeMap::new(), key.as_ref()) {
        Ok(_) => {}
        Err(e) => no_row_values("summarize", &format!("{e:#}")),
    }
    let mut statements = Vec::new();
    for statement in d1_sql::statements::Statements::new(bytes) {
        match statement {
            Ok(s) => statements.push(s.sql),
            Err(e) => {
                no_row_values("splitter", &format!("{e:#}"));
                break;
            }
        }
    }
    let mut tables = Vec::new();
    let mut schema = Vec::new();
    for sql in &statements {
        let _ = d1_sql::literal::parse(sql).map(|row| (row.table().len(), row.template()));
        let _ = d1_sql::literal::dump_insert_table(sql);
        use d1_core::statement as s;
        let _ = (
            s::skip_trivia(sql),
            s::leading_word(sql),
            s::first_keyword(sql),
        );
        let _ = (
            s::is_rows_as_values(sql),
            s::refused_kind(sql),
            s::insert_target(sql),
        );
        let _ = (
            s::split_insert(sql),
            s::creates_from_select(sql),
            s::describe(sql),
        );
        let _ = d1_core::digest::wide_in_insert(sql);
        let _ = d1_core::catalog::module_arguments(sql);
        if let Some((kind, name)) = s::created_object(sql) {
            let _ = d1_core::catalog::VirtualTable::from_sql(&name, sql)
                .map(|vt| vt.lost_by_a_backup());
            let _ = d1_core::manifest::check_virtual_table_ddl(sql, &[name.as_str()]);
            if kind == "table" {
                tables.push((name, sql.clone()));
            }
            schema.push(sql.clone());
        }
    }
    let schema: Vec<String> = schema.into_iter().take(50).collect();
    let _ = d1_core::catalog::rowids_kept_by_triggers(&schema);
    let _ = d1_core::catalog::stuck_triggers(&schema);
    let _ = d1_core::fk_actions::side_writes(&schema, &[]);

    for options in [
        Options::default(),
        Options {
            data_into_existing_schema: true,
            known_tables: tables.iter().take(20).cloned().collect(),
            ..Options::default()
        },
    ] {
        let survey = match repair::survey(bytes, &options) {
            Ok(survey) => survey,
            Err(e) => {
                no_row_values("survey", &format!("{e:#}"));
                continue;
            }
        };
        if let Err(e) = survey.ensure_repairable() {
            no_row_values("ensure_repairable", &format!("{e:#}"));
            continue;
        }
        if let Err(e) = repair::write(bytes, &survey, &options, &mut Count(0)) {
            no_row_values("write", &format!("{e:#}"));
        }
        let mut preflight = repair::Preflight::new(&options).unwrap();
        if let Err(e) = repair::write(bytes, &survey, &options, &mut preflight) {
            no_row_values("preflight", &format!("{e:#}"));
        }
        let mut one = d1_core::one_pass::OnePass::new(&options, tables.clone());
        let mut sink = Count(0);
        for sql in &statements {
            match one.statement(sql, &mut sink) {
                Ok(true) => {}
                _ => break,
            }
        }
        let _ = one.end(&mut sink);
        let _ = one.finish(&survey);
    }
}

fn dump_seeds() -> Vec<&'static [u8]> {
    let mut seeds = vec![
        DUMP.as_bytes(),
        SQLITE3_DUMP.as_bytes(),
        VIRTUAL.as_bytes(),
        b"" as &[u8],
    ];
    seeds.extend(MIGRATIONS.iter().map(|m| m.as_bytes()));
    seeds
}

#[test]
fn hostile_dumps_neither_panic_nor_hang() {
    let seeds = dump_seeds();
    let mut rng = Random(seed(0x5eed_d1d1_0001));
    // Each seed whole and cut at many lengths first.
    let mut case = 0;
    for s in &seeds {
        for cut in (0..=s.len()).step_by(97.max(s.len() / 60)) {
            let input = &s[..cut];
            guarded("dump", case, input, Duration::from_secs(2), || {
                read_dump(input)
            });
            case += 1;
        }
    }
    for _ in 0..iterations(150) {
        let input = mutate(&mut rng, &seeds);
        guarded("dump", case, &input, Duration::from_secs(2), || {
            read_dump(&input)
        });
        case += 1;
    }
}

/// Every reader of a manifest, on `bytes`.
fn read_manifest(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = d1_core::catalog::Catalog::from_wrangler_json(&value);
    }
    let Ok(manifest) = d1_core::manifest::Manifest::from_json(text) else {
        return;
    };
    let name = "backup-local-20261203-1142.manifest.json";
    if let Err(e) = manifest.validate(name) {
        let _ = format!("{e:#}");
        return;
    }
    let _ = (manifest.is_newer_format(), manifest.virtual_table_ddl());
    let _ = (
        manifest.applied_migrations(),
        manifest.rows_go_on_todays_migrations(),
    );
    let _ = (
        manifest.checked_rows(),
        manifest.is_whole(),
        manifest.is_verified_good(),
    );
    let _ = (
        manifest.is_age_sealed(),
        manifest.sql_digest(),
        manifest.sealed_to(),
    );
    let summary =
        d1_core::dump::summarize(DUMP.as_bytes(), &BTreeMap::new(), None).unwrap_or_default();
    let _ = manifest.contradictions(&summary, true);
    let _ = manifest.to_json();
}

fn json_mutations(rng: &mut Random, seed: &str) -> Vec<u8> {
    let mut text = seed.to_owned();
    match rng.below(6) {
        0 => {
            // A duplicate key.
            text = text.replacen(
                "\"mode\": \"full\",",
                "\"mode\": \"full\", \"mode\": \"tables\",",
                1,
            );
        }
        1 => {
            let depth = 1 + rng.below(12_000);
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            text = text.replacen("\"reason\": null", &format!("\"reason\": {nested}"), 1);
        }
        2 => {
            let numbers = [
                "1e999",
                "-1",
                "18446744073709551616",
                "-9223372036854775809",
                "1.5",
                "0",
            ];
            let n = numbers[rng.below(numbers.len())];
            let fields = [
                "\"bytes\": 7045",
                "\"statements\": 26",
                "\"format_version\": 1",
                "\"accounts\": 0",
            ];
            let f = fields[rng.below(fields.len())];
            let key = f.split(':').next().unwrap();
            text = text.replacen(f, &format!("{key}: {n}"), 1);
        }
        3 => {
            let strings = [
                "\\u0000",
                "\\ud800",
                "../../etc/passwd",
                "a\\nb",
                "\\u202e",
                "CREATE VIRTUAL TABLE x USING fts5(a); DROP TABLE y",
            ];
            let s = strings[rng.below(strings.len())];
            let fields = [
                "0001_accounts_companies_customers.sql",
                "backup-local-20261203-1142.sql",
                "qbtime_db_local",
                "2026-12-03T11:42:32.854264713Z",
            ];
            let f = fields[rng.below(fields.len())];
            text = text.replace(f, s);
        }
        4 => {
            text = text.replacen(
                "\"virtual_tables\": null",
                "\"virtual_tables\": [{\"name\":\"s\",\"sql\":\"CREATE VIRTUAL TABLE s USING fts5(a, content='t', content_rowid='id'\"}]",
                1,
            );
        }
        _ => {}
    }
    let seeds: [&[u8]; 1] = [text.as_bytes()];
    if rng.below(2) == 0 {
        mutate(rng, &seeds)
    } else {
        text.into_bytes()
    }
}

#[test]
fn hostile_manifests_neither_panic_nor_hang() {
    let mut rng = Random(seed(0x5eed_d1d1_0002));
    let bytes = MANIFEST.as_bytes();
    let mut case = 0;
    for cut in 0..=bytes.len() {
        guarded(
            "manifest",
            case,
            &bytes[..cut],
            Duration::from_secs(1),
            || read_manifest(&bytes[..cut]),
        );
        case += 1;
    }
    for _ in 0..iterations(1500) {
        let input = json_mutations(&mut rng, MANIFEST);
        guarded("manifest", case, &input, Duration::from_secs(1), || {
            read_manifest(&input)
        });
        case += 1;
    }
}

/// The short readers: a span, an age recipient, a backup's name.
fn read_words(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = d1_core::span::parse(&text).map(|s| {
        let now = chrono::Utc::now();
        (
            s.before(now),
            s.holds(now, now),
            s.days_at_most(),
            s.is_zero(),
        )
    });
    let _ = d1_core::sealed::check_recipient(&text);
    let _ = d1_core::sealed::holds_a_secret_key(&text);
    let _ = d1_core::manifest::stamp_in_backup_name(&text);
    let _ = d1_core::names::shown(&text);
    let _ = d1_core::names::is_bookmark(&text);
    let _ = d1_core::app::check_endpoint(&text);
    let _ = d1_core::statement::qualified_name(&text);
    let _ = d1_core::statement::column_list(&text);
}

#[test]
fn hostile_words_neither_panic_nor_hang() {
    let seeds: Vec<&[u8]> = vec![
        b"1y6m2w3d12h",
        b"30d",
        b"26h",
        b"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        b"backup-prod-20261124-1200.sql.zst.age",
        b"/api/v1/auth/session",
        b"00000085000000000000000000000000000000000000000000000000",
        b"\"main\".\"t\" (\"a\",\"b\") VALUES(1)",
    ];
    let mut rng = Random(seed(0x5eed_d1d1_0003));
    for case in 0..iterations(5000) {
        let mut input = mutate(&mut rng, &seeds);
        input.truncate(2_000);
        guarded("word", case, &input, Duration::from_secs(1), || {
            read_words(&input)
        });
    }
    for word in [
        "9999999999999999999y",
        "99999999999y",
        "9223372036854775807d",
        "1y1y",
        "-1d",
        "0h",
    ] {
        guarded("word", 0, word.as_bytes(), Duration::from_secs(1), || {
            read_words(word.as_bytes())
        });
    }
}
