//! The replacement fleets of local blue/green deployments: new simulated hosts named
//! `<group>-green-<i>`, each a folder under the state directory, made part of the group when
//! traffic has moved to them, and removed again when the deployment does not succeed.

use std::path::{Path, PathBuf};

use cutover_core::TargetId;
use cutover_core::machine::Deployment;
use cutover_core::model::{ErrorCode, ErrorInformation, GreenFleetProvisioningAction};
use cutover_engine::{PortError, Provisioning, Replacements};
use rusqlite::{OptionalExtension, params};

use crate::store::{LocalHost, LocalStore, StoreError};

/// The most replacement hosts one deployment provisions.
pub const MAX_REPLACEMENTS: u32 = 10_000;

/// Provisions, releases and discards simulated hosts in one state directory.
#[derive(Debug)]
pub struct LocalReplacements {
    store: std::sync::Arc<LocalStore>,
    state_dir: PathBuf,
}

impl LocalReplacements {
    pub fn new(store: std::sync::Arc<LocalStore>, state_dir: &Path) -> Self {
        LocalReplacements {
            store,
            state_dir: state_dir.to_owned(),
        }
    }

    /// Whether `host` is a simulated host whose folder cutover made, under the state directory.
    fn is_simulated(&self, host: &LocalHost) -> bool {
        host.root == LocalHost::named(&self.state_dir, &host.name).root
    }
}

impl Replacements for LocalReplacements {
    async fn provision(&self, d: &Deployment) -> Result<Provisioning, PortError> {
        let discover = d
            .group
            .blue_green_deployment_configuration
            .and_then(|c| c.green_fleet_provisioning_option)
            .is_some_and(|o| o.action == GreenFleetProvisioningAction::DiscoverExisting);
        if discover {
            return Ok(Provisioning::Failed(ErrorInformation::new(
                ErrorCode::NoInstances,
                "local hosts have no tags to discover replacements by; use greenFleetProvisioningOption COPY_AUTO_SCALING_GROUP, which makes new simulated hosts",
            )));
        }
        let originals = d.targets.len() as u32;
        let count = d.options.replacement_hosts.unwrap_or(originals);
        if !(1..=MAX_REPLACEMENTS).contains(&count) {
            return Ok(Provisioning::Failed(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!("a replacement fleet has 1 to {MAX_REPLACEMENTS} hosts, not {count}"),
            )));
        }
        let hosts = self
            .store
            .provision_replacements(d, count, &self.state_dir)?;
        for h in &hosts {
            if let Err(e) = std::fs::create_dir_all(&h.root) {
                let message = format!(
                    "cannot make the folder of {}: {}: {e}",
                    h.name,
                    h.root.display()
                );
                self.discard(d, &[]).await?;
                return Ok(Provisioning::Failed(ErrorInformation::new(
                    ErrorCode::ResourceLimitExceeded,
                    message,
                )));
            }
        }
        Ok(Provisioning::Ready(
            hosts.into_iter().map(|h| TargetId::new(h.name)).collect(),
        ))
    }

    async fn release(
        &self,
        d: &Deployment,
        originals: &[TargetId],
        terminate: bool,
    ) -> Result<(), PortError> {
        let released = self.store.release_originals(d, originals, terminate)?;
        if terminate {
            for host in released.iter().filter(|h| self.is_simulated(h)) {
                remove_folder(&host.root)?;
            }
        }
        Ok(())
    }

    async fn discard(&self, d: &Deployment, _replacements: &[TargetId]) -> Result<(), PortError> {
        for host in self.store.discard_replacements(d)? {
            remove_folder(&host.root)?;
        }
        self.store.forget_replacements(d)?;
        Ok(())
    }
}

fn remove_folder(root: &Path) -> Result<(), PortError> {
    match std::fs::remove_dir_all(root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PortError::permanent(format!(
            "cannot remove {}: {e}",
            root.display()
        ))),
    }
}

