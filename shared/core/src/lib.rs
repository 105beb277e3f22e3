//! `cutover-core`: the domain of cutover, pure. No I/O, no clock, no async, no AWS.
//!
//! Read it top-down:
//!
//! 1. [`model`]: CodeDeploy's nouns in CodeDeploy's JSON shapes: applications, deployment groups,
//!    revisions, deployment info, targets and their lifecycle events.
//! 2. [`lifecycle`]: the lifecycle event names and the order each kind of deployment runs them.
//! 3. [`appspec`]: parsing and validating `appspec.yml` for Server, Lambda and ECS.
//! 4. [`config`]: deployment configurations: the predefined ones, custom ones, and how a fleet
//!    is split into batches ([`config::HostPlan`]).
//! 5. [`machine`]: the deployment state machine. [`machine::advance`] takes a deployment, one
//!    [`machine::Event`] and the time, and returns the new deployment and the
//!    [`machine::Command`]s to carry out. Its phase graph is in [`machine::phase`].
//! 6. [`lock`]: one active deployment per group, the rest queued in order.
//!
//! Small helpers: [`ids`] (deployment and target ids), [`time`] (timestamps as values) and
//! [`digest`] (SHA-256 as hex).

pub mod appspec;
pub mod config;
pub mod digest;
pub mod ids;
pub mod lifecycle;
pub mod lock;
pub mod machine;
pub mod model;
pub mod time;

pub use ids::{DeploymentId, TargetId};
pub use time::Timestamp;
