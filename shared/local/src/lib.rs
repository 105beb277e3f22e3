//! `cutover-local`: the engine's ports on one machine (an embedded SQLite store and queue, local
//! hosts, a local traffic registry and local alarms, and clients of S3 and Lambda without the
//! SDK) and the driver loop behind `cutover local`.

pub mod aws_http;
pub mod driver;
pub mod lambda;
pub mod ports;
pub mod process;
mod registry;
pub mod replacements;
pub mod s3;
pub mod store;

pub use cutover_core as core;
pub use driver::{DriveError, drive};
pub use ports::{LocalHosts, LocalPorts};
pub use store::{LocalHost, LocalStore, StoreError};
