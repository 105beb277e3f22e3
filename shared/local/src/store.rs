//! The embedded store: one SQLite database per state directory that holds what DynamoDB holds
//! in the cloud (deployments with one row per target, groups with their lock and last success,
//! custom configurations) plus the step queue, the local hosts, alarms and the traffic registry.
//!
//! A deployment and the steps that follow from it are written in one transaction, so a process
//! killed at any moment leaves either the old state with its queued steps or the new state with
//! its own. The database runs in WAL mode with `synchronous=NORMAL`: a commit survives the
//! process being killed; only a power loss may take the last commits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cutover_core::DeploymentId;
use cutover_core::config::DeploymentConfigInfo;
use cutover_core::lock::{GroupQueue, LockDecision};
use cutover_core::machine::{Deployment, FinalStatus, PreviousDeployment, Target};
use cutover_core::model::DeploymentGroupInfo;
use cutover_engine::{Clock, Commit, PortError, Step, SystemClock};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;

use crate::process::ProcessId;

/// The database file inside a state directory.
pub const DATABASE_FILE: &str = "state.db";

/// How long the store waits for another process's lock on the database before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The layout version of [`SCHEMA`], kept in SQLite's `user_version`, so that a later layout can
/// tell what it upgrades from and an older cutover refuses a newer database.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    application TEXT NOT NULL,
    group_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    driver TEXT,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_by_group ON deployments (application, group_name, seq);
CREATE TABLE IF NOT EXISTS targets (
    deployment_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (deployment_id, position)
);
CREATE TABLE IF NOT EXISTS steps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    body TEXT NOT NULL,
    claimed_by TEXT,
    due INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS groups (
    application TEXT NOT NULL,
    name TEXT NOT NULL,
    info TEXT NOT NULL,
    lock TEXT NOT NULL DEFAULT '{}',
    last_successful TEXT,
    last_successful_seq INTEGER,
    PRIMARY KEY (application, name)
);
CREATE TABLE IF NOT EXISTS hosts (
    application TEXT NOT NULL,
    group_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    root TEXT NOT NULL,
    PRIMARY KEY (application, group_name, name)
);
CREATE TABLE IF NOT EXISTS applications (
    name TEXT PRIMARY KEY,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    application TEXT NOT NULL,
    location TEXT NOT NULL,
    seq INTEGER NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (application, location)
);
CREATE TABLE IF NOT EXISTS tags (
    resource TEXT PRIMARY KEY,
    tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
    name TEXT PRIMARY KEY,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alarms (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS replacements (
    deployment_id TEXT NOT NULL,
    name TEXT NOT NULL,
    root TEXT NOT NULL,
    PRIMARY KEY (deployment_id, name)
);
CREATE TABLE IF NOT EXISTS traffic (
    application TEXT NOT NULL,
    group_name TEXT NOT NULL,
    host TEXT NOT NULL,
    in_service INTEGER NOT NULL,
    deployment_id TEXT NOT NULL,
    PRIMARY KEY (application, group_name, host)
);
";

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the state database holds a record that cutover cannot read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "the state database {path} has layout version {found}, newer than this cutover knows ({SCHEMA_VERSION}); use a newer cutover or another --state-dir"
    )]
    NewerLayout { path: PathBuf, found: i64 },
}

impl From<StoreError> for PortError {
    fn from(e: StoreError) -> Self {
        if matches!(&e, StoreError::Sqlite(e) if is_busy(e)) {
            PortError::transient(e.to_string())
        } else {
            PortError::permanent(e.to_string())
        }
    }
}

/// A host of a local deployment group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalHost {
    pub name: String,
    /// The directory that is `/` for this host; `/` itself is this machine.
    pub root: PathBuf,
}

impl LocalHost {
    /// Simulated host `i`: `host-<i>`, rooted at `<state dir>/hosts/host-<i>/`.
    pub fn simulated(state_dir: &Path, i: u32) -> LocalHost {
        LocalHost::named(state_dir, &format!("host-{i}"))
    }

