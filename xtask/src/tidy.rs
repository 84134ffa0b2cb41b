//! The layout's rules, checked on the source tree (as rust-analyzer's
//! `tidy` tests do): which room may touch what.
//!
//! - `crates/d1-core` is pure: it spawns no process, prints nothing and
//!   reads no environment variable;
//! - only the edges start a process (`xtask/src/edge/`);
//! - a command never reaches into another command; steps, edges and the
//!   configuration never reach into a command; edges never reach into steps;
//! - the modules of the xtask, and those of the core, import each other
//!   without a cycle;
//! - the loopback stand-in for Cloudflare is used by `rehearse` alone;
//! - the README's "Layout" names every module of the core and of each
//!   room of the xtask in that room's row;
//! - no function runs past 80 lines;
//! - no string literal runs onto a next line without a `\` ending its
//!   line, which would print the next line's indentation mid-sentence.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, with its module path (`steps::backup`).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "main" | "lib")
                ) {
                    parts.pop();
                }
                out.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    // These rules' own test strings name modules and crates.
    out.remove("tidy");
    out
}

/// The source without its `#[cfg(test)] mod tests` and without comments.
fn product_code(source: &str) -> String {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(i) => &source[..i],
        None => source,
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree (or a plain path) starting at `text` names, its
/// groups spread out: `a::{b, c::{d}}` is `a::b` and `a::c::d`.
fn paths(text: &str) -> Vec<String> {
    let text = text.trim_start();
    let head: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let rest = text[head.len()..].trim_start();
    let Some(group) = rest.strip_prefix('{') else {
        return vec![head];
    };
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..k]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .flat_map(paths)
        .map(|tail| format!("{head}{tail}"))
        .collect()
}

/// The modules of `all` that `code` names through `crate::…`.
fn imports(code: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        for path in paths(&code[i + "crate::".len()..]) {
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            if let Some(k) = (1..=parts.len())
                .rev()
                .find(|&k| all.contains_key(&parts[..k].join("::")))
            {
                found.insert(parts[..k].join("::"));
            }
        }
    }
    found
}

/// A cycle in the import graph, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn graph(all: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    all.iter()
        .map(|(name, source)| {
            let mut deps = imports(&product_code(source), all);
            deps.remove(name);
            // A parent declares its children (`pub mod x;`): not an import.
            deps.retain(|d| !d.starts_with(&format!("{name}::")) && !name.is_empty());
            (name.clone(), deps)
        })
        .collect()
}

#[test]
fn the_core_spawns_nothing_prints_nothing_and_reads_no_environment() {
    let core = modules(&workspace().join("crates/d1-core/src"));
    assert!(
        core.contains_key("gate"),
        "the core's modules were not found"
    );
    let forbidden = [
        "std::process",
        "Command::new",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "std::env::var",
        "env::var(",
        "std::io::stdout",
        "std::io::stderr",
    ];
    for (module, source) in &core {
        let code = product_code(source);
        for word in forbidden {
            assert!(
                !code.contains(word),
                "d1_core::{module} uses `{word}`: the core is pure; do that in an xtask edge"
            );
        }
    }
}

/// `out` is the one place that prints: a print elsewhere would bypass the
/// redaction, the quiet level and `--json`, and a `print!` panics when the
/// terminal is gone (a hangup) instead of letting the cleanup run.
#[test]
fn only_out_prints() {
    let xtask = modules(&workspace().join("xtask/src"));
    assert!(xtask.contains_key("out"), "the modules were not found");
    for (module, source) in &xtask {
        if module == "out" || module == "tidy" {
            continue;
        }
        let code = product_code(source);
        for word in [
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "dbg!(",
            "io::stdout()",
            "io::stderr()",
        ] {
            assert!(
                !code.contains(word),
                "{} uses `{word}`: print through `out` (say!, warn!, out::prompt, ...)",
                if module.is_empty() { "main" } else { module }
            );
        }
    }
}

