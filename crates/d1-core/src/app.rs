//! The app's own rules, declared in `backups.toml`'s `[app]` table rather
//! than written into this tool: which table holds a hash chain and how a row
//! hashes, where the data-encryption key's fingerprint lives, and which
//! endpoints the drill calls. An app that declares no rule gets that check
//! skipped, with the reason in the report.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::statement::quote_ident;

/// The file the app's rules are declared in (its `[app]` table), beside
/// each environment's backup settings.
pub const SETTINGS_FILE: &str = "backups.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRules {
    pub audit_chain: Option<AuditChain>,
    pub encryption_key: Option<KeyRecord>,
    pub drill: Option<DrillEndpoints>,
}

/// A hash-chained, append-only table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditChain {
    pub table: String,
    /// The integer column that orders the chain.
    pub id: String,
    /// The columns hashed after the previous hash, in order.
    pub fields: Vec<String>,
    pub prev_hash: String,
    pub hash: String,
    pub rule: HashRule,
    /// Where the rule is written down, for the report.
    pub documented_in: Option<String>,
}

/// How a row's hash is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashRule {
    /// `lower(hex(SHA-256(JSON array [prev_hash, field...])))`, strings
    /// escaped as JavaScript's `JSON.stringify` does; the first row's
    /// `prev_hash` is 64 zeros.
    Sha256JsonArray,
}

/// Where the data-encryption key in force is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub table: String,
    pub key_id: String,
    pub fingerprint: String,
    /// NULL while the key is in force.
    pub retired_at: String,
    /// The newest key in force wins.
    pub activated_at: String,
}

/// The app's endpoints that the drill calls on the restored environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillEndpoints {
    /// GET: the app's own audit-chain check.
    pub audit: String,
    /// GET: a signed-in session.
    pub sign_in: String,
    /// POST: a small report.
    pub report: String,
}

impl AppRules {
    pub fn check(&self) -> Result<()> {
        if let Some(chain) = &self.audit_chain {
            if chain.fields.is_empty() {
                bail!("[app.audit_chain] fields is empty: list the columns each hash covers");
            }
            for name in [&chain.prev_hash, &chain.hash] {
                if chain.fields.contains(name) {
                    bail!("[app.audit_chain] fields lists {name}, which holds a hash");
                }
            }
        }
        if let Some(drill) = &self.drill {
            for path in [&drill.audit, &drill.sign_in, &drill.report] {
                check_endpoint(path).context("[app.drill]")?;
            }
        }
        Ok(())
    }
}

/// A drill endpoint is a path on the app, never another host: it starts with
/// one `/`, and has no `\\` or `@` that a URL parser could read as a host.
pub fn check_endpoint(path: &str) -> Result<()> {
    if !path.starts_with('/') || path.starts_with("//") || path.contains(['\\', '@']) {
        bail!("endpoint {path:?} must be a path on the app, starting with one / (no \\ or @)");
    }
    Ok(())
}

impl AuditChain {
    /// The declared columns, in the order [`Self::select`] reads them.
    pub fn columns(&self) -> Vec<&str> {
        let mut columns = vec![self.id.as_str()];
        columns.extend(self.fields.iter().map(String::as_str));
        columns.extend([self.prev_hash.as_str(), self.hash.as_str()]);
        columns
    }

    /// Reads the chain in order: the id, the fields, then both hashes.
    pub fn select(&self) -> String {
        format!(
            "SELECT {}, {}, coalesce({}, ''), coalesce({}, '') FROM {} ORDER BY {}",
            quote_ident(&self.id),
            self.fields
                .iter()
                .map(|f| quote_ident(f))
                .collect::<Vec<_>>()
                .join(", "),
            quote_ident(&self.prev_hash),
            quote_ident(&self.hash),
            quote_ident(&self.table),
            quote_ident(&self.id)
        )
    }
}

impl KeyRecord {
    /// The key in force: `(key_id, fingerprint)`.
    pub fn select(&self) -> String {
        format!(
            "SELECT {}, {} FROM {} WHERE {} IS NULL ORDER BY {} DESC LIMIT 1",
            quote_ident(&self.key_id),
            quote_ident(&self.fingerprint),
            quote_ident(&self.table),
            quote_ident(&self.retired_at),
            quote_ident(&self.activated_at)
        )
    }
}

/// The declared columns that `table`'s real columns lack.
pub fn missing_columns<'a>(declared: &[&'a str], actual: &[String]) -> Vec<&'a str> {
    declared
        .iter()
        .copied()
        .filter(|d| !actual.iter().any(|a| a.eq_ignore_ascii_case(d)))
        .collect()
}

/// A table's columns, read by SQLite; empty when there is no such table
/// (a view or a virtual table is none: [`crate::catalog::Kinds`]).
pub fn table_columns(
    db: &rusqlite::Connection,
    kinds: &crate::catalog::Kinds,
    table: &str,
) -> rusqlite::Result<Vec<String>> {
    if !kinds.stores_rows(table) {
        return Ok(Vec::new());
    }
    let mut stmt = db.prepare(&format!("PRAGMA table_info({})", quote_ident(table)))?;
    stmt.query_map([], |r| r.get::<_, String>(1))?.collect()
}

/// qbtime's own rules, as the repository's `backups.toml` declares them.
#[cfg(test)]
pub fn qbtime() -> AppRules {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../backups.toml"),
    )
    .unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let rules: AppRules = table.remove("app").unwrap().try_into().unwrap();
    rules.check().unwrap();
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qbtimes_own_declaration_reads() {
        let rules = qbtime();
        let chain = rules.audit_chain.unwrap();
        assert_eq!(chain.table, "audit_log");
        assert_eq!(chain.fields.len(), 8);
        assert_eq!(rules.encryption_key.unwrap().table, "encryption_keys");
    }

    #[test]
    fn a_drill_endpoint_cannot_name_another_host() {
        for ok in ["/api/v1/x", "/a/b?c=1"] {
            check_endpoint(ok).unwrap();
        }
        for bad in [
            ".evil.example/x",
            "//evil.example/x",
            "/\\evil.example",
            "@evil/x",
            "x",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_shape_that_cannot_work_is_refused() {
        let rules: AppRules = toml::from_str(
            "[audit_chain]\ntable='a'\nid='id'\nfields=['hash']\nprev_hash='p'\nhash='hash'\n\
             rule='sha256-json-array'\n",
        )
        .unwrap();
        assert!(
            rules
                .check()
                .unwrap_err()
                .to_string()
                .contains("holds a hash")
        );
        let rules: Result<AppRules, _> = toml::from_str("[audit_chain]\ntable='a'\nrule='md5'\n");
        assert!(rules.is_err());
    }
}
