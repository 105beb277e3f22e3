//! The engine's errors, told apart by whether trying the same step again may help.

use cutover_core::DeploymentId;
use cutover_core::machine::CoreError;

/// A port could not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// True when the same call may succeed later (a busy database, a throttled API).
    pub retryable: bool,
}

impl PortError {
    /// A failure that may pass: the step should be delivered again later.
    pub fn transient(message: impl Into<String>) -> Self {
        PortError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that repeating will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        PortError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Why a step could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("deployment {0} does not exist")]
    DeploymentNotFound(DeploymentId),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("{port}: {source}")]
    Port {
        port: &'static str,
        #[source]
        source: PortError,
    },
    #[error(
        "deployment {0} kept changing while this step tried to save it; the step will be retried"
    )]
    Contended(DeploymentId),
}

impl EngineError {
    /// True when delivering the same step again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Port { source, .. } => source.retryable,
            EngineError::Contended(_) => true,
            EngineError::DeploymentNotFound(_) | EngineError::Core(_) => false,
        }
    }

    pub(crate) fn port(port: &'static str) -> impl FnOnce(PortError) -> EngineError {
        move |source| EngineError::Port { port, source }
    }
}
