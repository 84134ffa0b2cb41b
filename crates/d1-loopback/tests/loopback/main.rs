//! The loopback's integration tests, in one test binary: its HTTP API
//! (`http_api`, `r2_http`), the dump fixture, and the real wrangler against
//! it (`wrangler_*`). One area runs on its own with
//! `cargo test -p d1-loopback --test loopback wrangler_r2::`. One binary
//! rather than one each: cargo runs test binaries one after another, so
//! each binary's slowest test left a core idle at its end.

mod common;

mod dump_fixture;
mod http_api;
mod r2_http;
mod wrangler_import;
mod wrangler_migrations;
mod wrangler_r2;
mod wrangler_remote;
