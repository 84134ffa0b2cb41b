//! The hot inner loops of reading a D1 dump, as pure functions: splitting it
//! into statements ([`statements`]) and reading its rows' values
//! ([`literal`]). Nothing here runs a process or prints.
//!
//! It is a crate of its own so that it alone is compiled optimised in the
//! dev profile (see the workspace `Cargo.toml`): every byte of a dump passes
//! through it, two or three times per restore or verify, and the xtask's own
//! code is built without optimisation to keep a fresh clone's first build
//! short.

pub mod literal;
pub mod statements;