impl LocalStore {
    /// The replacement hosts of `d`: those already provisioned for it, or `count` new ones,
    /// named `<group>-green-<i>` after the highest such name the group or the state directory
    /// has seen, and made hosts of the group (out of service until traffic moves to them).
    pub fn provision_replacements(
        &self,
        d: &Deployment,
        count: u32,
        state_dir: &Path,
    ) -> Result<Vec<LocalHost>, StoreError> {
        let (app, group) = (&d.application_name, &d.group.deployment_group_name);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let made = replacements_of(&tx, d)?;
        if !made.is_empty() {
            return Ok(made);
        }
        let prefix = format!("{group}-green-");
        let number = |name: &str| {
            name.strip_prefix(&prefix)
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut highest = 0;
        {
            let mut q = tx.prepare("SELECT name FROM hosts WHERE application = ?1 AND group_name = ?2 UNION SELECT name FROM replacements")?;
            let names = q.query_map([app, group], |r| r.get::<_, String>(0))?;
            for name in names {
                highest = highest.max(number(&name?).unwrap_or(0));
            }
        }
        if let Ok(dirs) = std::fs::read_dir(state_dir.join("hosts")) {
            for entry in dirs.flatten() {
                highest = highest.max(number(&entry.file_name().to_string_lossy()).unwrap_or(0));
            }
        }
        let position: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM hosts WHERE application = ?1 AND group_name = ?2",
            [app, group],
            |r| r.get(0),
        )?;
        let mut hosts = Vec::with_capacity(count as usize);
        for i in 0..u64::from(count) {
            let host = LocalHost::named(state_dir, &format!("{prefix}{}", highest + 1 + i));
            let root = host.root.to_string_lossy();
            tx.execute(
                "INSERT INTO replacements (deployment_id, name, root) VALUES (?1, ?2, ?3)",
                params![d.deployment_id.as_str(), host.name, root],
            )?;
            tx.execute(
                "INSERT INTO hosts (application, group_name, position, name, root) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![app, group, position + i as i64, host.name, root],
            )?;
            hosts.push(host);
        }
        tx.commit()?;
        Ok(hosts)
    }

    /// Takes `originals` out of `d`'s group, and off the traffic registry if they are
    /// terminated; the replacements become ordinary hosts of the group. Returns the originals
    /// that were hosts of the group.
    pub fn release_originals(
        &self,
        d: &Deployment,
        originals: &[TargetId],
        terminate: bool,
    ) -> Result<Vec<LocalHost>, StoreError> {
        let (app, group) = (&d.application_name, &d.group.deployment_group_name);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut released = Vec::new();
        for name in originals {
            let root: Option<String> = tx
                .query_row(
                    "SELECT root FROM hosts WHERE application = ?1 AND group_name = ?2 AND name = ?3",
                    [app, group, name.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "DELETE FROM hosts WHERE application = ?1 AND group_name = ?2 AND name = ?3",
                [app, group, name.as_str()],
            )?;
            if terminate {
                tx.execute(
                    "DELETE FROM traffic WHERE application = ?1 AND group_name = ?2 AND host = ?3",
                    [app, group, name.as_str()],
                )?;
            }
            if let Some(root) = root {
                released.push(LocalHost {
                    name: name.to_string(),
                    root: PathBuf::from(root),
                });
            }
        }
        tx.execute(
            "DELETE FROM replacements WHERE deployment_id = ?1",
            [d.deployment_id.as_str()],
        )?;
        tx.commit()?;
        Ok(released)
    }

    /// Takes the replacements provisioned for `d` out of its group and off the traffic
    /// registry, and returns them; they stay on record until [`LocalStore::forget_replacements`]
    /// once their folders are gone.
    pub fn discard_replacements(&self, d: &Deployment) -> Result<Vec<LocalHost>, StoreError> {
        let (app, group) = (&d.application_name, &d.group.deployment_group_name);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let made = replacements_of(&tx, d)?;
        for host in &made {
            tx.execute(
                "DELETE FROM hosts WHERE application = ?1 AND group_name = ?2 AND name = ?3",
                [app, group, &host.name],
            )?;
            tx.execute(
                "DELETE FROM traffic WHERE application = ?1 AND group_name = ?2 AND host = ?3",
                [app, group, &host.name],
            )?;
        }
        tx.commit()?;
        Ok(made)
    }

    pub fn forget_replacements(&self, d: &Deployment) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM replacements WHERE deployment_id = ?1",
            [d.deployment_id.as_str()],
        )?;
        Ok(())
    }
}

fn replacements_of(
    conn: &rusqlite::Connection,
    d: &Deployment,
) -> Result<Vec<LocalHost>, StoreError> {
    let mut q = conn
        .prepare("SELECT name, root FROM replacements WHERE deployment_id = ?1 ORDER BY rowid")?;
    let hosts = q
        .query_map([d.deployment_id.as_str()], |r| {
            Ok(LocalHost {
                name: r.get(0)?,
                root: PathBuf::from(r.get::<_, String>(1)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(hosts)
}
