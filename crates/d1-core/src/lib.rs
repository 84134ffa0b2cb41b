//! The pure core of qbtime's D1 backups: what a dump, a manifest and a
//! backup's content mean, and every check the tool makes of them.
//!
//! The data path, in the order a backup and a restore take it:
//!
//! | step | module |
//! |---|---|
//! | a database's schema, what an export covers | [`catalog`] |
//! | each foreign key, and whether SQLite can code it | [`foreign_keys`] |
//! | reading and splitting a dump; what it may hold | [`dump`] |
//! | the trust boundary: the authorizer every statement passes | [`gate`] |
//! | values over D1's 2 MB that local D1 holds | [`value_limit`] |
//! | the VIRTUAL generated column a row's INSERT could not compute | [`uncomputed`] |
//! | the survey of a dump and the repair of what D1 cannot take | [`repair`] |
//! | a dump loaded as it arrives, when its order allows | [`one_pass`] |
//! | the app's own rules (the audit chain, the key records) | [`app`] |
//! | content digests: equal means equal | [`digest`] |
//! | the checks of a loaded backup: integrity, rows, content, the audit chain | [`checks`] |
//! | the manifest, as a validated type | [`manifest`] |
//! | time spans and ages (retention, `--max-age`) | [`span`] |
//! | which of a database's backups is the newer | [`order`] |
//! | what prune keeps, and why | [`retention`] |
//! | a backup's stored form: plain, zstd, zstd+age | [`sealed`] |
//! | the room left on a file system and in memory | [`room`] |
//!
//! Nothing here spawns a process, prints, or reads an environment variable:
//! those are the xtask's edges. Functions work on text, bytes, values and
//! SQLite connections, so each is tested on them directly.

pub mod app;
pub mod catalog;
pub mod checks;
pub mod digest;
pub mod dump;
pub mod fk_actions;
pub mod foreign_keys;
pub mod fts_content;
pub mod gate;
pub mod interrupt;
pub mod manifest;
pub mod names;
pub mod one_pass;
pub mod order;
pub mod repair;
pub mod retention;
pub mod room;
pub mod sealed;
pub mod span;
pub mod statement;
pub mod uncomputed;
pub mod unseen;
pub mod value_limit;
pub mod wording;
