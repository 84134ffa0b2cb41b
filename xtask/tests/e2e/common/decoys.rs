//! Files a hostile input aims at, which nothing may change: planted in
//! `<sandbox>/decoys/` (so that a path relative to `backups/`, such as
//! `../decoys/victim.sql`, reaches them) and in a directory outside the
//! sandbox. One set for every hostile suite, so that each test checks the
//! same places.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::sha256_hex;

pub struct Decoys {
    inside: PathBuf,
    outside: tempfile::TempDir,
}

impl Decoys {
    /// Plants the decoys for the sandbox at `root`.
    pub fn plant(root: &Path) -> Decoys {
        let inside = root.join("decoys");
        let outside = tempfile::Builder::new()
            .prefix("qbtime-decoys-")
            .tempdir()
            .unwrap();
        for dir in [inside.as_path(), outside.path()] {
            std::fs::create_dir_all(dir.join("nested")).unwrap();
            std::fs::write(dir.join("victim"), "a file that must survive\n").unwrap();
            std::fs::write(dir.join("victim.txt"), "untouched\n").unwrap();
            std::fs::write(dir.join("victim.sql"), "-- must survive\n").unwrap();
            std::fs::write(dir.join("x.sql"), "CREATE TABLE pwned(x);\n").unwrap();
            for db in [dir.join("other.db"), dir.join("nested").join("o.db")] {
                rusqlite::Connection::open(db)
                    .unwrap()
                    .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES('keep me');")
                    .unwrap();
            }
        }
        Decoys { inside, outside }
    }

    /// A decoy in `<sandbox>/decoys/`, or where one would be created.
    pub fn path(&self, name: &str) -> PathBuf {
        self.inside.join(name)
    }

    /// A decoy outside the sandbox, or where one would be created.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.outside.path().join(name)
    }

    /// Every file under both decoy directories, with its sha256: a file
    /// changed, removed or created shows.
    pub fn hashes(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![self.inside.clone(), self.outside.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    dirs.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    out.insert(path, sha256_hex(&bytes));
                }
            }
        }
        out
    }
}
