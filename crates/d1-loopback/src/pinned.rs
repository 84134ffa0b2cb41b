//! The workspace's pinned wrangler, for tests that drive it against this
//! server. It is installed with `npm ci` on first use, so that `cargo test`
//! works on a fresh clone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `<workspace>/node_modules/.bin/wrangler`, installing it first if needed.
///
/// `workspace_root` holds `package.json` and `package-lock.json`. Panics with
/// the fix when the install cannot be done: this is for tests.
pub fn pinned_wrangler(workspace_root: &Path) -> PathBuf {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    let bin = workspace_root.join("node_modules/.bin/wrangler");
    let installed = INSTALL.get_or_init(|| {
        if bin.is_file() {
            return Ok(());
        }
        eprintln!(
            "installing the pinned wrangler with `npm ci` in {}",
            workspace_root.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(workspace_root)
            .status()
            .map_err(|e| format!("cannot run npm ({e}); install Node.js 20.3 or newer"))?;
        if status.success() && bin.is_file() {
            Ok(())
        } else {
            Err(format!("`npm ci` failed in {}", workspace_root.display()))
        }
    });
    if let Err(message) = installed {
        panic!("the pinned wrangler is not available: {message}");
    }
    bin
}

/// A command that runs the pinned wrangler on the pinned Node: wrangler
/// 4.87 and later need Node 22, which `npm ci` installs into
/// `node_modules/.bin` (the npm package `node`), so that directory goes
/// first on `PATH`, as the xtask does.
pub fn pinned_wrangler_command(workspace_root: &Path) -> Command {
    let bin = pinned_wrangler(workspace_root);
    let bin_dir = bin.parent().expect("node_modules/.bin").to_path_buf();
    let mut paths = vec![bin_dir.clone()];
    if let Some(existing) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    let mut cmd = Command::new(&bin);
    // Node's cache of wrangler's compiled bundle, where the xtask keeps it
    // (`node_compile_cache` in xtask/src/edge/wrangler.rs).
    cmd.env(
        "NODE_COMPILE_CACHE",
        bin_dir.join("../.cache/node-compile-cache"),
    )
    .env(
        "PATH",
        std::env::join_paths(paths).unwrap_or_else(|_| bin_dir.into_os_string()),
    );
    cmd
}
