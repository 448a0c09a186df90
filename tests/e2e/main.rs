//! End-to-end tests: the built `gateway` binary, real HTTP over loopback, a real redb
//! database on disk, real plugin components built from `plugins/`, `examples/` and
//! `tests/plugins/` (`cargo xtask plugins`).

mod identity;
mod support;

mod faults;
mod routing;
mod storage;
mod apikeys;
mod jwt;
mod sessions;
mod contacts;
mod reload;
mod observability;