    /// The simulated host of a registered on-premises instance: rooted at
    /// `<state dir>/hosts/<instance name>/`. None if the name is not one folder's name.
    pub fn on_premises(state_dir: &Path, instance_name: &str) -> Option<LocalHost> {
        let mut parts = Path::new(instance_name).components();
        match (parts.next(), parts.next()) {
            (Some(std::path::Component::Normal(_)), None) => {
                Some(LocalHost::named(state_dir, instance_name))
            }
            _ => None,
        }
    }

    pub(crate) fn named(state_dir: &Path, name: &str) -> LocalHost {
        LocalHost {
            name: name.to_owned(),
            root: state_dir.join("hosts").join(name),
        }
    }
}

/// A queued step that this process has claimed.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedStep {
    pub seq: i64,
    pub step: Step,
}

/// Called with every deployment this process drives, after it saves it.
type CommitObserver = Box<dyn FnMut(&Deployment) + Send>;

/// The store of one state directory, shared by the tasks of one process.
pub struct LocalStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The last version of each deployment this process loaded or saved, so that a load costs a
    /// version check and a save writes only the targets that changed.
    cache: Mutex<HashMap<DeploymentId, Deployment>>,
    me: ProcessId,
    queued: Notify,
    on_commit: Mutex<Option<CommitObserver>>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("path", &self.path)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens (creating if needed) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let path = state_dir.join(DATABASE_FILE);
        let open = |path: &Path| -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        // Making a new database WAL takes a lock that SQLite does not wait for, so processes
        // that open a new state directory at the same time try again until one has done it.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let conn = loop {
            match open(&path) {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => {
                    break result.map_err(|source| StoreError::Open {
                        path: path.clone(),
                        source,
                    })?;
                }
            }
        };
        upgrade(&conn, &path)?;
        Ok(LocalStore {
            path,
            conn: Mutex::new(conn),
            cache: Mutex::new(HashMap::new()),
            me: ProcessId::current(),
            queued: Notify::new(),
            on_commit: Mutex::new(None),
        })
    }

    /// This process, as it is recorded as a deployment's driver.
    pub fn me(&self) -> &ProcessId {
        &self.me
    }

    /// Calls `f` with every deployment this process drives, after it saves it. Deployments that
    /// another process drives, which this one changes only in passing (handing them the group
    /// lock, stopping them), are left to their own driver to report.
    pub fn on_commit(&self, f: impl FnMut(&Deployment) + Send + 'static) {
        *lock(&self.on_commit) = Some(Box::new(f));
    }

    /// Resolves when this process queues a step (steps queued by other processes are found by
    /// polling).
    pub async fn step_queued(&self) {
        self.queued.notified().await
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    // ----- deployments -------------------------------------------------------------------

    pub fn load_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, StoreError> {
        let conn = self.conn();
        let version: Option<i64> = conn
            .query_row(
                "SELECT version FROM deployments WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(d) = lock(&self.cache).get(id)
            && d.version as i64 == version
        {
            return Ok(Some(d.clone()));
        }
        let d = read_deployment(&conn, id)?;
        if let Some(d) = &d {
            lock(&self.cache).insert(id.clone(), d.clone());
        }
        Ok(d)
    }

    pub fn commit_deployment(
        &self,
        d: &Deployment,
        expected: Option<u64>,
        next: Vec<Step>,
    ) -> Result<Commit, StoreError> {
        let id = &d.deployment_id;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<(i64, Option<String>)> = tx
            .query_row(
                "SELECT version, driver FROM deployments WHERE id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if stored.as_ref().map(|(version, _)| *version) != expected.map(|v| v as i64) {
            return Ok(Commit::Conflict);
        }
        let me = self.me.to_string();
        let driven_here = stored.is_none_or(|(_, driver)| driver.as_deref() == Some(me.as_str()));
        // The cache needs a copy, and a copy costs a pointer per target: the meta row is
        // written from that copy with its targets set aside, rather than from a second copy.
        let mut saved = d.clone();
        let targets = std::mem::take(&mut saved.targets);
        let meta = serde_json::to_string(&saved);
        saved.targets = targets;
        let meta = meta?;
        let previous = match expected {
            None => {
                let seq: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployments",
                    [],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO deployments (id, seq, application, group_name, version, finished, driver, meta)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id.as_str(),
                        seq,
                        d.application_name,
                        d.group.deployment_group_name,
                        d.version as i64,
                        d.is_finished(),
                        me,
                        meta
                    ],
                )?;
                None
            }
            Some(v) => {
                tx.execute(
                    "UPDATE deployments SET version = ?2, finished = ?3, meta = ?4 WHERE id = ?1",
                    params![id.as_str(), d.version as i64, d.is_finished(), meta],
                )?;
                // Taken out rather than copied: `saved` replaces it below, and a failed commit
                // only costs the next load a read.
                lock(&self.cache).remove(id).filter(|c| c.version == v)
            }
        };
        {
            let mut write = tx.prepare_cached(
                "INSERT OR REPLACE INTO targets (deployment_id, position, body) VALUES (?1, ?2, ?3)",
            )?;
            for (i, t) in d.targets.iter().enumerate() {
                let unchanged = previous
                    .as_ref()
                    .and_then(|p| p.targets.get(i))
                    .is_some_and(|p| p == t);
                if !unchanged {
                    write.execute(params![id.as_str(), i as i64, serde_json::to_string(t)?])?;
                }
            }
        }
        let queued = !next.is_empty();
        if d.is_finished() {
            // Its waits are over: the events they would deliver change nothing now, and a
            // driver would otherwise wait for them.
            tx.execute(
                "DELETE FROM steps WHERE deployment_id = ?1 AND claimed_by IS NULL AND due > ?2",
                params![id.as_str(), SystemClock.now().as_millis()],
            )?;
        }
        enqueue(&tx, &next)?;
        tx.commit()?;
        drop(conn);
        lock(&self.cache).insert(id.clone(), saved);
        if queued {
            self.queued.notify_one();
        }
        if driven_here && let Some(f) = lock(&self.on_commit).as_mut() {
            f(d);
        }
        Ok(Commit::Saved)
    }

    /// Every deployment, oldest first.
    pub fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut q = conn.prepare("SELECT id FROM deployments ORDER BY seq")?;
            q.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = parse_id(&id)?;
            if let Some(d) = self.load_deployment(&id)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The most recently created deployment.
    pub fn latest_deployment(&self) -> Result<Option<DeploymentId>, StoreError> {
        let id: Option<String> = self
            .conn()
            .query_row(
                "SELECT id FROM deployments ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| parse_id(&id)).transpose()
    }

    // ----- groups and their lock ---------------------------------------------------------

    pub fn group(
        &self,
        application: &str,
        name: &str,
    ) -> Result<Option<DeploymentGroupInfo>, StoreError> {
        let info: Option<String> = self
            .conn()
            .query_row(
                "SELECT info FROM groups WHERE application = ?1 AND name = ?2",
                [application, name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(info.map(|i| serde_json::from_str(&i)).transpose()?)
    }

    /// Saves the group's settings, keeping its lock and history.
    pub fn put_group(&self, info: &DeploymentGroupInfo) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO groups (application, name, info) VALUES (?1, ?2, ?3)
             ON CONFLICT (application, name) DO UPDATE SET info = excluded.info",
            params![
                info.application_name,
                info.deployment_group_name,
                serde_json::to_string(info)?
            ],
        )?;
        Ok(())
    }

    pub fn acquire_group_lock(&self, d: &Deployment) -> Result<LockDecision, StoreError> {
        self.with_group_queue(d, |queue| queue.acquire(&d.deployment_id))
    }

    pub fn finish(
        &self,
        d: &Deployment,
        status: FinalStatus,
        hand_to: Option<&DeploymentId>,
    ) -> Result<Option<DeploymentId>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if status == FinalStatus::Succeeded {
            // Only a newer deployment's success replaces the last one, so that a finish
            // delivered twice cannot bring back an older revision.
            let previous = serde_json::to_string(&PreviousDeployment {
                deployment_id: d.deployment_id.clone(),
                revision: d.revision.clone(),
            })?;
            tx.execute(
                "UPDATE groups SET last_successful = ?3, last_successful_seq = d.seq
                 FROM (SELECT seq FROM deployments WHERE id = ?4) AS d
                 WHERE application = ?1 AND name = ?2
                   AND (last_successful_seq IS NULL OR last_successful_seq < d.seq)",
                params![
                    d.application_name,
                    d.group.deployment_group_name,
                    previous,
                    d.deployment_id.as_str()
                ],
            )?;
        }
        let mut queue = read_group_queue(&tx, d)?;
        let holder = match queue.release(&d.deployment_id, hand_to) {
            Some(next) => Some(next),
            // Delivered before: the lock moved on already; name its holder again.
            None => queue
                .active
                .clone()
                .filter(|active| active != &d.deployment_id),
        };
        write_group_queue(&tx, d, &queue)?;
        tx.commit()?;
        Ok(holder)
    }

    pub fn last_successful(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Option<PreviousDeployment>, StoreError> {
        let last: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT last_successful FROM groups WHERE application = ?1 AND name = ?2",
                [application, group],
                |r| r.get(0),
            )
            .optional()?;
        Ok(last
            .flatten()
            .map(|l| serde_json::from_str(&l))
            .transpose()?)
    }

    fn with_group_queue<T>(
        &self,
        d: &Deployment,
        f: impl FnOnce(&mut GroupQueue) -> T,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut queue = read_group_queue(&tx, d)?;
        let result = f(&mut queue);
        write_group_queue(&tx, d, &queue)?;
        tx.commit()?;
        Ok(result)
    }

    // ----- hosts -------------------------------------------------------------------------

    /// Replaces the group's hosts.
    pub fn set_hosts(
        &self,
        application: &str,
        group: &str,
        hosts: &[LocalHost],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM hosts WHERE application = ?1 AND group_name = ?2",
            [application, group],
        )?;
        for (i, h) in hosts.iter().enumerate() {
            tx.execute(
                "INSERT INTO hosts (application, group_name, position, name, root) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![application, group, i as i64, h.name, h.root.to_string_lossy()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One host of the group, by name.
    pub fn host(
        &self,
        application: &str,
        group: &str,
        name: &str,
    ) -> Result<Option<LocalHost>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT root FROM hosts WHERE application = ?1 AND group_name = ?2 AND name = ?3",
        )?;
        let root: Option<String> = q
            .query_row([application, group, name], |r| r.get(0))
            .optional()?;
        Ok(root.map(|root| LocalHost {
            name: name.to_owned(),
            root: PathBuf::from(root),
        }))
    }

    pub fn hosts(&self, application: &str, group: &str) -> Result<Vec<LocalHost>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT name, root FROM hosts WHERE application = ?1 AND group_name = ?2 ORDER BY position",
        )?;
        let hosts = q
            .query_map([application, group], |r| {
                Ok(LocalHost {
                    name: r.get(0)?,
                    root: PathBuf::from(r.get::<_, String>(1)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(hosts)
    }

    // ----- custom deployment configurations ----------------------------------------------

    /// Saves a custom configuration; false if one of that name exists already.
    pub fn create_config(&self, config: &DeploymentConfigInfo) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO configs (name, info) VALUES (?1, ?2)",
            params![
                config.deployment_config_name,
                serde_json::to_string(config)?
            ],
        )?;
        Ok(n == 1)
    }

    pub fn config(&self, name: &str) -> Result<Option<DeploymentConfigInfo>, StoreError> {
        let info: Option<String> = self
            .conn()
            .query_row("SELECT info FROM configs WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(info.map(|i| serde_json::from_str(&i)).transpose()?)
    }

    // ----- alarms and traffic ------------------------------------------------------------

    pub fn set_alarm(&self, name: &str, in_alarm: bool) -> Result<(), StoreError> {
        let state = if in_alarm { "ALARM" } else { "OK" };
        self.conn().execute(
            "INSERT INTO alarms (name, state) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state",
            [name, state],
        )?;
        Ok(())
    }

    /// The first of `names` whose state is ALARM.
    pub fn first_in_alarm(&self, names: &[String]) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached("SELECT state FROM alarms WHERE name = ?1")?;
        for name in names {
            let state: Option<String> = q.query_row([name], |r| r.get(0)).optional()?;
            if state.as_deref() == Some("ALARM") {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// Records hosts as in or out of service for their group.
    pub fn set_in_service(
        &self,
        d: &Deployment,
        hosts: &[String],
        in_service: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for host in hosts {
            tx.execute(
                "INSERT INTO traffic (application, group_name, host, in_service, deployment_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (application, group_name, host) DO UPDATE SET in_service = excluded.in_service, deployment_id = excluded.deployment_id",
                params![d.application_name, d.group.deployment_group_name, host, in_service, d.deployment_id.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Each host of the group the traffic registry knows, and whether it is in service.
    pub fn traffic(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT host, in_service FROM traffic WHERE application = ?1 AND group_name = ?2 ORDER BY host",
        )?;
        let rows = q
            .query_map([application, group], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    // ----- the step queue and its drivers ------------------------------------------------

    /// Queues steps on their own (a user's stop, for example).
    pub fn enqueue(&self, steps: &[Step]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        enqueue(&tx, steps)?;
        tx.commit()?;
        self.queued.notify_one();
        Ok(())
    }

    /// Claims the oldest unclaimed step that is due, of a deployment this process drives.
    pub fn claim_step(&self) -> Result<Option<ClaimedStep>, StoreError> {
        let conn = self.conn();
        let me = self.me.to_string();
        let now = SystemClock.now().as_millis();
        // A read first: the driver loop asks often, and most times there is nothing to claim,
        // which must not take the database's write lock from other processes.
        let row: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT s.seq, s.body FROM steps s JOIN deployments d ON d.id = s.deployment_id
                 WHERE s.claimed_by IS NULL AND d.driver = ?1 AND s.due <= ?2
                 ORDER BY s.seq LIMIT 1",
            )?
            .query_row(params![&me, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((seq, body)) = row else {
            return Ok(None);
        };
        // Only this process claims the steps of deployments it drives, so the step is still
        // unclaimed; the condition only guards against a step that was removed meanwhile.
        let claimed = conn.execute(
            "UPDATE steps SET claimed_by = ?2 WHERE seq = ?1 AND claimed_by IS NULL",
            params![seq, me],
        )?;
        if claimed == 0 {
            return Ok(None);
        }
        Ok(Some(ClaimedStep {
            seq,
            step: serde_json::from_str(&body)?,
        }))
    }

    /// The step is done: it leaves the queue.
    pub fn ack(&self, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM steps WHERE seq = ?1", [seq])?;
        Ok(())
    }

    /// The step could not be done now; it goes back to the queue for another try.
    pub fn unclaim(&self, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE steps SET claimed_by = NULL WHERE seq = ?1", [seq])?;
        Ok(())
    }

    /// Steps still queued for deployments this process drives, claimed or not.
    pub fn my_steps(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM steps s JOIN deployments d ON d.id = s.deployment_id WHERE d.driver = ?1",
            [self.me.to_string()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Steps queued for one deployment, claimed or not.
    pub fn steps_of(&self, id: &DeploymentId) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM steps WHERE deployment_id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Unfinished deployments that this process drives.
    pub fn driven(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT id FROM deployments WHERE finished = 0 AND driver = ?1 ORDER BY seq",
        )?;
        let ids: Vec<String> = q
            .query_map([self.me.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| parse_id(id)).collect()
    }

    /// Takes over deployments whose driver is gone (killed, or crashed) and that still have
    /// work: unfinished ones, and finished ones with steps left. Their claimed steps go back to
    /// the queue. Returns the deployments taken over.
    pub fn adopt_orphans(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let me = self.me.to_string();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates: Vec<(String, Option<String>)> = {
            let mut q = tx.prepare(
                "SELECT id, driver FROM deployments
                 WHERE (driver IS NULL OR driver != ?1)
                   AND (finished = 0 OR id IN (SELECT deployment_id FROM steps))
                 ORDER BY seq",
            )?;
            q.query_map([&me], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut adopted = Vec::new();
        for (id, driver) in candidates {
            let alive = driver
                .as_deref()
                .and_then(ProcessId::parse)
                .is_some_and(|p| p.is_alive());
            if alive {
                continue;
            }
            tx.execute(
                "UPDATE deployments SET driver = ?2 WHERE id = ?1",
                params![id, me],
            )?;
            tx.execute(
                "UPDATE steps SET claimed_by = NULL WHERE deployment_id = ?1",
                [&id],
            )?;
            adopted.push(parse_id(&id)?);
        }
        tx.commit()?;
        if !adopted.is_empty() {
            self.queued.notify_one();
        }
        Ok(adopted)
    }
}

/// True when another connection holds the lock that `e` needed: trying again later may work.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as the last complete statement left it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn parse_id(id: &str) -> Result<DeploymentId, StoreError> {
    Ok(serde_json::from_value(serde_json::Value::String(
        id.to_owned(),
    ))?)
}

fn read_deployment(conn: &Connection, id: &DeploymentId) -> Result<Option<Deployment>, StoreError> {
    let meta: Option<String> = conn
        .query_row(
            "SELECT meta FROM deployments WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(meta) = meta else {
        return Ok(None);
    };
    let mut d: Deployment = serde_json::from_str(&meta)?;
    let mut q =
        conn.prepare_cached("SELECT body FROM targets WHERE deployment_id = ?1 ORDER BY position")?;
    let bodies = q.query_map([id.as_str()], |r| r.get::<_, String>(0))?;
    for body in bodies {
        let t: Target = serde_json::from_str(&body?)?;
        d.targets.push(t.into());
    }
    Ok(Some(d))
}

/// Brings a database of an older layout to [`SCHEMA_VERSION`], in one transaction that other
/// processes opening it at the same time wait for.
fn upgrade(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerLayout {
            path: path.to_owned(),
            found,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let upgraded = (|| {
        // Layouts before 2 had no due time for steps: every step was due at once.
        let has_due: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('steps') WHERE name = 'due'",
            [],
            |r| r.get(0),
        )?;
        if has_due == 0 {
            conn.execute_batch("ALTER TABLE steps ADD COLUMN due INTEGER NOT NULL DEFAULT 0")?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok::<(), rusqlite::Error>(())
    })();
    match upgraded {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

fn enqueue(conn: &Connection, steps: &[Step]) -> Result<(), StoreError> {
    let mut q =
        conn.prepare_cached("INSERT INTO steps (deployment_id, body, due) VALUES (?1, ?2, ?3)")?;
    for step in steps {
        q.execute(params![
            step.deployment_id.as_str(),
            serde_json::to_string(step)?,
            step.not_before.map_or(0, |t| t.as_millis()),
        ])?;
    }
    Ok(())
}

fn read_group_queue(conn: &Connection, d: &Deployment) -> Result<GroupQueue, StoreError> {
    let lock: Option<String> = conn
        .query_row(
            "SELECT lock FROM groups WHERE application = ?1 AND name = ?2",
            [&d.application_name, &d.group.deployment_group_name],
            |r| r.get(0),
        )
        .optional()?;
    match lock {
        Some(lock) => Ok(serde_json::from_str(&lock)?),
        None => {
            conn.execute(
                "INSERT INTO groups (application, name, info) VALUES (?1, ?2, ?3)",
                params![
                    d.application_name,
                    d.group.deployment_group_name,
                    serde_json::to_string(&d.group)?
                ],
            )?;
            Ok(GroupQueue::default())
        }
    }
}

fn write_group_queue(
    conn: &Connection,
    d: &Deployment,
    queue: &GroupQueue,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE groups SET lock = ?3 WHERE application = ?1 AND name = ?2",
        params![
            d.application_name,
            d.group.deployment_group_name,
            serde_json::to_string(queue)?
        ],
    )?;
    Ok(())
}
