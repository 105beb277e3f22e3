//! `cutover-local`: the engine's ports on one machine (an embedded SQLite store and queue, local
//! hosts, a local traffic registry and local alarms) and the driver loop behind `cutover local`.

pub mod driver;
pub mod ports;
pub mod process;
mod registry;
pub mod s3;
pub mod store;

pub use cutover_core as core;
pub use driver::{DriveError, drive};
pub use ports::{LocalHosts, LocalPorts};
pub use store::{LocalHost, LocalStore, StoreError};
