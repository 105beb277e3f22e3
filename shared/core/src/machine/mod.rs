//! The deployment state machine.
