//! The driver loop: the local stand-in for SQS and the Lambda functions. It takes the queued
//! steps of the deployments this process drives, hands each to the engine, and removes it from
//! the queue once it is done, so that a step interrupted by a crash is found again.
//!
//! It also adopts deployments whose driving process died, and reads the alarms of the
//! deployments it drives, as the cloud watchdog does.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use cutover_core::DeploymentId;
use cutover_core::machine::{Command, Phase};
use cutover_engine::{Engine, HookRunner, Step};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::ports::LocalPorts;
use crate::store::StoreError;

/// How often the queue is read for steps that other processes queued (steps this process
/// queues wake the loop at once).
const POLL: Duration = Duration::from_millis(50);
/// How often dead drivers are looked for.
const WATCH: Duration = Duration::from_millis(250);
/// How long a step that failed for a passing reason waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How long an unfinished deployment may have nothing queued and nothing running before it is
/// judged stuck. Only a step that failed for good can leave one so.
const STUCK_AFTER: Duration = Duration::from_secs(2);

/// Why driving stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "deployment {0} cannot go on: a step it needed failed (see above), and nothing else is queued for it. `cutover local stop {0}` ends it."
    )]
    Stuck(DeploymentId),
}

/// What the loop tells its caller about as it goes.
pub trait DriveEvents {
    /// This process took over a deployment whose driver is gone.
    fn adopted(&mut self, id: &DeploymentId);
    /// A step failed for good and was dropped.
    fn step_failed(&mut self, id: &DeploymentId, message: &str);
}

/// Drives every deployment this process drives (and any it adopts) until none is left
/// unfinished and no step of theirs is queued.
pub async fn drive<H: HookRunner>(
    engine: &Engine<LocalPorts<H>>,
    events: &mut dyn DriveEvents,
) -> Result<(), DriveError> {
    let store = engine.ports().local_store().clone();
    let mut in_flight = FuturesUnordered::new();
    let mut last_watch: Option<Instant> = None;
    let mut adopted: HashSet<DeploymentId> = HashSet::new();
    let mut watches_alarms: HashMap<DeploymentId, bool> = HashMap::new();
    let mut idle_since: HashMap<DeploymentId, Instant> = HashMap::new();
    loop {
        if last_watch.is_none_or(|t| t.elapsed() >= WATCH) {
            last_watch = Some(Instant::now());
            for id in store.adopt_orphans()? {
                if adopted.insert(id.clone()) {
                    events.adopted(&id);
                }
            }
        }
        // Alarms are read before every step, so a deployment stops before its next host work.
        // Awaiting here while steps are in flight is safe because the local store never yields
        // while the engine holds its decision lock: a step paused mid-decision cannot exist.
        for id in store.driven()? {
            // What a deployment watches is fixed when it is created, so it is looked up once.
            let watched = match watches_alarms.get(&id) {
                Some(&watched) => watched,
                None => {
                    let watched = store.load_deployment(&id)?.is_some_and(|d| {
                        let alarms = &d.options.alarm_configuration;
                        alarms.enabled && !alarms.alarms.is_empty()
                    });
                    watches_alarms.insert(id.clone(), watched);
                    watched
                }
            };
            // A failure to read alarms is the engine's to judge; only the store can fail here.
            if watched && let Err(e) = engine.check_alarms(&id).await {
                events.step_failed(&id, &e.to_string());
            }
        }
        while let Some(claimed) = store.claim_step()? {
            in_flight.push(async move {
                let id = claimed.step.deployment_id.clone();
                let result = engine.perform(claimed.step).await;
                if matches!(&result, Err(e) if e.is_retryable()) {
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                (claimed.seq, id, result)
            });
        }
        if in_flight.is_empty() && store.my_steps()? == 0 {
            let driven = store.driven()?;
            if driven.is_empty() {
                return Ok(());
            }
            if let Some(id) = stuck(engine, &driven, &mut idle_since).await? {
                return Err(DriveError::Stuck(id));
            }
        } else {
            idle_since.clear();
        }
        tokio::select! {
            Some((seq, id, result)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(()) => store.ack(seq)?,
                Err(e) if e.is_retryable() => store.unclaim(seq)?,
                Err(e) => {
                    events.step_failed(&id, &e.to_string());
                    store.ack(seq)?;
                }
            },
            () = store.step_queued() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Looks at driven deployments that have nothing queued and nothing running. One waiting in its
/// group's queue asks for the lock again once in a while (harmless if it is still taken, and a
/// cure if the deployment ahead ended without handing it on). Any other is stuck once it has been
/// idle for [`STUCK_AFTER`].
async fn stuck<H: HookRunner>(
    engine: &Engine<LocalPorts<H>>,
    driven: &[DeploymentId],
    idle_since: &mut HashMap<DeploymentId, Instant>,
) -> Result<Option<DeploymentId>, DriveError> {
    let store = engine.ports().local_store();
    idle_since.retain(|id, _| driven.contains(id));
    for id in driven {
        let since = *idle_since.entry(id.clone()).or_insert_with(Instant::now);
        if since.elapsed() < STUCK_AFTER {
            continue;
        }
        let Some(d) = store.load_deployment(id)? else {
            continue;
        };
        if matches!(d.phase, Phase::Queued { .. }) {
            idle_since.remove(id);
            store.enqueue(&[Step::command(id.clone(), Command::AcquireGroupLock)])?;
        } else if !d.is_finished() && store.steps_of(id)? == 0 {
            return Ok(Some(id.clone()));
        }
    }
    Ok(None)
}
