//! Deployment configurations.

/// The configuration a Server deployment uses when none is named.
pub const DEFAULT_SERVER_CONFIG: &str = "CodeDeployDefault.OneAtATime";
