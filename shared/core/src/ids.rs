//! Identifiers. Deployment ids look like CodeDeploy's (`d-` and nine of `[A-Z0-9]`), so scripts
//! that parse them keep working.
//!
//! The core has no randomness: a new id is made from entropy the caller supplies, and a
//! rollback's id is derived from the deployment it rolls back, so that handling the same
//! failure twice names the same rollback.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

const ID_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ID_LEN: usize = 9;

/// A deployment id: `d-` followed by 9 characters from `[A-Z0-9]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeploymentId(String);

/// The text is not a deployment id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a deployment id (expected d- followed by 9 characters from A-Z and 0-9, like d-A1B2C3D4E)"
)]
pub struct InvalidDeploymentId(pub String);

impl DeploymentId {
    /// An id made from 64 bits of caller-supplied entropy.
    pub fn from_entropy(mut entropy: u64) -> Self {
        let mut id = String::with_capacity(2 + ID_LEN);
        id.push_str("d-");
        for _ in 0..ID_LEN {
            id.push(ID_ALPHABET[(entropy % 36) as usize] as char);
            entropy /= 36;
        }
        DeploymentId(id)
    }

    /// A stable id derived from this one for `purpose`; the same inputs always give the same id.
    pub fn derive(&self, purpose: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(self.0.as_bytes())
            .chain_update(b"/")
            .chain_update(purpose.as_bytes())
            .finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        Self::from_entropy(u64::from_le_bytes(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeploymentId {
    type Err = InvalidDeploymentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == 2 + ID_LEN
            && s.starts_with("d-")
            && s[2..].bytes().all(|b| ID_ALPHABET.contains(&b));
        if valid {
            Ok(DeploymentId(s.to_owned()))
        } else {
            Err(InvalidDeploymentId(s.to_owned()))
        }
    }
}

impl<'de> Deserialize<'de> for DeploymentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a deployment deploys to: an EC2 instance id, an on-premises instance name, a local
/// host's name, or a Lambda function or ECS service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetId(String);

impl TargetId {
    pub fn new(id: impl Into<String>) -> Self {
        TargetId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TargetId {
    fn from(s: &str) -> Self {
        TargetId(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_codedeploys_shape() {
        for entropy in [0, 1, 35, 36, u64::MAX, 0xDEAD_BEEF] {
            let id = DeploymentId::from_entropy(entropy);
            assert_eq!(id.as_str().parse::<DeploymentId>().unwrap(), id);
            assert_eq!(id.as_str().len(), 11);
        }
        assert_eq!(DeploymentId::from_entropy(0).as_str(), "d-000000000");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "d-",
            "d-ABC",
            "d-abcdefghi",
            "x-ABCDEFGHI",
            "d-ABCDEFGHIJ",
            "d-ABCD-FGHI",
        ] {
            let err = bad.parse::<DeploymentId>().unwrap_err();
            assert!(err.to_string().contains("d-A1B2C3D4E"), "{err}");
        }
        assert!(serde_json::from_str::<DeploymentId>("\"d-abc\"").is_err());
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let id: DeploymentId = "d-ABCDEFGHI".parse().unwrap();
        assert_eq!(id.derive("rollback"), id.derive("rollback"));
        assert_ne!(id.derive("rollback"), id);
        assert_ne!(id.derive("rollback"), id.derive("other"));
        let other: DeploymentId = "d-ABCDEFGHJ".parse().unwrap();
        assert_ne!(id.derive("rollback"), other.derive("rollback"));
    }
}
