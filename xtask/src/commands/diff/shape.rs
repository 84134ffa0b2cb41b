//! What changed in a table whose `CREATE TABLE` text changed: read from
//! the two texts, clause by clause, so that a change `PRAGMA table_info`
//! does not show (a collation, a CHECK, a UNIQUE, a FOREIGN KEY, a
//! generated column, STRICT or WITHOUT ROWID) is still named. Only the
//! kinds of clause are ever named, never their text: a CHECK or a DEFAULT
//! may hold a value.

use std::collections::BTreeMap;

/// A table's definition as compared: each column's clauses by kind, the
/// table's own constraints by kind, its options, its columns in order.
#[derive(Debug, Default, PartialEq)]
pub struct Shape {
    pub columns: Vec<(String, Clauses)>,
    pub constraints: Clauses,
    pub options: Vec<String>,
}

/// Clauses by the kind a diff names, each as its tokens read (case and
/// quoting of names aside), sorted: their order is no change.
pub type Clauses = BTreeMap<&'static str, Vec<String>>;

impl Shape {
    /// The shape of a `CREATE TABLE` text; `None` when it is not one this
    /// can read (a virtual table, a table made from a SELECT).
    pub fn of(sql: &str) -> Option<Shape> {
        let rest = d1_core::statement::after_created_name(sql)?;
        let tokens = tokens(&d1_core::statement::without_layout(rest));
        let (body, options) = body_and_options(&tokens)?;
        let mut shape = Shape {
            options: split_at_commas(options)
                .iter()
                .map(|o| o.join(" "))
                .collect(),
            ..Shape::default()
        };
        for definition in split_at_commas(body) {
            match definition.first().map(String::as_str) {
                None => continue,
                Some("CONSTRAINT" | "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN") => {
                    add_clauses(&mut shape.constraints, &definition, true)
                }
                Some(name) => {
                    let mut clauses = Clauses::new();
                    add_clauses(&mut clauses, &definition[1..], false);
                    shape.columns.push((name.to_owned(), clauses));
                }
            }
        }
        shape.options.sort();
        Some(shape)
    }

    fn column(&self, name: &str) -> Option<&Clauses> {
        let name = folded(name);
        self.columns
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
    }

    /// What changed in column `name` from `self` to `other`, by kind.
    pub fn column_changes(&self, other: &Shape, name: &str) -> Vec<&'static str> {
        let empty = Clauses::new();
        let a = self.column(name).unwrap_or(&empty);
        let b = other.column(name).unwrap_or(&empty);
        kinds_differing(a, b)
    }

    /// What changed in the table itself from `self` to `other`: its
    /// constraints by kind, each option added or removed, and the order of
    /// the columns both have.
    pub fn table_changes(&self, other: &Shape) -> Vec<String> {
        let mut out: Vec<String> = kinds_differing(&self.constraints, &other.constraints)
            .into_iter()
            .map(str::to_owned)
            .collect();
        for option in ["STRICT", "WITHOUT ROWID"] {
            let has = |s: &Shape| s.options.iter().any(|o| o == option);
            if has(self) != has(other) {
                out.push(option.to_owned());
            }
        }
        let order = |s: &Shape, t: &Shape| -> Vec<String> {
            { s.columns.iter() }
                .filter(|(n, _)| t.column(n).is_some())
                .map(|(n, _)| n.clone())
                .collect()
        };
        if order(self, other) != order(other, self) {
            out.push("column order".to_owned());
        }
        out
    }
}

/// The kinds whose clauses differ between `a` and `b`.
fn kinds_differing(a: &Clauses, b: &Clauses) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = a.keys().chain(b.keys()).copied().collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.retain(|k| a.get(k) != b.get(k));
    kinds
}

