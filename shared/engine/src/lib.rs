//! `cutover-engine`: the step handlers that carry out the core's commands, written once and
//! generic over small port traits, so that the cloud functions and `cutover local` run the same
//! logic. The handlers and ports arrive with the local and cloud runtimes; today the crate
//! re-exports the core they build on.

pub use cutover_core as core;
