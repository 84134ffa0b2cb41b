//! The printed plan: the source, the target, the migrations, the load,
//! the repairs and notes, the `--json` plan, the migrations pending
//! afterwards, and the binding printed for a new database.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::source::source_environment;
use super::target::KeyCheck;
use super::{KEY_WARNING, Mode, RestoreArgs, Source};
use crate::config::environment::{Environment, Environments};
use crate::config::project::Project;
use crate::edge::wrangler::Commands;
use crate::steps::new_database::{self, NewDatabase};
use d1_core::catalog::StuckTrigger;
use d1_core::manifest::Manifest;
use d1_core::names::file_name;
use d1_core::repair;

/// The plan's last lines: FTS tables rebuilt, FTS5 shadow tables restored
/// as plain tables, rowids renumbered and wide integers a backup rounded.
/// Returns the renumbered tables, as said.
pub(super) fn print_plan_notes(p: &PlanView<'_>) -> Vec<String> {
    let source = p.source;
    for why in p.fts_rebuilt {
        crate::say!("  REBUILT      {why}");
    }
    if let Some(why) = plain_shadow_tables_said(p.no_fts5) {
        crate::say!("  NO FTS5      {why}");
    }
    let renumbered: Vec<String> = source
        .manifest
        .iter()
        .flat_map(|m| m.rowids_renumbered.iter().flatten())
        .map(|(table, triggers)| crate::steps::backup::renumbered_said(table, triggers))
        .collect();
    for why in &renumbered {
        crate::say!("  RENUMBERS    {why}");
    }
    if !source.wide_integers.is_empty() {
        crate::say!(
            "  ROUNDED?     {}",
            crate::steps::backup::wide_integers_said(&source.wide_integers)
        );
    }
    if let Some(said) = source.manifest.as_ref().and_then(whole_reals_note) {
        crate::say!("  RETYPED?     {said}");
    }
    if let Some(said) = source.manifest.as_ref().and_then(replaced_text_note) {
        crate::say!("  REPLACED     {said}");
    }
    if let Some(said) = source.manifest.as_ref().and_then(ambiguous_text_note) {
        crate::say!("  AMBIGUOUS    {said}");
    }
    renumbered
}

/// The plan's note of a remote backup's whole REALs
/// (`Manifest::whole_reals`): those it counted, or that it did not count
/// them (an earlier version's manifest, which recorded them only where
/// there were any, or a count that failed); none where it counted none, or
/// where no count is taken (a local or schema-only backup).
fn whole_reals_note(manifest: &Manifest) -> Option<String> {
    match &manifest.whole_reals {
        Some(whole) if whole.is_empty() => None,
        Some(whole) => Some(crate::steps::backup::whole_reals_said(whole)),
        None if whole_reals_are_counted(manifest) => Some(
            "whole REALs not counted: this backup's manifest records no count of them (an \
                 earlier version recorded them only where there were any, or the count failed), \
                 so its export may have written a whole REAL (3.0) in a column of BLOB affinity \
                 as an integer, which the restore brings back as an INTEGER (README, Whole REALs \
                 in a remote backup)"
                .to_owned(),
        ),
        None => None,
    }
}

/// The plan's note of a remote backup's text that is not UTF-8
/// (`Manifest::replaced_text`): what it found, or that it did not look (a
/// read that failed or left a table out, or an earlier version's
/// manifest); none where it found none, or where nobody looks (a local or
/// schema-only backup).
fn replaced_text_note(manifest: &Manifest) -> Option<String> {
    per_column_note(
        manifest,
        &manifest.replaced_text,
        crate::steps::backup::replaced_text_said,
        "text that is not UTF-8 not counted: this backup's manifest records no look for \
         it (its read failed or left a table out, or an earlier version wrote the \
         manifest), so its export may have replaced such text with U+FFFD (README, Text \
         that is not UTF-8 in a remote backup)",
    )
}

/// The plan's note of a remote backup's text holding a line break and
/// `\n` (`Manifest::ambiguous_text`), as [`replaced_text_note`].
fn ambiguous_text_note(manifest: &Manifest) -> Option<String> {
    per_column_note(
        manifest,
        &manifest.ambiguous_text,
        crate::steps::backup::ambiguous_text_said,
        "text with a line break and `\\n` not counted: this backup's manifest records no \
         look for it (its read failed or left a table out, or an earlier version wrote the \
         manifest), so its export may have turned a `\\n` in text with a line break into a \
         line break too (README, Text with a line break and `\\n` in a remote backup)",
    )
}

/// The plan's note of `recorded`, a count per column of `manifest`:
/// `said` of what it found, `not_counted` where it did not look (and a
/// backup like it looks), none where it found none or nobody looks.
fn per_column_note(
    manifest: &Manifest,
    recorded: &Option<crate::steps::backup::PerColumn>,
    said: fn(&crate::steps::backup::PerColumn) -> String,
    not_counted: &str,
) -> Option<String> {
    match recorded {
        Some(found) if found.is_empty() => None,
        Some(found) => Some(said(found)),
        None if whole_reals_are_counted(manifest) => Some(not_counted.to_owned()),
        None => None,
    }
}

/// Whether a backup like `manifest`'s takes a count of its whole REALs:
/// a remote one of rows. A local export writes them exactly, and a
/// schema-only backup holds none.
fn whole_reals_are_counted(manifest: &Manifest) -> bool {
    manifest.database.location == "remote" && manifest.mode != "schema-only"
}

/// The dump's plain tables that look like an FTS5 table's shadow tables,
/// by that FTS5 table (ASCII case aside, as SQLite names it; spelt as the
/// dump first writes it), each list in the dump's order: the plan's `NO FTS5`
/// line and `--json`'s `plan.no_fts5`.
pub(super) type PlainShadowTables = BTreeMap<String, Vec<String>>;

