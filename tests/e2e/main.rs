//! End-to-end tests: the built `gateway` binary, real HTTP over loopback, a real redb
//! database on disk, real plugin components built from `plugins/`, `examples/` and
//! `tests/plugins/` (`cargo xtask plugins`).

// Helpers are `pub` for the test modules; this crate exports nothing.
#![allow(unreachable_pub)]

mod identity;
mod support;

mod admin;
mod apikeys;
mod chats;
mod contacts;
mod contract;
mod crash;
mod faults;
mod fuzz;
mod groups;
mod hardening;
mod jwt;
mod labels;
mod lifecycle;
mod messages;
mod observability;
mod realtime;
mod reload;
mod routing;
mod sessions;
mod soak;
mod storage;
mod webhooks;
mod whatsapp;
