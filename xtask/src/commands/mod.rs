//! One module per verb of `cargo xtask`. Each `run` orchestrates named
//! steps; a command never reaches into another command: what two share is a
//! step (`crate::steps`), the core (`d1_core`) or an edge (`crate::edge`).

pub mod backup;
pub mod deploy;
pub mod diff;
pub mod doctor;
pub mod drill;
pub mod hooks;
pub mod keygen;
pub mod list;
pub mod migrate;
pub mod offsite;
pub mod prune;
pub mod rehearse;
pub mod restore;
pub mod status;
pub mod time_travel;
pub mod verify;
pub mod with_backup;