/// The dump's tables that look like the shadow tables of an FTS5 table it
/// does not create (`wrangler d1 export --table` writes each named shadow
/// table as a plain table, with its rows and no `CREATE VIRTUAL TABLE`):
/// they are restored as plain tables, with no FTS5 table and no index.
/// None with `--clean`, which makes no table of the dump's: the migrations
/// make the schema (an FTS5 table among it), and rows into a shadow table
/// of one are refused before anything runs.
pub(super) fn plain_shadow_tables(
    source: &Source,
    schema: &[String],
    mode: Mode,
) -> PlainShadowTables {
    let mut by_fts5 = PlainShadowTables::new();
    let dumps_own = match mode {
        Mode::Clean => &[][..],
        _ => schema,
    };
    for sql in dumps_own {
        let Some(("table", name)) = d1_core::statement::created_object(sql) else {
            continue;
        };
        let Some(fts5) = d1_core::catalog::fts5_table_shadowed_by(&name, sql) else {
            continue;
        };
        let recorded = { source.virtual_tables.iter() }.any(|v| v.name.eq_ignore_ascii_case(&fts5));
        if !recorded {
            // One FTS5 table to SQLite, ASCII case aside: keyed as first written.
            let key = { by_fts5.keys() }
                .find(|k| k.eq_ignore_ascii_case(&fts5))
                .cloned()
                .unwrap_or(fts5);
            by_fts5.entry(key).or_default().push(name);
        }
    }
    by_fts5
}

/// The plan's `NO FTS5` line on [`plain_shadow_tables`], if any.
fn plain_shadow_tables_said(by_fts5: &PlainShadowTables) -> Option<String> {
    let shown = d1_core::names::shown;
    let each: Vec<String> = { by_fts5.iter() }
        .map(|(fts5, tables)| {
            let tables: Vec<String> = tables.iter().map(|t| shown(t).to_string()).collect();
            format!("{} of FTS5 table {}", tables.join(", "), shown(fts5))
        })
        .collect();
    (!each.is_empty()).then(|| {
        format!(
            "{}: these look like the shadow tables of FTS5 tables the dump does not create (an \
             export of tables named one by one, `wrangler d1 export --table`), so they will be \
             plain tables with their rows, with no FTS5 table and no search index; a backup \
             that carries FTS5 tables: `cargo xtask backup`",
            each.join("; ")
        )
    })
}

/// The same notes in `--json`'s plan: `breaks`, `rebuilt`, `no_fts5`,
/// `wide_integers`, `whole_reals` and `whole_reals_counted`,
/// `replaced_text` and `replaced_text_counted`, `ambiguous_text` and
/// `ambiguous_text_counted`, `renumbered`;
/// and the `repairs` ([`repairs_json`]).
fn add_plan_notes(json: &mut serde_json::Value, p: &PlanView<'_>) {
    let source = p.source;
    json["breaks"] = { p.stuck.iter() }
        .map(|t| {
            serde_json::json!({
                "table": t.table,
                "statement": t.statement,
                "triggers": t.triggers,
                "error": t.error,
            })
        })
        .collect();
    json["repairs"] = repairs_json(p.survey);
    json["rebuilt"] = serde_json::json!(p.fts_rebuilt);
    json["no_fts5"] = serde_json::json!(p.no_fts5);
    json["wide_integers"] = serde_json::json!(source.wide_integers);
    json["whole_reals"] = serde_json::json!(
        source
            .manifest
            .as_ref()
            .and_then(|m| m.whole_reals.clone())
            .unwrap_or_default()
    );
    // `whole_reals` is empty both where none were counted and where they
    // were not counted: this tells them apart, as the text plan does; null
    // where no count applies (a local or schema-only backup; a dump with
    // no manifest restored locally, or of no rows), of which the text plan
    // says nothing. A dump with no manifest restored remotely: nobody
    // counted, and a remote export may have written them as integers.
    let remote = p.target.location == crate::config::environment::Location::Remote;
    json["whole_reals_counted"] = match source.manifest.as_ref() {
        Some(m) if m.whole_reals.is_some() => serde_json::json!(true),
        Some(m) if whole_reals_are_counted(m) => serde_json::json!(false),
        None if remote && source.rows.values().any(|rows| *rows > 0) => serde_json::json!(false),
        _ => serde_json::Value::Null,
    };
    // Per table and column, the text a remote backup's export replaced
    // with U+FFFD, and the text whose `\n` it turns into a line break
    // (`{}` for none, or where it did not look), and whether it looked, as
    // `whole_reals_counted`.
    let per_column = [
        (
            "replaced_text",
            source.manifest.as_ref().map(|m| &m.replaced_text),
        ),
        (
            "ambiguous_text",
            source.manifest.as_ref().map(|m| &m.ambiguous_text),
        ),
    ];
    for (field, recorded) in per_column {
        json[field] = serde_json::json!(recorded.cloned().flatten().unwrap_or_default());
        json[format!("{field}_counted")] = match (source.manifest.as_ref(), recorded) {
            (_, Some(Some(_))) => serde_json::json!(true),
            (Some(m), _) if whole_reals_are_counted(m) => serde_json::json!(false),
            (None, _) if remote && source.rows.values().any(|rows| *rows > 0) => {
                serde_json::json!(false)
            }
            _ => serde_json::Value::Null,
        };
    }
    json["renumbered"] = serde_json::json!(
        source
            .manifest
            .as_ref()
            .and_then(|m| m.rowids_renumbered.clone())
            .unwrap_or_default()
    );
}