/// The edges are the only code that starts a process: a command or a step
/// says what to run, and an edge runs it (under the signal handling, the
/// hangup shield and the process-tree cleanup that live there).
#[test]
fn only_the_edges_start_processes() {
    let xtask = modules(&workspace().join("xtask/src"));
    assert!(
        xtask.contains_key("edge::wrangler"),
        "the modules were not found"
    );
    for (module, source) in &xtask {
        if module.starts_with("edge::") || module == "edge" {
            continue;
        }
        let code = product_code(source);
        for word in ["Command::new", ".spawn()", "cmd!("] {
            assert!(
                !code.contains(word),
                "{module} uses `{word}`: only xtask/src/edge starts a process; move the start \
                 into an edge and call it"
            );
        }
    }
}

/// SQL text is the core's: a string literal quoted by hand in the xtask
/// is one more quoting to get right (and to keep right) outside the tested
/// `d1_core::statement`.
#[test]
fn sql_literals_are_quoted_by_the_core() {
    let xtask = modules(&workspace().join("xtask/src"));
    assert!(
        xtask.contains_key("steps::backup"),
        "the modules were not found"
    );
    for (module, source) in &xtask {
        let code = product_code(source);
        for word in [r#"replace('\'', "''")"#, r#"replace("'", "''")"#] {
            assert!(
                !code.contains(word),
                "{module} quotes an SQL literal by hand (`{word}`): use \
                 d1_core::statement::quote_literal"
            );
        }
    }
}

#[test]
fn commands_never_reach_into_each_other_and_the_lower_rooms_never_reach_up() {
    let xtask = modules(&workspace().join("xtask/src"));
    assert!(
        xtask.contains_key("commands::backup"),
        "the modules were not found"
    );
    for (module, source) in &xtask {
        let room = module.split("::").next().unwrap_or("");
        for dep in imports(&product_code(source), &xtask) {
            let dep_room = dep.split("::").next().unwrap_or("");
            let refused = match (room, dep_room) {
                ("commands", "commands") => dep != *module && dep != "commands",
                ("steps" | "edge" | "config", "commands") => true,
                ("edge", "steps") => true,
                _ => false,
            };
            assert!(
                !refused,
                "{module} reaches into {dep}: commands call steps, the core and edges; a step \
                 shared by two commands belongs in steps/"
            );
        }
    }
}

