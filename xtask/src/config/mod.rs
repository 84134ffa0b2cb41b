//! The configuration: wrangler's (`wrangler.toml`, `.jsonc`, `.json`), the
//! tool's own (`backups.toml`), and the checkout they are found in. Every
//! name read here is checked before it reaches a path, an R2 key or a plan.

pub mod environment;
pub mod project;
pub mod settings;
