//! Local D1 state made once per test process and copied after.
//!
//! Most end-to-end tests start from the same local D1: the migrations
//! applied, then the seed rows. Each of those steps is a wrangler run
//! (Node, wrangler and workerd: about 2 s of CPU). Here the first sandbox
//! that takes a step runs the real wrangler and the `.wrangler/state` it
//! leaves is kept in memory under a key; a later sandbox that takes the
//! same step from the same state gets a copy of it instead.
//!
//! The key is everything the result depends on: the key of the state the
//! step started from (none: no local state yet), the wrangler arguments and
//! input, and the exact bytes of the sandbox's wrangler configuration and
//! migrations/. A sandbox whose state was changed in any other way (an xtask
//! run, a direct wrangler call, a test writing the file) no longer matches
//! the fingerprint recorded after its last step, and runs the real wrangler
//! again from then on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The files under a folder: relative path, permission bits and bytes.
type Snapshot = Vec<(PathBuf, u32, Vec<u8>)>;

/// Key → the folder's permission bits and the files the real run left.
type Templates = Mutex<HashMap<String, Arc<OnceLock<Arc<(u32, Snapshot)>>>>>;

fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(Templates::default)
}

/// The files under `dir` made once per test process for `key`: the first
/// caller runs `real` and keeps what it leaves in `dir`; a later caller with
/// the same key gets a copy in its own `dir` (replacing what was there)
/// instead, with the same permission bits. Returns the files' digest.
pub fn made_once(key: &str, dir: &Path, real: impl FnOnce()) -> String {
    let cell = Arc::clone(
        templates()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default(),
    );
    let mut ran_here = false;
    let made = cell.get_or_init(|| {
        real();
        ran_here = true;
        Arc::new((mode_of(&std::fs::metadata(dir).unwrap()), snapshot(dir)))
    });
    let (dir_mode, files) = &**made;
    if !ran_here {
        if dir.exists() {
            std::fs::remove_dir_all(dir).unwrap();
        }
        std::fs::create_dir_all(dir).unwrap();
        for (path, mode, bytes) in files {
            let target = dir.join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, bytes).unwrap();
            set_mode(&target, *mode);
        }
        set_mode(dir, *dir_mode);
    }
    digest(files)
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions())
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

/// What a sandbox knows about how its local state was made.
#[derive(Default)]
pub struct Lineage {
    /// The key of the last step and the state's fingerprint right after it.
    last: Option<(String, String)>,
}

fn state_dir(root: &Path) -> PathBuf {
    root.join(".wrangler/state")
}

/// Every file under `dir`, relative to it, sorted, with its permission
/// bits and bytes.
fn snapshot(dir: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, out: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let mode = mode_of(&std::fs::metadata(&path).unwrap());
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(base).unwrap().to_path_buf(), mode, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn digest(snapshot: &Snapshot) -> String {
    let mut h = Sha256::new();
    for (path, _, bytes) in snapshot {
        h.update(path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of taking `step` (arguments and input) in the sandbox at `root`
/// from the state `from` left: with the exact bytes of its wrangler
/// configuration, of the `configs` named, and of its migrations/.
pub fn key(root: &Path, from: &str, step: &[&str], configs: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(from.as_bytes());
    for part in step {
        h.update([0]);
        h.update(part.as_bytes());
    }
    let wrangler = ["wrangler.toml", "wrangler.json", "wrangler.jsonc"];
    for config in wrangler.iter().chain(configs) {
        h.update([1]);
        h.update(config.as_bytes());
        if let Ok(bytes) = std::fs::read(root.join(config)) {
            h.update(bytes);
        }
    }
    for (path, _, bytes) in snapshot(&root.join("migrations")) {
        h.update([2]);
        h.update(path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(bytes);
    }
    hex(&h.finalize())
}

impl Lineage {
    /// Takes `step` in the sandbox at `root`: copies the state a real
    /// wrangler run left for the same key, or runs `real` (the real
    /// wrangler) and keeps what it leaves for the next sandbox.
    pub fn step(&mut self, root: &Path, step: &[&str], real: impl FnOnce()) {
        let dir = state_dir(root);
        let from = if !dir.exists() {
            Some("fresh".to_owned())
        } else {
            match &self.last {
                Some((key, print)) if *print == digest(&snapshot(&dir)) => Some(key.clone()),
                _ => None,
            }
        };
        let Some(from) = from else {
            // Changed since the last step we know: only wrangler can tell.
            self.last = None;
            real();
            return;
        };
        let key = key(root, &from, step, &[]);
        let print = made_once(&key, &dir, real);
        self.last = Some((key, print));
    }
}
