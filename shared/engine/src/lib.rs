//! `cutover-engine`: the step handlers that carry out the core's commands, written once and
//! generic over small port traits, so that the cloud functions and `cutover local` run the same
//! logic.
//!
//! Every handler follows one pattern: load the deployment, hand what happened to
//! [`cutover_core::machine::advance`], and save the new state together with the [`Step`]s that
//! follow from it ([`Store::commit`] does both or neither). A [`Step`] is one unit of queued
//! work: a command to carry out or an event to deliver. Whatever runs the queue (SQS and the
//! Lambda functions, or the local driver loop) calls [`Engine::perform`] for each step.
//!
//! Steps may be delivered twice, and a process may die at any moment, so every handler is safe
//! to repeat: the core ignores events that no longer apply, and [`Engine::perform`] never runs a
//! lifecycle event that the saved deployment already records as finished.

mod engine;
mod error;
pub mod ids;
pub mod ports;
mod step;

pub use cutover_core as core;
pub use engine::{Engine, HookReport};
pub use error::{EngineError, PortError};
pub use ports::{
    Alarms, Clock, Commit, Fleet, HookFunctions, HookRunner, HostRun, LambdaTraffic, Notifier,
    Polled, Ports, Provisioning, Replacements, Resolution, RevisionSource, StepQueue, Store,
    SystemClock, TrafficRouter, Validation,
};
pub use step::{Step, Work};