#[test]
fn no_import_cycles() {
    let root = workspace();
    for (crate_name, dir) in [("xtask", "xtask/src"), ("d1_core", "crates/d1-core/src")] {
        let all = modules(&root.join(dir));
        assert!(all.len() > 5, "{dir}: the modules were not found");
        if let Some(cycle) = cycle(&graph(&all)) {
            panic!("{crate_name} has an import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let all: BTreeMap<String, String> = [
        ("a", "use crate::b::X;"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::a;"),
        ("d", "use crate::a;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let found = cycle(&graph(&all)).expect("a -> b -> c -> a");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4);
    let acyclic: BTreeMap<String, String> = [("a", "use crate::b;"), ("b", "// crate::a")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(cycle(&graph(&acyclic)), None);
}

#[test]
fn the_import_finder_sees_through_grouped_imports() {
    let all: BTreeMap<String, String> = [
        "commands",
        "commands::backup",
        "commands::restore",
        "steps::lock",
        "edge::git",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), String::new()))
    .collect();
    let found = |code: &str| imports(code, &all).into_iter().collect::<Vec<_>>();
    assert_eq!(
        found("use crate::commands::{restore::Plan, backup};"),
        ["commands::backup", "commands::restore"]
    );
    assert_eq!(
        found("use crate::{\n    edge::git,\n    steps::{lock::Lock},\n};"),
        ["edge::git", "steps::lock"]
    );
    assert_eq!(
        found("crate::commands::restore::run()"),
        ["commands::restore"]
    );
}

#[test]
fn only_rehearse_uses_the_loopback_stand_in() {
    let xtask = modules(&workspace().join("xtask/src"));
    let users: Vec<&String> = xtask
        .iter()
        .filter(|(_, source)| product_code(source).contains("d1_loopback"))
        .map(|(module, _)| module)
        .collect();
    assert_eq!(
        users,
        ["commands::rehearse"],
        "the loopback is the stand-in for Cloudflare: the product reaches Cloudflare through \
         wrangler, and only `rehearse` starts the stand-in"
    );
}

/// The README's "Layout" is the map a newcomer reads: each room's row names
/// every module in it (as `` `name` ``; a command also as its verb,
/// `` `with-backup` ``), so a module added without a word there fails.
#[test]
fn the_readme_layout_names_every_module_in_its_room() {
    let root = workspace();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("\n## Layout\n")
        .expect("README has a Layout section");
    let layout = &readme[start + 1..];
    let layout = &layout[..layout.find("\n## ").unwrap_or(layout.len())];
    for (room, dir) in [
        ("crates/d1-core/", "crates/d1-core/src"),
        ("xtask/src/commands/", "xtask/src/commands"),
        ("xtask/src/steps/", "xtask/src/steps"),
        ("xtask/src/edge/", "xtask/src/edge"),
        ("xtask/src/config/", "xtask/src/config"),
    ] {
        let row = layout
            .lines()
            .find(|line| line.starts_with(&format!("| `{room}`")))
            .unwrap_or_else(|| panic!("README's Layout has no row for `{room}`"));
        let modules = modules(&root.join(dir));
        assert!(modules.len() > 3, "{dir}: the modules were not found");
        for module in modules.keys().filter(|m| !m.is_empty()) {
            let verb = module.replace('_', "-");
            assert!(
                row.contains(&format!("`{module}`")) || row.contains(&format!("`{verb}`")),
                "{dir}/{module}.rs is not named in the README's Layout row for `{room}`: say \
                 there what it holds, as `{module}`"
            );
        }
    }
}

/// The functions of `code` (product code, see [`product_code`]), by name,
/// with their length in lines from `fn` to the closing brace.
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut head = line.trim_start();
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            head = head.strip_prefix(prefix).unwrap_or(head);
        }
        let Some(rest) = head.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i64;
        let mut opened = false;
        for (j, body) in lines[i..].iter().enumerate() {
            let mut chars = body.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    // A string or char literal's braces are not the code's.
                    '"' => {
                        while let Some(s) = chars.next() {
                            match s {
                                '\\' => {
                                    chars.next();
                                }
                                '"' => break,
                                _ => {}
                            }
                        }
                    }
                    '\'' if chars.peek() == Some(&'{') || chars.peek() == Some(&'}') => {
                        chars.next();
                    }
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                out.push((name, j + 1));
                break;
            }
            // A declaration without a body (a trait's).
            if !opened && body.trim_end().ends_with(';') {
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_grows_past_about_eighty_lines() {
    const ABOUT_EIGHTY: usize = 80;
    let mut long = Vec::new();
    for (root, prefix) in [("xtask/src", "xtask"), ("crates/d1-core/src", "d1_core")] {
        for (module, source) in modules(&workspace().join(root)) {
            let module = match module.is_empty() {
                true => prefix.to_owned(),
                false => format!("{prefix}::{module}"),
            };
            for (name, length) in function_lengths(&product_code(&source)) {
                if length > ABOUT_EIGHTY {
                    long.push(format!("{module}::{name}: {length} lines"));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions past {ABOUT_EIGHTY} lines (issue 15: split them into named steps):\n{}",
        long.join("\n")
    );
}

#[test]
fn function_lengths_count_from_fn_to_its_closing_brace() {
    let code =
        "fn a() {\n    let s = \"}\";\n    if x { y }\n}\npub fn b(x: u8) -> u8 {\n    x\n}\n";
    assert_eq!(
        function_lengths(code),
        [("a".to_owned(), 4), ("b".to_owned(), 3)]
    );
}

/// The lines (1-based) of `source` that end inside a `"…"` string literal
/// without a `\` continuing it: the literal then holds the line break and
/// the next line's indentation. Raw strings (`r"…"`, `r#"…"#`), comments
/// and char literals are skipped.
fn unbroken_literal_lines(source: &str) -> Vec<usize> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let at = |i: usize, s: &str| chars[i..].iter().take(s.len()).copied().eq(s.chars());
        if c == '\n' {
            line += 1;
        } else if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                match (chars[i], chars.get(i + 1)) {
                    ('/', Some('*')) => (depth, i) = (depth + 1, i + 1),
                    ('*', Some('/')) => (depth, i) = (depth - 1, i + 1),
                    ('\n', _) => line += 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
            continue;
        } else if c == 'r'
            && (!ident(prev) || prev == 'b')
            && matches!(chars.get(i + 1), Some('"' | '#'))
        {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) == Some(&'"') {
                let end: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                i += 2 + hashes;
                while i < chars.len() && !at(i, &end) {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += end.len();
                continue;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '"'); else a lifetime.
            let len = match chars.get(i + 1) {
                Some('\\') => chars[i + 2..]
                    .iter()
                    .position(|&q| q == '\'')
                    .map(|p| p + 3),
                Some(_) if chars.get(i + 2) == Some(&'\'') => Some(3),
                _ => None,
            };
            i += len.unwrap_or(1);
            continue;
        } else if c == '"' {
            // The literal's text as Rust reads it: `\` and a line break
            // drop the break and the next line's indentation.
            let (start, mut text) = (line, String::new());
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && chars.get(i + 1) == Some(&'\n') {
                    i += 1;
                    while chars.get(i).is_some_and(|w| w.is_whitespace()) {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                    continue;
                }
                if chars[i] == '\\' {
                    text.push(chars[i]);
                    i += 1;
                }
                line += usize::from(chars.get(i) == Some(&'\n'));
                text.extend(chars.get(i));
                i += 1;
            }
            if unbroken(&text) {
                out.push(start);
            }
        }
        i += 1;
    }
    out
}

/// Whether a literal's `text` holds a line break and the next line's
/// indentation (SQL, whose whitespace is not printed, aside), or a gap of
/// six spaces or more after more than 30 characters of its printed line
/// (a column's alignment follows a short label): a line joined without
/// its `\\`.
fn unbroken(text: &str) -> bool {
    const SQL: [&str; 5] = ["CREATE ", "PRAGMA ", "SELECT ", "INSERT ", "WITH "];
    let sql = SQL.iter().any(|k| text.trim_start().starts_with(k));
    let broken = text.contains('\n');
    let gap = text.match_indices("      ").any(|(at, _)| {
        let line = text[..at].rsplit(['\n', '\\']).next().unwrap_or_default();
        line.trim().len() > 30
    });
    (broken || gap) && !sql
}

#[test]
fn no_string_literal_runs_onto_a_next_line_unbroken() {
    let mut found = Vec::new();
    for root in ["xtask/src", "crates/d1-core/src"] {
        for (module, source) in modules(&workspace().join(root)) {
            let code = match source.find("#[cfg(test)]\nmod tests") {
                Some(i) => &source[..i],
                None => &source,
            };
            for line in unbroken_literal_lines(code) {
                found.push(format!("{root} {module}: line {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "string literals that run onto the next line without a `\\` ending the line, or \
         hold the gap of a line joined without it, so they print an indentation mid-sentence \
         (end the line with `\\`, or write `\\n`):\n{}",
        found.join("\n")
    );
}

#[test]
fn an_unbroken_literal_is_found_and_a_continued_raw_or_commented_one_is_not() {
    let code = concat!(
        "let a = \"one \\\n  two\";\n",
        "let b = \"three\n  four\";\n",
        "let c = r#\"raw\n\"#; // \"a\n",
        "/* \"x\n */ let d = '\"'; let e: &'static str = \"f\n\";\n",
    );
    assert_eq!(unbroken_literal_lines(code), [3, 8]);
    let joined = concat!(
        "let g = \"its d1_migrations could not be read          again\";\n",
        "let h = \"  to           r2://\"; let j = \"x\\n  newest verified backup    {b}\";\n",
    );
    assert_eq!(unbroken_literal_lines(joined), [1]);
    let sql = "let i = \"CREATE TABLE t(\n  a\n)\";\n";
    assert!(unbroken_literal_lines(sql).is_empty());
}