/// The plan, as `--json` prints it, with its notes ([`add_plan_notes`]).
pub(super) fn plan_json(p: &PlanView<'_>) -> serde_json::Value {
    let (source, target) = (p.source, p.target);
    let mut json = serde_json::json!({
        "source": source.file,
        "source_environment": source.environment,
        "target": {
            "environment": target.name,
            "database": target.database_name,
            "location": target.location.to_string(),
            "new": p.new.is_some(),
            "location_hint": p.args.location,
        },
        "mode": p.mode.name(),
        "existing_objects": p.existing.len(),
        "loses": losses(p),
        "safety_backup": p.safety_backup,
    });
    add_plan_notes(&mut json, p);
    json
}

pub(super) struct PlanView<'a> {
    pub(super) repository: String,
    pub(super) source: &'a Source,
    pub(super) target: &'a Environment,
    pub(super) mode: Mode,
    pub(super) existing: &'a [(String, String)],
    pub(super) survey: &'a repair::Survey,
    pub(super) safety_backup: bool,
    pub(super) fast_local: bool,
    pub(super) key_check: &'a KeyCheck,
    pub(super) cmds: &'a Commands,
    pub(super) new: Option<&'a NewDatabase>,
    /// See [`super::source::migrations_dir_for`].
    pub(super) migrations_dir: &'a Path,
    pub(super) pending_after: &'a PendingAfter,
    pub(super) stuck: &'a [StuckTrigger],
    /// See `plan`: a backup of chosen tables that records no counters.
    pub(super) uncounted: bool,
    pub(super) args: &'a RestoreArgs,
    /// The plan's `REBUILT` lines.
    pub(super) fts_rebuilt: &'a [String],
    pub(super) no_fts5: &'a PlainShadowTables,
    /// See [`super::dropped_not_made`].
    pub(super) dropped: &'a [(&'static str, String)],
}

pub(super) fn print_plan(p: &PlanView<'_>) {
    let mut out = String::from("Restore plan\n");
    let _ = writeln!(out, "  {}", p.repository);
    plan_source(&mut out, p);
    plan_target(&mut out, p);
    plan_load(&mut out, p);
    plan_repairs(&mut out, p);
    crate::say!("{out}");
    warn_what_is_lost(&out);
    show_what_is_destroyed(&out, p);
}

/// Under `-q`, which hides the plan, each of its `LOSES` lines as a
/// warning, whatever confirms the restore: a table and its rows gone is
/// never told by the plan alone (NT).
fn warn_what_is_lost(plan: &str) {
    if !crate::out::plan_hidden() {
        return;
    }
    for lost in { plan.lines() }.filter_map(|l| l.strip_prefix("  LOSES ")) {
        crate::warn!("this restore LOSES {}", lost.trim_start());
    }
}

/// Under `-q`, which hides the plan, its `drops` lines on stderr when the
/// database's name is then asked at the terminal, after the warnings of
/// what it loses ([`warn_what_is_lost`]): the name is typed knowing what
/// is lost. A confirmation given on the command line (`--yes`,
/// `--confirm`) asks nothing and shows no more.
fn show_what_is_destroyed(plan: &str, p: &PlanView<'_>) {
    use std::io::IsTerminal as _;
    let interactive = std::io::stdin().is_terminal();
    let asked = crate::edge::confirm::decide(p.target, &p.args.confirm, interactive, "");
    if p.args.dry_run || !matches!(asked, crate::edge::confirm::Decision::Ask(_)) {
        return;
    }
    let destroyed: Vec<&str> = { plan.lines() }
        .filter(|l| l.starts_with("  drops "))
        .collect();
    if !destroyed.is_empty() {
        crate::out::before_asking(&format!(
            "Restore plan (-q shows only what it destroys):\n{}",
            destroyed.join("\n")
        ));
    }
}

/// The plan's line on the backup's last verification, as its manifest
/// records it; a backup that failed it is restored with a warning.
pub(super) fn plan_verification(out: &mut String, s: &Source, m: &Manifest) {
    let Some(v) = &m.verification else {
        let _ = writeln!(
            out,
            "  verified     never (`cargo xtask verify {}` checks it first)",
            d1_core::wording::shell_word(&s.file.display().to_string())
        );
        return;
    };
    let at = v.verified_at.format("%Y-%m-%d %H:%M UTC");
    if m.changed_since_verified() {
        let _ = writeln!(
            out,
            "  verified     GOOD, {at}, but its manifest was changed since (`cargo xtask verify \
             {}` checks it again)",
            d1_core::wording::shell_word(&s.file.display().to_string())
        );
        return;
    }
    let Some(failed) = failed_checks(m) else {
        let _ = writeln!(out, "  verified     GOOD, {at}");
        return;
    };
    let _ = writeln!(out, "  verified     BAD, {at}: failed {failed}");
    warn_if_failed_verification(&s.file, m);
}

/// The names of the checks the backup's last verification failed, as its
/// manifest records them, shown as one list; `None` when it passed or
/// never ran. By name only: what they found is the file's, not a message's.
pub(super) fn failed_checks(m: &Manifest) -> Option<String> {
    let v = m.verification.as_ref().filter(|v| !v.is_good())?;
    let failed: Vec<&str> = v
        .failed
        .iter()
        .map(|f| f.split(':').next().unwrap_or_default().trim())
        .collect();
    Some(d1_core::names::shown(&failed.join(", ")).to_string())
}

/// The warning (even with `-q`) that a backup about to be loaded, by
/// `restore` or as a rehearsal's prod, failed its last verification.
pub(crate) fn warn_if_failed_verification(file: &Path, m: &Manifest) {
    if let Some(failed) = failed_checks(m) {
        crate::warn!(
            "{} failed its verification ({failed}): a restore of it may not give back the \
             database it was taken from; `cargo xtask list` names the good backups",
            file.display(),
        );
    }
}

/// `chosen tables only (a, b) of ` for a backup of chosen tables (`backup
/// --table`), as the plan's `LOSES` line says it; empty for a whole one.
/// The manifest line said "full backup of qbtime_db_local … 3 tables" of
/// one (rvCJ 5).
fn chosen_tables(m: &Manifest) -> String {
    if m.tables.is_empty() {
        return String::new();
    }
    format!("chosen tables only ({}) of ", chosen_names(m))
}

