//! The edges: the only code that starts a process (wrangler, git, Node),
//! touches the network, or reads and writes the disk (the backup directory,
//! its locks and manifests, the local D1 file). Commands reach the world
//! only through these.

pub mod arriving;
pub mod child;
pub mod confirm;
pub mod fsutil;
pub mod git;
pub mod inflate;
pub mod inventory;
pub mod journals;
pub mod local_d1;
pub mod lock;
pub mod machine;
pub mod manifest_file;
pub mod node;
pub mod processes;
pub mod reader;
pub mod signals;
pub mod stored;
pub mod wrangler;
