//! The end-to-end tests of the xtask, in one test binary.
//!
//! Each module is one area (`backup_local`, `hostile_dumps`, …) and runs on
//! its own with `cargo test -p xtask --test e2e backup_local::`. They share
//! one binary rather than one each because cargo runs test binaries one
//! after another: each binary's slowest test left a core idle at its end,
//! each binary was linked on its own, and the local D1 state that
//! `common/template.rs` keeps per process was made again in every binary.
//! A new area is a module here, not a new file beside `e2e/`.

mod common;

mod advice_as_printed;
mod backup_local;
mod backup_remote;
mod clocks_and_times;
mod config_formats;
mod crashes_and_races;
mod deploy;
mod diff_local;
mod diff_remote;
mod disaster_recovery;
mod drill;
mod edges;
mod exit_codes;
mod fault_matrix;
mod generated_shapes;
mod hard_linked_state;
mod hostile_api_answers;
mod hostile_backup_dir_reads;
mod hostile_backups;
mod hostile_bucket_records;
mod hostile_config;
mod hostile_dumps;
mod hostile_lock_records;
mod hostile_machine;
mod hostile_manifest_trust;
mod hostile_messages;
mod hostile_printing;
mod hostile_private_files;
mod hostile_sealed;
mod key_rotation;
mod legal_shapes;
mod lesser_commands;
mod local_export;
mod migrate_local;
mod offsite_remote;
mod operator_day;
mod operator_week;
mod orm_schemas;
mod output;
mod oversized_values;
mod pasted_identities;
mod prune_local;
mod readme_claims;
mod readme_contract;
mod real_dumps;
mod refusals;
mod rehearse;
mod restore_local;
mod restore_new;
mod restore_remote;
mod scheduled_nights;
mod sealed_reads;
mod session_review;
mod silent_flags;
mod team_machines;
mod time_travel_remote;
mod tired_operator;
mod trust_sweep;
mod upgrades;
mod verify_local;
mod wrong_advice;