/// The tables a backup of chosen tables holds, shown and joined.
fn chosen_names(m: &Manifest) -> String {
    { m.tables.iter() }
        .map(|t| d1_core::names::shown_cut(t))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan's lines on the backup and its manifest.
pub(super) fn plan_source(out: &mut String, p: &PlanView<'_>) {
    let s = p.source;
    let _ = writeln!(out, "  source       {}", s.file.display());
    match &s.manifest {
        Some(m) => {
            // Counted as the backup and its verify count them.
            let (tables, rows) = m.checked_rows();
            let _ = writeln!(
                out,
                "  manifest     {} backup of {}{} ({}), taken {}, {}, {}; sha256 and size match",
                m.mode,
                chosen_tables(m),
                m.database.name,
                m.environment,
                m.created_at.format("%Y-%m-%d %H:%M UTC"),
                d1_core::wording::count(tables, "table"),
                d1_core::wording::count(rows, "row")
            );
            // `latest` after the damage may be the damaged state, taken by
            // hand with a reason that says so.
            if let Some(reason) = m.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                let reason = d1_core::manifest::clip_reason(reason);
                let _ = writeln!(out, "  reason       {}", d1_core::names::shown(&reason));
            }
            if p.target.is_production()
                && !m.database.uuid.eq_ignore_ascii_case(&p.target.database_id)
            {
                let _ = writeln!(
                    out,
                    "  replaced     a backup of {}'s REPLACED database (id {:?}), not of the one now \
                     configured (id {}): --previous-database-id says production's database was \
                     deleted and created again under this name after this backup",
                    m.database.name, m.database.uuid, p.target.database_id
                );
            }
            plan_verification(out, s, m);
            if let Some(sequences) = m.sequences.as_ref().filter(|s| !s.is_empty()) {
                let listed: Vec<String> = sequences
                    .iter()
                    .map(|(table, seq)| format!("{} {seq}", d1_core::names::shown_name(table)))
                    .collect();
                let _ = writeln!(
                    out,
                    "  counters     {} (AUTOINCREMENT, as the manifest records them; set after \
                     the rows, never below what they make them)",
                    listed.join(", ")
                );
            } else if p.uncounted {
                // A backup of chosen tables written before their counters
                // were recorded: the export leaves `sqlite_sequence` out.
                let _ = writeln!(
                    out,
                    "  counters     not recorded (an earlier version of this tool took this \
                     backup of chosen tables before it recorded their AUTOINCREMENT counters): \
                     each is set from the rows, so an id deleted before the backup, above the \
                     highest kept, may be given again to a new row"
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  manifest     none (--no-manifest): skipped the sha256 and size check, the source-environment \
                 check{}, and the virtual-table records; row counts are checked against the dump itself",
                if s.environment.is_some() {
                    " (you stated the source environment)"
                } else {
                    ""
                }
            );
        }
    }
}

/// The plan's lines on the target, the mode and what goes first.
pub(super) fn plan_target(out: &mut String, p: &PlanView<'_>) {
    let t = p.target;
    let _ = writeln!(
        out,
        "  target       {} -> {} ({} D1{})",
        t.name,
        t.database_name,
        t.location,
        if p.new.is_some() {
            ", a new database; no database of that name exists in the account"
        } else {
            ""
        }
    );
    if let Some(n) = p.new {
        let _ = writeln!(
            out,
            "  first        {} (in the account {}; wrangler runs with a private \
             configuration, removed when the restore ends)",
            n.cmds
                .d1_create(&t.database_name, n.location.as_deref())
                .without_config(),
            match (&t.account_id, n.account_from_env()) {
                (Some(id), _) => id.clone(),
                (None, Some(read)) => format!("{} ({})", read.id, read.name),
                (None, None) => "that `wrangler login` or the token gives (CLOUDFLARE_ACCOUNT_ID \
                                 is not set)"
                    .to_owned(),
            }
        );
    }
    let _ = writeln!(out, "  mode         {}", p.mode.name());
    if p.mode == Mode::Replace && !p.existing.is_empty() {
        let names: Vec<String> = p.existing.iter().map(object_said).collect();
        let _ = writeln!(
            out,
            "  drops        {}",
            crate::out::listed(&names, "object")
        );
        loses_every_row(out, p.source);
        // Tables the backup does not have are not replaced: their rows are
        // gone afterwards (a backup from before the migration that made them).
        let lost = lost_tables(p.existing, p.survey, p.source);
        if !lost.is_empty() {
            let it = d1_core::wording::them(lost.len());
            let chosen = p.source.manifest.as_ref().filter(|m| !m.tables.is_empty());
            let why = match chosen {
                // Every row of the target is gone, said in so many words.
                None if p.survey.creates_no_table() => {
                    "the backup holds no tables: it is of an empty database, and the target is \
                     left with none"
                        .to_owned()
                }
                Some(m) => format!("it holds chosen tables only ({})", chosen_names(m)),
                None => format!("taken before the migration that made {it}?"),
            };
            let _ = writeln!(
                out,
                "  LOSES        {} and every row in {it}: the backup does not have {it} ({why}); \
                 afterwards the database has the backup's schema, and `cargo xtask migrate {} \
                 --dry-run` lists what is pending again",
                crate::out::listed(
                    &lost
                        .iter()
                        .map(|t| format!("table {}", d1_core::names::shown_cut(t)))
                        .collect::<Vec<_>>(),
                    "table"
                ),
                p.target.name,
            );
        }
        plan_dropped(out, p);
    }
    plan_migrations(out, p);
}

/// `--replace`'s `LOSES` line for the target's indexes, triggers and
/// views it drops and the backup does not make again (a backup of chosen
/// tables, `wrangler d1 export --table`, holds none of them): gone
/// afterwards, as a table it lacks is, and said even when `-q` hides the
/// plan (PQ 1).
fn plan_dropped(out: &mut String, p: &PlanView<'_>) {
    if p.dropped.is_empty() {
        return;
    }
    let objects: Vec<String> = { p.dropped.iter() }
        .map(|(kind, name)| format!("{kind} {}", d1_core::names::shown_cut(name)))
        .collect();
    let it = d1_core::wording::them(objects.len());
    let _ = writeln!(
        out,
        "  LOSES        {}: the restore drops {it} and the backup does not make {it} again; \
         only the safety backup keeps {it}",
        crate::out::listed_as_shown(&objects, "object"),
    );
}

/// What the plan's `LOSES` lines say, for `--json`: each table the backup
/// does not have (`kind` `table`: it and its rows), and of a schema-only
/// backup each table it makes again empty (`kind` `rows`). `rows` is
/// null: the plan does not count the target's rows (the safety backup's
/// manifest does). With `--clean`, each object of the backup it leaves
/// out (`kind` `table`, `index`, `trigger` or `view`), a table with
/// `rows` 0, the backup's count.
fn losses(p: &PlanView<'_>) -> Vec<serde_json::Value> {
    if p.mode == Mode::Clean {
        return { p.source.left_out.iter() }
            .map(|(kind, name)| {
                let rows = (*kind == "table").then_some(0);
                serde_json::json!({ "kind": kind, "name": name, "rows": rows })
            })
            .collect();
    }
    if p.mode != Mode::Replace || p.existing.is_empty() {
        return Vec::new();
    }
    let lost = lost_tables(p.existing, p.survey, p.source);
    let emptied = { p.existing.iter() }
        .filter(|(kind, name)| kind == "table" && !lost.contains(&name.as_str()))
        .filter(|_| schema_only(p.source))
        .map(|(_, name)| ("rows", name.as_str()));
    let dropped = { p.dropped.iter() }.map(|(kind, name)| (*kind, name.as_str()));
    { lost.iter().map(|name| ("table", *name)) }
        .chain(emptied)
        .chain(dropped)
        .map(|(kind, name)| serde_json::json!({ "kind": kind, "name": name, "rows": null }))
        .collect()
}

/// Whether the backup holds no rows: `--schema-only`, or its manifest
/// says so.
fn schema_only(source: &Source) -> bool {
    source.schema_only || { source.manifest.as_ref() }.is_some_and(|m| m.mode == "schema-only")
}

/// `--replace`'s `LOSES` line for a schema-only backup, which makes every
/// table again empty: no table is missing from it, so no line of the
/// tables it lacks said that every row goes (ND).
fn loses_every_row(out: &mut String, source: &Source) {
    if schema_only(source) {
        let _ = writeln!(
            out,
            "  LOSES        every row of every table: the backup is schema-only (no rows, as \
             `wrangler d1 export --no-data` writes), so each table it makes is made again \
             empty; only the safety backup keeps the rows"
        );
    }
}

/// The plan's line on `--clean`'s `migrations apply`. A new database's
/// private configuration names the migrations directory by its absolute
/// path: the operator is shown which one.
pub(super) fn plan_migrations(out: &mut String, p: &PlanView<'_>) {
    if p.mode != Mode::Clean {
        return;
    }
    let apply = p.cmds.migrations_apply(p.target);
    let _ = match p.new {
        Some(_) => writeln!(
            out,
            "  first        {} (the migrations in {}, of the database the backup was taken \
             from)",
            apply.without_config(),
            p.migrations_dir.display()
        ),
        None => writeln!(out, "  first        {apply}"),
    };
    plan_left_out(out, p.source);
}

/// `--clean`'s `LOSES` line: what it leaves out of the backup
/// ([`Source::left_out`]), which no migration makes. Its tables hold no
/// row (rows with no table to go into are refused before the plan), but
/// a table made by hand is gone afterwards, said as `--replace` says a
/// table it drops.
fn plan_left_out(out: &mut String, source: &Source) {
    if source.left_out.is_empty() {
        return;
    }
    let said = |kind: &str| -> Vec<String> {
        { source.left_out.iter() }
            .filter(|(k, _)| kind.is_empty() || *k == kind)
            .map(|(k, name)| format!("{k} {}", d1_core::names::shown_cut(name)))
            .collect()
    };
    let (objects, tables) = (said(""), said("table"));
    let _ = writeln!(
        out,
        "  LOSES        {}: no migration makes {}, and --clean makes the migrations' schema and \
         loads the backup's rows into it; the backup holds no row of {}, so no row is lost",
        crate::out::listed_as_shown(&objects, "object"),
        d1_core::wording::them(objects.len()),
        crate::out::listed_as_shown(&tables, "table"),
    );
}

/// The plan's lines on the safety backup, the key and the load.
pub(super) fn plan_load(out: &mut String, p: &PlanView<'_>) {
    let t = p.target;
    let _ = writeln!(
        out,
        "  safety       {}",
        if p.safety_backup {
            format!(
                "a full backup of {} is taken first; the restore stops if it fails",
                t.database_name
            )
        } else if p.new.is_some() {
            "none: the database is new, so there is nothing on it to lose".to_owned()
        } else {
            "none: the target is an empty local database".to_owned()
        }
    );
    plan_since(out, p);
    if t.location == crate::config::environment::Location::Remote && p.new.is_none() {
        let _ = writeln!(
            out,
            "  downtime     D1 answers no other query on {} while {}the import runs, which \
             takes it offline: the app's requests to it fail until the restore ends",
            t.database_name,
            match p.safety_backup {
                true => "the safety backup exports it and ",
                false => "",
            }
        );
    }
    let _ = writeln!(
        out,
        "  key          {}",
        match p.key_check {
            KeyCheck::Same(f) => format!("backup and target both use {f}"),
            KeyCheck::TargetHasNone =>
                "the target records no key yet; nothing to compare".to_owned(),
            KeyCheck::BackupHasNone => "the backup records no key; nothing to compare".to_owned(),
            KeyCheck::NoRule => format!(
                "the app declares no data-encryption key ([app.encryption_key] in {}); nothing \
                 to compare",
                crate::config::settings::SETTINGS_FILE
            ),
            KeyCheck::AcceptedChange { backup, target, .. } =>
                format!("CHANGES from {target} to {backup} (--accept-key-change): {KEY_WARNING}"),
        }
    );
    let _ = writeln!(
        out,
        "  loads        the dump's {}, repaired, {}",
        d1_core::wording::count(p.survey.statements, "statement"),
        if p.fast_local {
            "straight into the local D1's SQLite file in one transaction (refused while another process has it open)"
        } else {
            "as one file through `wrangler d1 execute --file`, all or nothing"
        }
    );
    if let Some(then) = pending_again(p.pending_after, p.target) {
        let _ = writeln!(out, "  then         {then}");
    }
    for stuck in p.stuck {
        let _ = writeln!(out, "  BREAKS       {}", stuck_trigger(stuck, p.source));
    }
}

/// An object of the target as a plan names it: its kind and its name,
/// shown (`table "trail "`).
fn object_said((kind, name): &(String, String)) -> String {
    format!("{kind} {}", d1_core::names::shown_name(name))
}

/// The target's tables that `--replace` drops and the backup does not
/// make again: their rows are gone afterwards.
pub(super) fn lost_tables<'a>(
    existing: &'a [(String, String)],
    survey: &repair::Survey,
    source: &Source,
) -> Vec<&'a str> {
    existing
        .iter()
        .filter(|(kind, name)| {
            kind == "table"
                && !name.starts_with("sqlite_")
                && !survey.creates_table(name)
                // A virtual table and its shadow tables are remade (names
                // compared as SQLite does, ASCII case-insensitively).
                && !source.virtual_tables.iter().any(|vt| {
                    let (name, vt) = (name.to_ascii_lowercase(), vt.name.to_ascii_lowercase());
                    name == vt || name.starts_with(&format!("{vt}_"))
                })
        })
        .map(|(_, name)| name.as_str())
        .collect()
}

