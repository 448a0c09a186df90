//! wa-gateway: a multi-tenant WhatsApp REST gateway whose endpoints are WebAssembly
//! component plugins. The host owns HTTP, authentication, tenancy, routing, the error
//! envelope, storage and the WhatsApp engines; plugins own endpoint logic.

pub mod admin;
pub mod app;
pub mod auth;
pub mod backfill;
pub mod background;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod engines;
pub mod events;
pub mod hostapi;
pub mod http;
pub mod ids;
pub mod logs;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod plugins;
pub mod realtime;
pub mod reload;
pub mod routing;
pub mod sessions;
pub mod signals;
pub mod storage;
pub mod webhooks;
