//! `cutover-agent`: what runs on a host. It unpacks a revision bundle safely, installs its
//! `files`, applies `permissions` and runs lifecycle hooks with CodeDeploy's environment, timeouts
//! and `runas`, keeping CodeDeploy's deployment-root layout. In the cloud, SSM Run Command calls
//! the `cutover-agent` binary; in local mode the engine calls this library in-process.
//!
//! - [`bundle`]: unpack a revision bundle safely into `deployment-archive/`, find its AppSpec.
//! - [`fetch`]: download a bundle over HTTPS (a presigned S3 URL), checking size and SHA-256.
//! - [`host`]: the host's file system, real (`/`) or a simulated host's folder.
//! - [`layout`]: the deployment root and its markers.
//! - [`install`]: the `Install` event, the AppSpec's `files`, as one transaction.
//! - [`permissions`]: the AppSpec's `permissions` on what an install creates.
//! - [`hooks`]: running a lifecycle event's scripts and reporting CodeDeploy's diagnostics.
//! - [`run`]: one visit to a host: the lifecycle events asked for, in order, each reported.

pub mod bundle;
pub mod fetch;
pub mod hooks;
pub mod host;
pub mod install;
pub mod layout;
pub mod permissions;
pub mod run;

pub use cutover_core::appspec;
