//! The SQLite store on its own: what survives reopening, conditional writes, the group lock and
//! its last success, and refusing a database written by a newer layout.

mod support;

use cutover_core::machine::FinalStatus;
use cutover_engine::{Commit, Step};
use cutover_local::store::DATABASE_FILE;
use cutover_local::{LocalStore, StoreError};
use support::deployment;

#[test]
fn a_commit_survives_reopening_with_its_queued_steps() {
    let dir = tempfile::tempdir().unwrap();
    let d = deployment(1);
    {
        let store = LocalStore::open(dir.path()).unwrap();
        let created = Step::event(
            d.deployment_id.clone(),
            cutover_core::machine::Event::Created,
        );
        assert_eq!(
            store.commit_deployment(&d, None, vec![created]).unwrap(),
            Commit::Saved
        );
    }
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(
        store.load_deployment(&d.deployment_id).unwrap(),
        Some(d.clone())
    );
    let claimed = store
        .claim_step()
        .unwrap()
        .expect("the queued step is still there");
    assert_eq!(claimed.step.deployment_id, d.deployment_id);
    assert!(store.claim_step().unwrap().is_none(), "claimed only once");
}

#[test]
fn a_commit_on_a_stale_version_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let d = deployment(2);
    store.commit_deployment(&d, None, vec![]).unwrap();
    assert_eq!(
        store.commit_deployment(&d, None, vec![]).unwrap(),
        Commit::Conflict,
        "a second create of the same id"
    );
    let mut newer = d.clone();
    newer.version = 1;
    newer.description = Some("newer".into());
    assert_eq!(
        store.commit_deployment(&newer, Some(0), vec![]).unwrap(),
        Commit::Saved
    );
    let mut stale = d.clone();
    stale.version = 1;
    stale.description = Some("stale".into());
    assert_eq!(
        store.commit_deployment(&stale, Some(0), vec![]).unwrap(),
        Commit::Conflict
    );
    let reopened = LocalStore::open(dir.path()).unwrap();
    let saved = reopened.load_deployment(&d.deployment_id).unwrap().unwrap();
    assert_eq!(saved.description.as_deref(), Some("newer"));
}

#[test]
fn an_older_finish_delivered_again_does_not_bring_back_its_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let (older, newer) = (deployment(3), deployment(4));
    for d in [&older, &newer] {
        store.commit_deployment(d, None, vec![]).unwrap();
    }
    store.acquire_group_lock(&older).unwrap();
    assert_eq!(
        store.finish(&older, FinalStatus::Succeeded, None).unwrap(),
        None
    );
    store.acquire_group_lock(&newer).unwrap();
    store.finish(&newer, FinalStatus::Succeeded, None).unwrap();
    store.finish(&older, FinalStatus::Succeeded, None).unwrap();
    let last = store.last_successful("App", "Fleet").unwrap().unwrap();
    assert_eq!(last.deployment_id, newer.deployment_id);
}

#[test]
fn a_database_from_a_newer_layout_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(dir.path()).unwrap());
    let path = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = LocalStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerLayout { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("use a newer cutover"), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[test]
fn a_step_is_claimed_only_once_it_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let d = deployment(1);
    let now = cutover_engine::Clock::now(&cutover_engine::SystemClock);
    let later = Step::event(
        d.deployment_id.clone(),
        cutover_core::machine::Event::Created,
    )
    .not_before(now + std::time::Duration::from_millis(400));
    let at_once = Step::event(
        d.deployment_id.clone(),
        cutover_core::machine::Event::TrafficRestored,
    );
    store
        .commit_deployment(&d, None, vec![later.clone(), at_once.clone()])
        .unwrap();
    store.adopt_orphans().unwrap();
    let first = store.claim_step().unwrap().expect("the step due now");
    assert_eq!(first.step, at_once);
    assert!(store.claim_step().unwrap().is_none(), "a step came early");
    assert_eq!(store.my_steps().unwrap(), 2, "a step not due still counts");
    std::thread::sleep(std::time::Duration::from_millis(450));
    let second = store.claim_step().unwrap().expect("the step once due");
    assert_eq!(second.step, later);
}

#[test]
fn a_database_of_the_first_layout_is_upgraded_keeping_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE steps (seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL, body TEXT NOT NULL, claimed_by TEXT);
             INSERT INTO steps (deployment_id, body) VALUES ('d-AAAAAAAAA', '{}');",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(store.steps_of(&"d-AAAAAAAAA".parse().unwrap()).unwrap(), 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let due: i64 = conn
        .query_row("SELECT due FROM steps", [], |r| r.get(0))
        .unwrap();
    assert_eq!(due, 0, "an old step is due at once");
    // Opening it again changes nothing more.
    drop(conn);
    LocalStore::open(dir.path()).unwrap();
}

#[test]
fn a_finished_deployment_drops_the_waits_it_had_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut d = deployment(1);
    let now = cutover_engine::Clock::now(&cutover_engine::SystemClock);
    let timer = Step::event(
        d.deployment_id.clone(),
        cutover_core::machine::Event::Created,
    )
    .not_before(now + std::time::Duration::from_secs(3600));
    store.commit_deployment(&d, None, vec![timer]).unwrap();
    assert_eq!(store.steps_of(&d.deployment_id).unwrap(), 1);
    d.version = 1;
    d.phase = cutover_core::machine::Phase::Finished {
        status: FinalStatus::Stopped,
    };
    let notify = Step::event(
        d.deployment_id.clone(),
        cutover_core::machine::Event::TrafficRestored,
    );
    store
        .commit_deployment(&d, Some(0), vec![notify.clone()])
        .unwrap();
    assert_eq!(
        store.steps_of(&d.deployment_id).unwrap(),
        1,
        "only the step due now is left"
    );
    assert_eq!(store.claim_step().unwrap().unwrap().step, notify);
}
