//! Where the pinned Node is, and the checkout this binary was built in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

/// The checkout this binary was built in; only a fallback for
/// `Project::tool_root` and for tests, never the repository acted on.
pub fn build_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

/// The Node that `npm ci` installed (the npm package `node`, which wrangler
/// 4.87 and later need), or the system's when it is absent.
pub fn node_at(tool_root: &Path) -> PathBuf {
    let pinned = tool_root.join("node_modules").join(".bin").join("node");
    if pinned.is_file() {
        pinned
    } else {
        PathBuf::from("node")
    }
}

/// `npm ci` in `root`, which installs the pinned wrangler and Node.
pub fn npm_ci(sh: &Shell, npm: &Path, root: &Path) -> Result<()> {
    let _dir = sh.push_dir(root);
    // Errors only: under a system Node older than 22, npm warns
    // EBADENGINE for each package of wrangler's that asks for Node 22,
    // about twenty lines that read like a failure. wrangler never runs on
    // that Node: it runs on the Node 22 that this `npm ci` installs
    // ([`node_at`]).
    //
    // npm prints its summary ("added 45 packages in 32s") on stdout
    // whatever the log level; stdout is the command's own (one `--json`
    // document, nothing under `-q`), so npm's goes to stderr, beside the
    // note that says npm is running ([`crate::out::for_a_childs_chatter`]).
    let status = std::process::Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(sh.current_dir())
        .stdin(std::process::Stdio::null())
        .stdout(crate::out::for_a_childs_chatter())
        .status()
        .with_context(|| format!("cannot start {}", npm.display()))?;
    anyhow::ensure!(
        status.success(),
        "`npm ci` failed ({status}); fix the error above, then run this again"
    );
    Ok(())
}

/// What `node --version` prints, with `bin` first in its `PATH` (where
/// the pinned Node's own tools are).
pub fn version(sh: &Shell, node: &Path, bin: &Path) -> xshell::Result<String> {
    cmd!(sh, "{node} --version")
        .env("PATH", crate::edge::wrangler::path_with_first(bin))
        .quiet()
        .ignore_stderr()
        .read()
}
