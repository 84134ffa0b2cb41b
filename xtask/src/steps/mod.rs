//! Steps that more than one command takes: taking a (safety) backup,
//! verifying one, restoring one, the migration record, an offsite upload.

pub mod backup;
pub mod doctor;
pub mod identity;
pub mod lock;
pub mod migrations;
pub mod new_database;
pub mod offsite;
pub mod rehearsals;
pub mod restore;
pub mod restores;
pub mod status;
pub mod unsettled;
pub mod verify;