/// A trigger the restore leaves unable to run, and why: said in the plan
/// and again after the restore.
pub(super) fn stuck_trigger(stuck: &StuckTrigger, source: &Source) -> String {
    if stuck.index_comes_back_empty {
        return format!(
            "{stuck}, until the app indexes every row again (no backup carries a contentless \
             index)"
        );
    }
    let chosen = source
        .manifest
        .as_ref()
        .is_some_and(|m| !m.tables.is_empty());
    format!(
        "{stuck}; the backup brings it back without what it names{}",
        match chosen {
            true =>
                " (a backup of chosen tables holds their triggers, not the tables those write to)",
            false => ", as the database it was taken from had it",
        }
    )
}

/// The migrations pending once the backup is loaded.
#[derive(Debug, Default)]
pub(super) struct PendingAfter {
    names: Vec<String>,
    /// A schema-only backup: the target gets its tables, `d1_migrations`
    /// among them, but no rows, so every migration reads as pending
    /// although the schema already has what they make.
    none_recorded: bool,
    /// A backup of chosen tables without `d1_migrations`, replacing a
    /// target that had one: it is dropped, and every migration reads as
    /// pending.
    record_dropped: bool,
    /// Of `names`, those `migrate` took this backup just before applying
    /// (its reason, `pre-migration: …`): a restore of it is most likely
    /// undoing them, and `migrate` would apply them again as they are.
    undone: Vec<String>,
    /// Of `names`, those the target had not applied before the restore
    /// either (by its `d1_migrations`, [`PendingAfter::read_before`]):
    /// pending already, not the restore's doing (MR: a drill told one as
    /// "now" pending, "which the backup predates").
    already: Vec<String>,
}

