//! footrest: a small synchronous server that runs restic backups and speaks Backrest's
//! HTTP API. The library holds every part; `main.rs` only wires flags, start-up and
//! signals to [`App`].

#[macro_use]
pub mod logging;

pub mod api;
pub mod app;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod logs;
pub mod oplog;
pub mod orchestrator;
pub mod proto;
pub mod restic;
pub mod sd_notify;
pub mod settings;

pub use app::App;
