//! Where the pinned Node is, and the checkout this binary was built in.

use std::path::{Path, PathBuf};

/// The checkout this binary was built in; only a fallback for
/// [`Project::tool_root`] and for tests, never the repository acted on.
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