impl PendingAfter {
    /// Reads which of `names` were pending on the target before the
    /// restore: every one when it has no `d1_migrations` (`existing`, an
    /// empty database's none), else those its rows leave out; none known
    /// when they cannot be read, and none of a database the restore
    /// creates (`existing` is `None`: it was not there before; rvBQ 4).
    pub(super) fn read_before(
        mut self,
        existing: Option<&[(String, String)]>,
        reader: &crate::edge::reader::DatabaseReader<'_>,
    ) -> Self {
        let Some(existing) = existing.filter(|_| !self.names.is_empty()) else {
            return self;
        };
        let table = d1_core::statement::MIGRATIONS_TABLE;
        if !existing.iter().any(|(k, n)| k == "table" && n == table) {
            self.already = self.names.clone();
            return self;
        }
        let read = reader.rows(
            "read the target's applied migrations (read-only)",
            &format!("SELECT name FROM {table}"),
            "no rows of d1_migrations",
        );
        match read {
            Ok(rows) => {
                let applied: Vec<&str> =
                    { rows.iter() }.filter_map(|r| r["name"].as_str()).collect();
                self.already = { self.names.iter() }
                    .filter(|n| !applied.contains(&n.as_str()))
                    .cloned()
                    .collect();
            }
            Err(e) => crate::detail!("which migrations the target had applied is not known: {e:#}"),
        }
        self
    }

    /// Whether every migration pending afterwards was pending before the
    /// restore too: then it is not "now" pending.
    pub(super) fn all_already(&self) -> bool {
        !self.names.is_empty() && self.already.len() == self.names.len()
    }
}

