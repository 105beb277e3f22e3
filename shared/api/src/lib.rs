//! CodeDeploy's API as cutover serves it: the awsJson1_1 wire format, SigV4 authentication
//! against cutover's own keys, and the operations over the registry of applications and
//! deployment configurations. `cutover serve` and the `api` function both hand requests to
//! [`Api`].

#[cfg(feature = "contract")]
pub mod contract;
mod deployer;
pub mod ops;
pub mod registry;
mod service;
pub mod sigv4;
#[cfg(test)]
mod testing;
pub mod wire;

pub use deployer::Deployer;
pub use registry::{ConfigDeletion, Registry, Rename};
pub use service::{Api, SERVICE};
pub use sigv4::AccessKey;
pub use wire::{ApiError, ApiRequest, ApiResponse, ErrorKind};
