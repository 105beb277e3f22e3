//! `cutover-agent`: what runs on a host. It unpacks a revision bundle safely, installs its
//! `files`, applies `permissions` and runs lifecycle hooks with CodeDeploy's environment, timeouts
//! and `runas`, keeping CodeDeploy's deployment-root layout. Today the crate holds the AppSpec
//! validation it shares with the core; the installer and hook runner arrive with the agent.

pub use cutover_core::appspec;
