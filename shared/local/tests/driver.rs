//! The driver loop on its own: it never waits forever on a deployment that nothing can move,
//! and a deployment left waiting in its group's queue with nobody ahead asks for the lock again.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use cutover_core::DeploymentId;
use cutover_core::machine::{Deployment, Phase};
use cutover_core::model::{DeploymentStatus, ErrorCode};
use cutover_engine::Engine;
use cutover_local::driver::DriveEvents;
use cutover_local::{DriveError, LocalPorts, LocalStore, drive};
use support::deployment;

#[derive(Default)]
struct Quiet {
    failures: Vec<String>,
}

impl DriveEvents for Quiet {
    fn adopted(&mut self, _id: &DeploymentId) {}
    fn step_failed(&mut self, _id: &DeploymentId, message: &str) {
        self.failures.push(message.to_owned());
    }
}

fn deployment_in(n: u64, phase: Phase) -> Deployment {
    let mut d = deployment(n);
    d.phase = phase;
    d
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_deployment_that_nothing_can_move_ends_the_loop_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    // Validating its revision, with the step that does it gone (as if it had failed for good).
    let d = deployment_in(1, Phase::ValidatingRevision);
    store.commit_deployment(&d, None, vec![]).unwrap();
    let engine = Engine::new(LocalPorts::new(store, dir.path()));

    let started = Instant::now();
    let result = runtime().block_on(drive(&engine, &mut Quiet::default()));
    match result {
        Err(DriveError::Stuck(id)) => assert_eq!(id, d.deployment_id),
        other => panic!("expected Stuck, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = DriveError::Stuck(d.deployment_id.clone()).to_string();
    assert!(err.contains("cutover local stop"), "{err}");
}

#[test]
fn a_queued_deployment_with_nobody_ahead_takes_the_lock_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    // Queued behind a deployment that no longer holds the lock (nobody does).
    let d = deployment_in(
        2,
        Phase::Queued {
            behind: DeploymentId::from_entropy(99),
        },
    );
    store.commit_deployment(&d, None, vec![]).unwrap();
    let engine = Engine::new(LocalPorts::new(store.clone(), dir.path()));

    let mut events = Quiet::default();
    runtime()
        .block_on(drive(&engine, &mut events))
        .expect("the loop ends once the deployment does");
    assert!(events.failures.is_empty(), "{:?}", events.failures);
    let after = store.load_deployment(&d.deployment_id).unwrap().unwrap();
    // It went on to check its revision, which is not there.
    assert_eq!(after.status(), DeploymentStatus::Failed);
    assert_eq!(
        after.error_information.map(|e| e.code),
        Some(ErrorCode::RevisionMissing)
    );
}