/// Splits a column's or table constraint's tokens into clauses, each
/// under the kind a diff names (`CONSTRAINT name` goes with the clause it
/// names). For a column, the tokens before its first clause are its type.
fn add_clauses(clauses: &mut Clauses, tokens: &[String], table: bool) {
    let mut current: (&'static str, Vec<String>) = ("type", Vec::new());
    let mut named: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let around = (
            i.checked_sub(1).map(|k| tokens[k].as_str()),
            tokens.get(i + 1),
        );
        let kind = if depth == 0 {
            clause_kind(token, around, table)
        } else {
            None
        };
        match token.as_str() {
            "(" => depth += 1,
            ")" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && token == "CONSTRAINT" {
            push(clauses, std::mem::take(&mut current));
            named = tokens[i..(i + 2).min(tokens.len())].to_vec();
            i += 2;
            continue;
        }
        if let Some(kind) = kind {
            push(clauses, std::mem::take(&mut current));
            current = (kind, std::mem::take(&mut named));
        }
        current.1.push(token.clone());
        i += 1;
    }
    push(clauses, current);
    for list in clauses.values_mut() {
        list.sort();
    }
}

fn push(clauses: &mut Clauses, (kind, tokens): (&'static str, Vec<String>)) {
    if !tokens.is_empty() {
        clauses.entry(kind).or_default().push(tokens.join(" "));
    }
}

/// The kind of clause a keyword starts, as a diff names it, given the
/// tokens before and after it: `NULL` after `DEFAULT`, `SET` or `NOT`, and
/// `NOT` before anything but `NULL` (`NOT DEFERRABLE`), go on the clause
/// they are in.
fn clause_kind(
    token: &str,
    (before, after): (Option<&str>, Option<&String>),
    table: bool,
) -> Option<&'static str> {
    Some(match token {
        "PRIMARY" if table => "PRIMARY KEY",
        "PRIMARY" => "primary key",
        "NOT" if after.is_some_and(|a| a == "NULL") => "NOT NULL",
        "NULL" if !matches!(before, Some("DEFAULT" | "SET" | "NOT")) => "NOT NULL",
        "UNIQUE" => "UNIQUE",
        "CHECK" => "CHECK",
        "DEFAULT" => "default",
        "COLLATE" => "collation",
        "REFERENCES" | "FOREIGN" => "FOREIGN KEY",
        "GENERATED" | "AS" if before != Some("ALWAYS") => "generated",
        _ => return None,
    })
}

/// The tokens between the definition's parentheses, and those after them;
/// `None` when it does not open with one (`AS SELECT …`).
fn body_and_options(tokens: &[String]) -> Option<(&[String], &[String])> {
    if tokens.first().map(String::as_str) != Some("(") {
        return None;
    }
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                if depth == 0 {
                    return Some((&tokens[1..i], &tokens[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `tokens` cut at each comma outside parentheses.
fn split_at_commas(tokens: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0usize;
    for t in tokens {
        match t.as_str() {
            "(" => depth += 1,
            ")" => depth = depth.saturating_sub(1),
            "," if depth == 0 => {
                out.push(Vec::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("one part at least").push(t.clone());
    }
    out.retain(|p| !p.is_empty());
    out
}

/// A name or keyword as SQLite matches it: unquoted, ASCII upper case.
fn folded(word: &str) -> String {
    let unquoted = match word.as_bytes().first() {
        Some(b'"') | Some(b'`') if word.len() >= 2 => {
            let q = &word[..1];
            word[1..word.len() - 1].replace(&q.repeat(2), q)
        }
        Some(b'[') if word.len() >= 2 => word[1..word.len() - 1].to_owned(),
        _ => word.to_owned(),
    };
    unquoted.to_ascii_uppercase()
}

/// The tokens of a text without layout: a string kept as written, a
/// quoted or bare name folded ([`folded`]), each other character alone.
fn tokens(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let end = match b[i] {
            b' ' => {
                i += 1;
                continue;
            }
            b'\'' | b'"' | b'`' => d1_core::statement::past_quoted(b, i),
            b'[' => b[i..]
                .iter()
                .position(|&c| c == b']')
                .map_or(b.len(), |k| i + k + 1),
            c if word(c) => b[i..]
                .iter()
                .position(|&c| !word(c))
                .map_or(b.len(), |k| i + k),
            _ => i + text[i..].chars().next().map_or(1, char::len_utf8),
        };
        let token = &text[i..end];
        out.push(match b[i] {
            b'\'' => token.to_owned(),
            _ => folded(token),
        });
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Shape;

    fn changes(a: &str, b: &str) -> (Vec<(String, Vec<&'static str>)>, Vec<String>) {
        let (a, b) = (Shape::of(a).unwrap(), Shape::of(b).unwrap());
        let columns = { a.columns.iter() }
            .map(|(n, _)| (n.clone(), a.column_changes(&b, n)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        (columns, a.table_changes(&b))
    }

    #[test]
    fn each_kind_of_clause_is_named_on_its_column_or_the_table() {
        let a = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
                 n INT CHECK (n > 0), p INT REFERENCES p (id), UNIQUE (name))";
        let b = "CREATE TABLE \"t\" (\n  id integer primary key,\n  name TEXT NOT NULL COLLATE NOCASE,\n  \
                 n INT, p INT REFERENCES p (id) ON DELETE SET NULL NOT DEFERRABLE, \
                 g INT AS (n + 1), CHECK (n < 9)) STRICT";
        let (columns, table) = changes(a, b);
        assert_eq!(
            columns,
            [
                ("NAME".to_owned(), vec!["collation"]),
                ("N".to_owned(), vec!["CHECK"]),
                ("P".to_owned(), vec!["FOREIGN KEY"]),
            ]
        );
        assert_eq!(table, ["CHECK", "UNIQUE", "STRICT"]);
    }

    #[test]
    fn layout_case_quoting_and_clause_order_are_no_change() {
        let a = "CREATE TABLE t (a TEXT NOT NULL UNIQUE, -- note\n b INT DEFAULT NULL, c INT)";
        let b = "create table t (\"a\" text unique not null, [b] int default null, c INT /* x */)";
        assert_eq!(changes(a, b), (vec![], vec![]));
        let moved = "CREATE TABLE t (b INT, a TEXT NOT NULL UNIQUE, c INT) WITHOUT ROWID";
        assert_eq!(changes(a, moved).1, ["WITHOUT ROWID", "column order"]);
    }
}