/// The migrations pending once the backup is loaded: the target gets the
/// backup's `d1_migrations`, so those in `dir` that it had not applied
/// are pending; after a schema-only backup, all of them. None for
/// `--clean`, which applies today's migrations first (and refuses a backup
/// taken at others), or without a manifest, or for chosen tables without
/// `d1_migrations` (the target keeps its own rows), unless the target has
/// none afterwards (`no_migrations_table`: `--replace` drops it, or an
/// empty database never had it): then all of them.
/// The target as it is before the restore (`existing`, its objects,
/// `None` for a database the restore creates, and `reader`) tells which
/// of them were pending already.
pub(super) fn pending_after(
    source: &Source,
    mode: Mode,
    dir: &Path,
    (existing, reader): (
        Option<&[(String, String)]>,
        &crate::edge::reader::DatabaseReader<'_>,
    ),
) -> PendingAfter {
    let none_after = super::no_migrations_table_after(existing.unwrap_or_default(), mode);
    pending_recorded(source, mode, dir, none_after).read_before(existing, reader)
}

/// [`pending_after`], by the backup's records alone.
fn pending_recorded(
    source: &Source,
    mode: Mode,
    dir: &Path,
    no_migrations_table: bool,
) -> PendingAfter {
    if source.schema_only && mode != Mode::Clean {
        // A schema-only dump without a manifest: as a schema-only backup.
        return match crate::steps::migrations::migration_files(dir) {
            Ok(names) => PendingAfter {
                names,
                none_recorded: true,
                ..PendingAfter::default()
            },
            Err(_) => PendingAfter::default(),
        };
    }
    let Some(m) = source.manifest.as_ref().filter(|_| mode != Mode::Clean) else {
        return PendingAfter::default();
    };
    let none_recorded = m.mode == "schema-only"
        && (m.tables.is_empty()
            || m.tables
                .iter()
                .any(|t| d1_core::statement::is_migrations_table(t)));
    let record_dropped = !none_recorded
        && m.applied_migrations().is_none()
        && !m.tables.is_empty()
        && no_migrations_table;
    let applied: &[String] = match (none_recorded || record_dropped, m.applied_migrations()) {
        (true, _) => &[],
        (false, Some(applied)) => applied,
        (false, None) => return PendingAfter::default(),
    };
    match crate::steps::migrations::migration_files(dir) {
        Ok(files) => {
            let names = crate::steps::migrations::pending(&files, applied);
            let undone = crate::steps::status::migrations_taken_before(m.reason.as_deref())
                .into_iter()
                .filter(|n| names.contains(n))
                .collect();
            PendingAfter {
                names,
                none_recorded,
                record_dropped,
                undone,
                already: Vec::new(),
            }
        }
        Err(e) => {
            crate::detail!("which migrations are pending after the restore is not known: {e:#}");
            PendingAfter::default()
        }
    }
}

/// Says which migrations the restore leaves pending, if any.
pub(super) fn pending_again(pending: &PendingAfter, target: &Environment) -> Option<String> {
    let names = &pending.names;
    if names.is_empty() {
        return None;
    }
    let them = d1_core::wording::them(names.len());
    // Every migrate advice carries its confirmation, as printed by
    // [`crate::edge::confirm::migrate_command`]: pasted with no terminal
    // to ask, one without it is refused (LP).
    let migrate = match target.is_new {
        true => "cargo xtask migrate ENV".to_owned(),
        false => crate::edge::confirm::migrate_command(target, ""),
    };
    if pending.record_dropped {
        return Some(format!(
            "no migration recorded as applied: the target has no d1_migrations afterwards \
             (--replace drops it, or it never had one), and this backup of chosen tables does not \
             carry it, so all {} ({}) read as pending. `{migrate}` \
             would apply {them} onto the restored tables, and fail; restore \
             a full backup to get the rest of the database back",
            names.len(),
            names.join(", ")
        ));
    }
    if pending.none_recorded {
        return Some(format!(
            "no migration recorded as applied: a schema-only backup carries no d1_migrations \
             rows, so all {} ({}) read as pending although the schema was restored. \
             `{migrate}` would apply {them} again onto tables that exist, and fail; \
             restore a full backup, or record in d1_migrations the ones the schema has",
            names.len(),
            names.join(", ")
        ));
    }
    if !pending.undone.is_empty() {
        let undone = &pending.undone;
        let it = d1_core::wording::them(undone.len());
        let (they, are) = d1_core::wording::they_are(undone.len());
        return Some(format!(
            "{} pending, which the backup predates: {}. This backup was taken by `migrate` just \
             before applying {it} ({}): if {they} broke the database, fix or remove {it} in the \
             migrations directory first, as `{migrate}` would apply {it} again as {they} \
             {are}",
            d1_core::wording::count(names.len(), "migration"),
            names.join(", "),
            undone.join(", "),
        ));
    }
    let how = match target.is_new {
        true => format!(
            "`cargo xtask migrate ENV` applies {them} once an environment's binding names it"
        ),
        false => format!(
            "`{}` applies {them}",
            crate::edge::confirm::migrate_command(target, "")
        ),
    };
    let already = &pending.already;
    if pending.all_already() {
        return Some(format!(
            "{} pending already before this restore: {}; the backup does not record {them} \
             applied either, and a restore applies no migration ({how})",
            d1_core::wording::count(names.len(), "migration"),
            names.join(", "),
        ));
    }
    let also = match already.is_empty() {
        true => String::new(),
        false => format!("; {} pending before this restore too", already.join(", ")),
    };
    Some(format!(
        "{} pending, which the backup predates: {}{also} ({how})",
        d1_core::wording::count(names.len(), "migration"),
        names.join(", "),
    ))
}

