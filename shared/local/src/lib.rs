//! `cutover-local`: the engine's ports on one machine (an embedded SQLite store and queue, local
//! hosts, a local traffic registry and local alarms) and the driver loop behind `cutover local`.
//! The ports arrive with `cutover local`; today the crate only names the core it builds on.

pub use cutover_core as core;
