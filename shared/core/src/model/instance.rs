//! On-premises instances: hosts registered by name with the IAM identity their agent uses, and
//! the tags that deployment groups select them by.

use serde::{Deserialize, Serialize};

use super::{DeploymentGroupInfo, matches_any, wire_enum};
use crate::time::Timestamp;

/// One tag, in CodeDeploy's field names (`Key`, `Value`): of an on-premises instance, or of an
/// application or deployment group. Both may be left out on the wire; the operations refuse a
/// tag without a key with their own exceptions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

wire_enum! {
    /// Whether an on-premises instance is registered, as ListOnPremisesInstances filters them.
    pub enum RegistrationStatus as "registration status" {
        Registered = "Registered",
        Deregistered = "Deregistered",
    }
}

/// CodeDeploy's `instanceInfo`: an on-premises instance. A deregistered instance is kept, with
/// its `deregisterTime`, until its name is registered again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub instance_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_session_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_user_arn: Option<String>,
    pub instance_arn: String,
    pub register_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregister_time: Option<Timestamp>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl InstanceInfo {
    pub fn registration_status(&self) -> RegistrationStatus {
        match self.deregister_time {
            None => RegistrationStatus::Registered,
            Some(_) => RegistrationStatus::Deregistered,
        }
    }

    pub fn is_registered(&self) -> bool {
        self.registration_status() == RegistrationStatus::Registered
    }

    /// The IAM session or user ARN the instance was registered with.
    pub fn iam_arn(&self) -> Option<&str> {
        self.iam_session_arn
            .as_deref()
            .or(self.iam_user_arn.as_deref())
    }

    /// The tags as (key, value) pairs, the form tag filters match.
    pub fn tag_pairs(&self) -> Vec<(String, String)> {
        self.tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect()
    }

    /// Whether the instance is one `group` deploys to: registered, and matched by the group's
    /// `onPremisesInstanceTagFilters` (any filter) or `onPremisesTagSet` (a filter of every
    /// group of the set), as CodeDeploy matches them.
    pub fn is_selected_by(&self, group: &DeploymentGroupInfo) -> bool {
        if !self.is_registered() {
            return false;
        }
        let tags = self.tag_pairs();
        matches_any(&group.on_premises_instance_tag_filters, &tags)
            || group
                .on_premises_tag_set
                .as_ref()
                .is_some_and(|s| s.on_premises_tag_set_list.matches(&tags))
    }
}

impl DeploymentGroupInfo {
    /// Whether the group names on-premises instances by their tags.
    pub fn selects_on_premises_instances(&self) -> bool {
        !self.on_premises_instance_tag_filters.is_empty()
            || self
                .on_premises_tag_set
                .as_ref()
                .is_some_and(|s| !s.on_premises_tag_set_list.0.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OnPremisesTagSet, TagFilter, TagFilterType, TagSet};

    fn instance(tags: &[(&str, &str)]) -> InstanceInfo {
        InstanceInfo {
            instance_name: "rack-1".into(),
            iam_session_arn: None,
            iam_user_arn: Some("arn:aws:iam::123456789012:user/deployer".into()),
            instance_arn: "arn:aws:codedeploy:us-east-1:123456789012:instance/rack-1".into(),
            register_time: Timestamp::from_millis(1_700_000_000_250),
            deregister_time: None,
            tags: tags
                .iter()
                .map(|(k, v)| Tag {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    fn filter(key: &str, value: &str, filter_type: TagFilterType) -> TagFilter {
        TagFilter {
            key: Some(key.into()),
            value: Some(value.into()),
            filter_type,
        }
    }

    #[test]
    fn instance_info_has_codedeploys_shape() {
        let mut i = instance(&[("Env", "prod")]);
        i.deregister_time = Some(Timestamp::from_secs(1_700_000_100));
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "instanceName": "rack-1",
                "iamUserArn": "arn:aws:iam::123456789012:user/deployer",
                "instanceArn": "arn:aws:codedeploy:us-east-1:123456789012:instance/rack-1",
                "registerTime": 1_700_000_000.25,
                "deregisterTime": 1_700_000_100.0,
                "tags": [{"Key": "Env", "Value": "prod"}],
            })
        );
        assert_eq!(serde_json::from_value::<InstanceInfo>(json).unwrap(), i);
        assert_eq!(i.registration_status(), RegistrationStatus::Deregistered);
        assert_eq!(i.iam_arn(), Some("arn:aws:iam::123456789012:user/deployer"));
    }

    #[test]
    fn groups_select_registered_instances_as_codedeploy_matches_tags() {
        let web = instance(&[("Role", "web"), ("Env", "prod")]);
        let db = instance(&[("Role", "db"), ("Env", "prod")]);
        let mut group = DeploymentGroupInfo::default();
        assert!(!group.selects_on_premises_instances());
        assert!(!web.is_selected_by(&group));

        // Any filter of a plain list.
        group.on_premises_instance_tag_filters = vec![
            filter("Role", "web", TagFilterType::KeyAndValue),
            filter("", "staging", TagFilterType::ValueOnly),
        ];
        assert!(group.selects_on_premises_instances());
        assert!(web.is_selected_by(&group));
        assert!(!db.is_selected_by(&group));

        // A filter of every group of a tag set.
        group.on_premises_instance_tag_filters.clear();
        group.on_premises_tag_set = Some(OnPremisesTagSet {
            on_premises_tag_set_list: TagSet(vec![
                vec![filter("Env", "", TagFilterType::KeyOnly)],
                vec![
                    filter("Role", "db", TagFilterType::KeyAndValue),
                    filter("", "cache", TagFilterType::ValueOnly),
                ],
            ]),
        });
        assert!(!web.is_selected_by(&group));
        assert!(db.is_selected_by(&group));

        // Never a deregistered one.
        let mut gone = db.clone();
        gone.deregister_time = Some(Timestamp::from_secs(1));
        assert!(!gone.is_selected_by(&group));
    }
}
