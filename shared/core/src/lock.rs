//! One active deployment per deployment group; the others wait in the order they arrived.
//!
//! CodeDeploy refuses a second deployment while one is active; cutover queues it instead. This
//! is the pure bookkeeping of that queue: the store keeps one `GroupQueue` per group (next to
//! the group, written conditionally like everything else) and applies these operations to it.
//! Both operations are idempotent, because the commands that call them may be delivered twice.

use serde::{Deserialize, Serialize};

use crate::ids::DeploymentId;

/// The holder of a group's lock and the deployments waiting for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupQueue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<DeploymentId>,
    #[serde(default)]
    pub waiting: Vec<DeploymentId>,
}

/// What `acquire` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockDecision {
    /// The deployment holds the lock.
    Acquired,
    /// The deployment waits behind `active`, at `position` (1 = next).
    Queued {
        active: DeploymentId,
        position: usize,
    },
}

impl GroupQueue {
    /// Takes the lock for `id` if the group is free; otherwise queues `id` once.
    pub fn acquire(&mut self, id: &DeploymentId) -> LockDecision {
        match &self.active {
            None => {
                self.waiting.retain(|w| w != id);
                self.active = Some(id.clone());
                LockDecision::Acquired
            }
            Some(active) if active == id => LockDecision::Acquired,
            Some(active) => {
                let position = match self.waiting.iter().position(|w| w == id) {
                    Some(i) => i + 1,
                    None => {
                        self.waiting.push(id.clone());
                        self.waiting.len()
                    }
                };
                LockDecision::Queued {
                    active: active.clone(),
                    position,
                }
            }
        }
    }

    /// Releases the lock held by `id` (or takes `id` out of the queue) and returns the
    /// deployment that now holds the lock and must be told so: `hand_to` when given (a
    /// rollback goes before everything queued), else the first one waiting.
    pub fn release(
        &mut self,
        id: &DeploymentId,
        hand_to: Option<&DeploymentId>,
    ) -> Option<DeploymentId> {
        if self.active.as_ref() != Some(id) {
            self.waiting.retain(|w| w != id);
            return None;
        }
        let next = match hand_to {
            Some(h) => {
                self.waiting.retain(|w| w != h);
                Some(h.clone())
            }
            None if self.waiting.is_empty() => None,
            None => Some(self.waiting.remove(0)),
        };
        self.active = next.clone();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> DeploymentId {
        DeploymentId::from_entropy(n)
    }

    #[test]
    fn the_first_deployment_runs_and_the_rest_queue_in_order() {
        let mut q = GroupQueue::default();
        assert_eq!(q.acquire(&id(1)), LockDecision::Acquired);
        assert_eq!(
            q.acquire(&id(2)),
            LockDecision::Queued {
                active: id(1),
                position: 1
            }
        );
        assert_eq!(
            q.acquire(&id(3)),
            LockDecision::Queued {
                active: id(1),
                position: 2
            }
        );
        assert_eq!(q.release(&id(1), None), Some(id(2)));
        assert_eq!(q.release(&id(2), None), Some(id(3)));
        assert_eq!(q.release(&id(3), None), None);
        assert_eq!(q, GroupQueue::default());
    }

    #[test]
    fn acquire_and_release_are_idempotent() {
        let mut q = GroupQueue::default();
        q.acquire(&id(1));
        assert_eq!(q.acquire(&id(1)), LockDecision::Acquired);
        q.acquire(&id(2));
        assert_eq!(
            q.acquire(&id(2)),
            LockDecision::Queued {
                active: id(1),
                position: 1
            }
        );
        assert_eq!(q.waiting, [id(2)]);
        assert_eq!(q.release(&id(1), None), Some(id(2)));
        // A second release by the old holder changes nothing.
        assert_eq!(q.release(&id(1), None), None);
        assert_eq!(q.active, Some(id(2)));
    }

    #[test]
    fn a_rollback_takes_the_lock_before_the_queue() {
        let mut q = GroupQueue::default();
        q.acquire(&id(1));
        q.acquire(&id(2));
        assert_eq!(q.release(&id(1), Some(&id(9))), Some(id(9)));
        assert_eq!(q.acquire(&id(9)), LockDecision::Acquired);
        assert_eq!(q.release(&id(9), None), Some(id(2)));
    }

    #[test]
    fn a_queued_deployment_that_stops_leaves_the_queue() {
        let mut q = GroupQueue::default();
        q.acquire(&id(1));
        q.acquire(&id(2));
        q.acquire(&id(3));
        assert_eq!(q.release(&id(2), None), None);
        assert_eq!(q.waiting, [id(3)]);
        assert_eq!(q.active, Some(id(1)));
    }
}