/// The plan's line on what a replace costs: whatever was written to the
/// target after the backup was taken is not in it, so it leaves the
/// target (the safety backup keeps it); remotely, Time Travel can go back
/// to a moment instead, keeping the freshest state. Said of a backup of
/// the target itself.
pub(super) fn plan_since(out: &mut String, p: &PlanView<'_>) {
    let Some(m) = p.source.manifest.as_ref() else {
        return;
    };
    let t = p.target;
    // Only a backup of the target itself: one of another database replaces
    // everything, as the plan's other lines say.
    if !p.safety_backup || p.mode != Mode::Replace || !t.records(m) {
        return;
    }
    let now = chrono::Utc::now();
    // Dated after the clock, it was taken at an unknown time: "0s ago"
    // would read as nothing written being lost.
    let taken = match d1_core::wording::dated_ahead(m.created_at, now) {
        Some(ahead) => format!("the backup was taken (it is {ahead}: when is unknown)"),
        None => format!(
            "{} ({} ago, when the backup was taken)",
            m.created_at.format("%Y-%m-%d %H:%M UTC"),
            d1_core::wording::age((now - m.created_at).num_seconds())
        ),
    };
    let _ = write!(
        out,
        "  since        anything written to {} after {taken} is not in it and leaves {}; only the \
         safety backup keeps it",
        t.database_name, t.database_name
    );
    if t.location == crate::config::environment::Location::Remote {
        let _ = write!(
            out,
            ". For the freshest state, D1 Time Travel goes back to a moment instead: \
             `cargo xtask time-travel restore {} --at TIME --dry-run`, TIME (RFC 3339) a moment \
             before the damage",
            t.name
        );
    }
    let _ = writeln!(out);
}

/// The repairs the dump needs, each as `--json`'s `plan.repairs` lists it
/// (`{repair, ..., said}`) and its line in the text plan (`said`).
fn repairs(survey: &repair::Survey) -> Vec<(serde_json::Value, String)> {
    let mut repairs: Vec<(serde_json::Value, String)> = { survey.repairs.iter() }
        .map(|r| (serde_json::to_value(r).unwrap_or_default(), r.to_string()))
        .collect();
    for (line, table, bytes) in &survey.oversized {
        let said = format!(
            "splits the {bytes}-byte INSERT into {table} on line {line} ({})",
            repair::over_which_limit(*bytes)
        );
        let listed = serde_json::json!({
            "repair": "split_insert",
            "table": table,
            "line": line,
            "bytes": bytes,
        });
        repairs.push((listed, said));
    }
    repairs
}

/// `--json`'s `plan.repairs`: [`repairs`], each with its text-plan line.
fn repairs_json(survey: &repair::Survey) -> serde_json::Value {
    { repairs(survey).into_iter() }
        .map(|(mut listed, said)| {
            listed["said"] = said.into();
            listed
        })
        .collect()
}

/// The plan's lines on the repairs the dump needs.
pub(super) fn plan_repairs(out: &mut String, p: &PlanView<'_>) {
    let repairs: Vec<String> = { repairs(p.survey).into_iter() }
        .map(|(_, said)| said)
        .collect();
    if p.new.is_some() {
        let _ = writeln!(
            out,
            "  then         the binding snippet with the new id; the configuration is not edited, \
             and a failed restore leaves the new database in place"
        );
    }
    if repairs.is_empty() {
        let _ = writeln!(out, "  repairs      none needed");
    } else {
        for (i, r) in repairs.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}{r}",
                if i == 0 {
                    "repairs      "
                } else {
                    "             "
                }
            );
        }
    }
}

/// The binding to add to the configuration to use the new database, in
/// the configuration's format, with the binding and migrations directory of
/// the database the backup was taken from (when the configuration has it).
/// It is what the operator asked for, so `-q` shows it too; with `--json`
/// the document carries the id and this goes to stderr.
pub(super) fn print_binding(
    project: &Project,
    envs: &Environments,
    source: &Source,
    target: &Environment,
    json: bool,
) -> Result<()> {
    let from = source_environment(envs, source);
    let snippet = new_database::binding_snippet(
        crate::config::environment::Format::of(&project.config)?,
        from.map_or("DB", |e| e.binding.as_str()),
        &target.database_name,
        &target.database_id,
        from.map_or("migrations", |e| e.migrations_dir.as_str()),
    );
    let place = match from {
        // The top level is the local D1 on this machine (rvBS: "put it in
        // place of qbtime_db_local's entry at the top level" moved nothing).
        Some(e) if e.location == crate::config::environment::Location::Local => format!(
            " (under [env.NAME] for an environment). {}'s entry at the top level is the local D1 \
             on this machine, which no remote database replaces: to serve this one, put it in \
             place of a remote environment's entry, then deploy the app so that it reads the \
             new binding",
            e.name
        ),
        Some(e) => format!(
            ". To move {} onto it, put it in place of {}'s entry{}, then deploy the app so \
             that it reads the new binding",
            e.name,
            e.database_name,
            match &e.wrangler_env {
                Some(w) => format!(" under [env.{w}] (there, [[env.{w}.d1_databases]])"),
                None => " at the top level".to_owned(),
            }
        ),
        None => " (under [env.NAME] for an environment)".to_owned(),
    };
    let text = format!(
        "To use {}, add its binding to {}; the configuration was not changed{place}:\n{snippet}",
        target.database_name,
        file_name(&project.config)
    );
    if json {
        crate::say!("{text}");
    } else {
        crate::data!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_told_which_environment_to_migrate_it_through() {
        let new = Environment::new_database("db_x", None);
        assert_eq!(pending_again(&PendingAfter::default(), &new), None);
        let one = PendingAfter {
            names: vec!["0005_a.sql".to_owned()],
            ..PendingAfter::default()
        };
        assert_eq!(
            pending_again(&one, &new).unwrap(),
            "1 migration pending, which the backup predates: 0005_a.sql (`cargo xtask migrate \
             ENV` applies it once an environment's binding names it)"
        );
    }
}
