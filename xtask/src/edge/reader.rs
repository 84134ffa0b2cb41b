//! Reads a live database without changing it: through wrangler, or, for
//! local D1, straight from its SQLite file.

use anyhow::{Context, Result};
use d1_core::catalog::{CATALOG_SQL, Catalog};

/// Reads a database without changing it: through wrangler, or, for local
/// D1, straight from its SQLite file (`local_d1`), which saves a wrangler
/// start and answers in the same shape.
pub enum DatabaseReader<'a> {
    Wrangler(
        &'a crate::edge::wrangler::Wrangler,
        &'a crate::edge::wrangler::Commands,
        &'a crate::config::environment::Environment,
    ),
    /// The file, and the local environment whose database it is.
    File(std::path::PathBuf, &'a str),
}

impl DatabaseReader<'_> {
    /// Runs read-only `sql`; one `{"results": [...]}` per statement.
    pub fn query(&self, purpose: &str, sql: &str) -> Result<serde_json::Value> {
        match self {
            DatabaseReader::Wrangler(wrangler, cmds, env) => {
                wrangler.run_json(&cmds.query_json(env, purpose, sql))
            }
            DatabaseReader::File(file, env) => crate::edge::local_d1::query_json((file, env), sql)
                .with_context(|| purpose.to_owned()),
        }
    }

    /// The rows of read-only `sql`'s first statement; an answer without
    /// them is an error saying `none`.
    pub fn rows(&self, purpose: &str, sql: &str, none: &str) -> Result<Vec<serde_json::Value>> {
        let json = self.query(purpose, sql)?;
        { json.pointer("/0/results").and_then(|r| r.as_array()) }
            .cloned()
            .context(none.to_owned())
    }

    /// Each of `tables`' row count, in order, with one read-only query.
    pub fn row_counts(&self, purpose: &str, tables: &[&str]) -> Result<Vec<u64>> {
        let sql = tables
            .iter()
            .map(|t| {
                format!(
                    "SELECT count(*) AS n FROM {}",
                    d1_core::statement::quote_ident(t)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let json = self.query(purpose, &sql)?;
        tables
            .iter()
            .enumerate()
            .map(|(i, table)| {
                result_rows(&json, i)
                    .first()
                    .and_then(|r| r.get("n"))
                    .and_then(serde_json::Value::as_u64)
                    .with_context(|| {
                        format!("no row count for {}", d1_core::names::shown_name(table))
                    })
            })
            .collect()
    }

    /// Reads the schema with [`CATALOG_SQL`].
    pub fn catalog(&self, purpose: &str) -> Result<Catalog> {
        let json = self.query(purpose, CATALOG_SQL)?;
        Catalog::from_wrangler_json(&json).context("reading the database schema")
    }
}

/// The rows of result set `i` of a `--json` answer (of wrangler, or of a
/// [`DatabaseReader`] in its shape); none when it has not that many.
pub fn result_rows(json: &serde_json::Value, i: usize) -> &[serde_json::Value] {
    json.get(i)
        .and_then(|r| r.get("results"))
        .and_then(|r| r.as_array())
        .map_or(&[], Vec::as_slice)
}

/// The text of column `column` in each row of the first result set.
pub fn column_texts(json: &serde_json::Value, column: &str) -> Vec<String> {
    result_rows(json, 0)
        .iter()
        .filter_map(|r| r.get(column)?.as_str().map(str::to_owned))
        .collect()
}
