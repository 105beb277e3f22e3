//! RegisterOnPremisesInstance, DeregisterOnPremisesInstance, GetOnPremisesInstance,
//! ListOnPremisesInstances, BatchGetOnPremisesInstances, AddTagsToOnPremisesInstances and
//! RemoveTagsFromOnPremisesInstances: hosts outside AWS, registered by name with the IAM
//! identity their agent uses, that deployment groups select by their tags.

use cutover_core::Timestamp;
use cutover_core::model::{
    InstanceInfo, RegistrationStatus, TagFilter, TagFilterType, matches_any,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::tags::{Tag, TagLimits, merged_within};
use super::{MAX_NAME, batch, batch_within, internal, name, page};
use crate::registry::Registry;
use crate::wire::ApiError;

/// The most names one BatchGetOnPremisesInstances takes, as CodeDeploy documents it.
const MAX_BATCH: usize = 25;

/// The most instances one AddTagsToOnPremisesInstances or RemoveTagsFromOnPremisesInstances
/// changes.
const MAX_TAGGED: usize = 10;

/// An on-premises instance carries up to 10 tags, the limit the aws CLI's `deploy register`
/// checks too.
const INSTANCE_TAGS: TagLimits = TagLimits {
    what: "an on-premises instance",
    max: 10,
    invalid: "InvalidTagException",
    too_many: "TagLimitExceededException",
};

/// The characters an instance name may have besides ASCII letters and digits.
const NAME_PUNCTUATION: &str = "+=,.@_-";

/// An instance name that must be given, as CodeDeploy takes them: 1 to 100 ASCII letters, digits
/// and `+=,.@_-`, not starting with `i-` (which EC2 instance IDs start with).
pub fn instance_name(value: Option<&str>) -> Result<&str, ApiError> {
    let value = name(
        value,
        "on-premises instance",
        MAX_NAME,
        "InstanceNameRequiredException",
        "InvalidInstanceNameException",
    )?;
    let invalid = |why: String| {
        ApiError::codedeploy(
            "InvalidInstanceNameException",
            format!("'{value}' is not a valid on-premises instance name: {why}"),
        )
    };
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !NAME_PUNCTUATION.contains(*c))
    {
        return Err(invalid(format!(
            "'{c}' is not allowed; use letters, digits and {NAME_PUNCTUATION}"
        )));
    }
    if value.starts_with("i-") {
        return Err(invalid(
            "names starting with 'i-' are EC2 instance IDs".into(),
        ));
    }
    // Each instance is a folder of its name on a local host.
    if value == "." || value == ".." {
        return Err(invalid("it names a folder's parent or itself".into()));
    }
    Ok(value)
}

fn not_registered(name: &str) -> ApiError {
    ApiError::codedeploy(
        "InstanceNotRegisteredException",
        format!("The on-premises instance {name} is not registered."),
    )
}

fn already_registered(name: &str) -> ApiError {
    ApiError::codedeploy(
        "InstanceNameAlreadyRegisteredException",
        format!(
            "The on-premises instance name {name} is registered already; deregister it first, or choose another name."
        ),
    )
}

/// An instance that was registered, and may have been deregistered since.
async fn known_instance(registry: &impl Registry, name: &str) -> Result<InstanceInfo, ApiError> {
    registry
        .instance(name)
        .await
        .map_err(internal("reading the on-premises instance"))?
        .ok_or_else(|| not_registered(name))
}

/// The partition and account of `arn` if it is `arn:<partition>:<service>::<account>:<resource>`
/// and `resource` passes `check`.
fn iam_arn<'a>(
    arn: &'a str,
    service: &str,
    check: impl Fn(&str) -> bool,
) -> Option<(&'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, svc, region, account, resource] = parts[..] else {
        return None;
    };
    let ok = prefix == "arn"
        && (partition == "aws" || partition.starts_with("aws-"))
        && svc == service
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && check(resource);
    ok.then_some((partition, account))
}

/// One name of an IAM user, role or session: word characters and `+=,.@-`.
fn iam_name(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// `user/NAME` or `user/PATH/NAME`.
fn user_resource(resource: &str) -> bool {
    resource
        .strip_prefix("user/")
        .is_some_and(|rest| rest.split('/').all(iam_name))
}

/// `assumed-role/ROLE/SESSION`.
fn session_resource(resource: &str) -> bool {
    resource
        .strip_prefix("assumed-role/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(role, session)| iam_name(role) && iam_name(session))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterInput {
    instance_name: Option<String>,
    iam_session_arn: Option<String>,
    iam_user_arn: Option<String>,
}

/// RegisterOnPremisesInstance. The instance's ARN is in the partition and account of its IAM
/// identity and in `region`, the region the request was signed for.
pub async fn register(
    registry: &impl Registry,
    input: RegisterInput,
    now: Timestamp,
    region: &str,
) -> Result<Value, ApiError> {
    let name = instance_name(input.instance_name.as_deref())?;
    let session = input.iam_session_arn.filter(|a| !a.is_empty());
    let user = input.iam_user_arn.filter(|a| !a.is_empty());
    let (arn, (partition, account), taken) = match (&session, &user) {
        (None, None) => {
            return Err(ApiError::codedeploy(
                "IamArnRequiredException",
                "Give the ARN of the IAM session (iamSessionArn) or of the IAM user (iamUserArn) that the instance's agent authenticates as.",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::codedeploy(
                "MultipleIamArnsProvidedException",
                "Give either an IAM session ARN (iamSessionArn) or an IAM user ARN (iamUserArn), not both.",
            ));
        }
        (Some(arn), None) => (
            arn,
            iam_arn(arn, "sts", session_resource).ok_or_else(|| {
                ApiError::codedeploy(
                    "InvalidIamSessionArnException",
                    format!(
                        "'{arn}' is not an IAM session ARN: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION"
                    ),
                )
            })?,
            "IamSessionArnAlreadyRegisteredException",
        ),
        (None, Some(arn)) => (
            arn,
            iam_arn(arn, "iam", user_resource).ok_or_else(|| {
                ApiError::codedeploy(
                    "InvalidIamUserArnException",
                    format!("'{arn}' is not an IAM user ARN: arn:aws:iam::ACCOUNT:user/NAME"),
                )
            })?,
            "IamUserArnAlreadyRegisteredException",
        ),
    };
    let registered: Vec<InstanceInfo> = registry
        .instances()
        .await
        .map_err(internal("reading the on-premises instances"))?
        .into_iter()
        .filter(InstanceInfo::is_registered)
        .collect();
    if registered.iter().any(|i| i.instance_name == name) {
        return Err(already_registered(name));
    }
    if let Some(other) = registered
        .iter()
        .find(|i| i.iam_arn() == Some(arn.as_str()))
    {
        return Err(ApiError::codedeploy(
            taken,
            format!(
                "{arn} is registered already, with on-premises instance {}; each instance needs an IAM identity of its own.",
                other.instance_name
            ),
        ));
    }
    let instance_arn = format!("arn:{partition}:codedeploy:{region}:{account}:instance/{name}");
    let instance = InstanceInfo {
        instance_name: name.to_owned(),
        iam_session_arn: session,
        iam_user_arn: user,
        instance_arn,
        register_time: now,
        deregister_time: None,
        tags: Vec::new(),
    };
    let saved = registry
        .register_instance(&instance)
        .await
        .map_err(internal("saving the on-premises instance"))?;
    if !saved {
        return Err(already_registered(name));
    }
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameInput {
    instance_name: Option<String>,
}

/// DeregisterOnPremisesInstance: the instance is kept, with the time it was deregistered, and
/// no deployment selects it any more. Deregistering it again changes nothing.
pub async fn deregister(
    registry: &impl Registry,
    input: NameInput,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let name = instance_name(input.instance_name.as_deref())?;
    let mut instance = known_instance(registry, name).await?;
    if instance.deregister_time.is_none() {
        instance.deregister_time = Some(now);
        let saved = registry
            .update_instance(&instance)
            .await
            .map_err(internal("saving the on-premises instance"))?;
        if !saved {
            return Err(not_registered(name));
        }
    }
    Ok(json!({}))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    instance_info: InstanceInfo,
}

/// GetOnPremisesInstance: a registered or deregistered instance.
pub async fn get(registry: &impl Registry, input: NameInput) -> Result<GetOutput, ApiError> {
    let name = instance_name(input.instance_name.as_deref())?;
    Ok(GetOutput {
        instance_info: known_instance(registry, name).await?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    registration_status: Option<String>,
    /// Read one by one, so that a filter CodeDeploy refuses gets its exception.
    #[serde(default)]
    tag_filters: Vec<Value>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    instance_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn tag_filter(value: Value) -> Result<TagFilter, ApiError> {
    let invalid = |why: String| ApiError::codedeploy("InvalidTagFilterException", why);
    let filter: TagFilter = serde_json::from_value(value.clone())
        .map_err(|e| invalid(format!("tag filter {value}: {e}")))?;
    let key = filter.key.as_deref().unwrap_or_default();
    let needs_key = filter.filter_type != TagFilterType::ValueOnly;
    let needs_value = filter.filter_type != TagFilterType::KeyOnly;
    if (needs_key && key.is_empty()) || (needs_value && filter.value.is_none()) {
        return Err(invalid(format!(
            "tag filter {value}: a {} filter needs {}",
            filter.filter_type,
            match filter.filter_type {
                TagFilterType::KeyOnly => "a Key",
                TagFilterType::ValueOnly => "a Value",
                TagFilterType::KeyAndValue => "a Key and a Value",
            }
        )));
    }
    Ok(filter)
}

/// ListOnPremisesInstances: the names of the instances, registered and deregistered unless
/// `registrationStatus` says which, that match any of `tagFilters`, in name order.
pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let status = input
        .registration_status
        .as_deref()
        .map(|s| {
            s.parse::<RegistrationStatus>().map_err(|e| {
                ApiError::codedeploy("InvalidRegistrationStatusException", e.to_string())
            })
        })
        .transpose()?;
    let filters = input
        .tag_filters
        .into_iter()
        .map(tag_filter)
        .collect::<Result<Vec<_>, _>>()?;
    let names = registry
        .instances()
        .await
        .map_err(internal("listing the on-premises instances"))?
        .into_iter()
        .filter(|i| status.is_none_or(|s| i.registration_status() == s))
        .filter(|i| filters.is_empty() || matches_any(&filters, &i.tag_pairs()))
        .map(|i| i.instance_name)
        .collect();
    let (instance_names, next_token) = page(names, input.next_token.as_deref())?;
    Ok(ListOutput {
        instance_names,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInput {
    instance_names: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetOutput {
    instance_infos: Vec<InstanceInfo>,
}

/// BatchGetOnPremisesInstances: the instances found among those named; unknown names are left
/// out, as CodeDeploy does.
pub async fn batch_get(
    registry: &impl Registry,
    input: BatchGetInput,
) -> Result<BatchGetOutput, ApiError> {
    let names = batch(
        input.instance_names,
        "on-premises instance names",
        MAX_BATCH,
        "InstanceNameRequiredException",
    )?;
    let mut instance_infos = Vec::with_capacity(names.len());
    for n in &names {
        let n = instance_name(Some(n))?;
        if let Some(i) = registry
            .instance(n)
            .await
            .map_err(internal("reading the on-premises instance"))?
        {
            instance_infos.push(i);
        }
    }
    Ok(BatchGetOutput { instance_infos })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagsInput {
    tags: Option<Vec<Tag>>,
    instance_names: Option<Vec<String>>,
}

/// The registered instances and the tags that a tagging operation names, checked before any of
/// them changes.
async fn tagging(
    registry: &impl Registry,
    input: TagsInput,
) -> Result<(Vec<InstanceInfo>, Vec<Tag>), ApiError> {
    let names = batch_within(
        input.instance_names,
        "on-premises instance names",
        MAX_TAGGED,
        "InstanceNameRequiredException",
        "InstanceLimitExceededException",
    )?;
    let tags = input.tags.unwrap_or_default();
    if tags.is_empty() {
        return Err(ApiError::codedeploy(
            "TagRequiredException",
            "The tags must be specified.",
        ));
    }
    if tags.len() > INSTANCE_TAGS.max {
        return Err(ApiError::codedeploy(
            INSTANCE_TAGS.too_many,
            format!(
                "{} tags were given; {} carries at most {}.",
                tags.len(),
                INSTANCE_TAGS.what,
                INSTANCE_TAGS.max
            ),
        ));
    }
    // Each tag's key and value, checked as if the tags were added to an untagged instance.
    merged_within(&INSTANCE_TAGS, Vec::new(), tags.clone())?;
    let mut instances = Vec::with_capacity(names.len());
    for n in &names {
        let n = instance_name(Some(n))?;
        let instance = registry
            .instance(n)
            .await
            .map_err(internal("reading the on-premises instance"))?
            .filter(InstanceInfo::is_registered)
            .ok_or_else(|| not_registered(n))?;
        instances.push(instance);
    }
    Ok((instances, tags))
}

async fn save_all(registry: &impl Registry, instances: &[InstanceInfo]) -> Result<(), ApiError> {
    for i in instances {
        let saved = registry
            .update_instance(i)
            .await
            .map_err(internal("saving the on-premises instance's tags"))?;
        if !saved {
            return Err(not_registered(&i.instance_name));
        }
    }
    Ok(())
}

/// AddTagsToOnPremisesInstances: a tag given again changes its value.
pub async fn add_tags(registry: &impl Registry, input: TagsInput) -> Result<Value, ApiError> {
    let (mut instances, tags) = tagging(registry, input).await?;
    for i in &mut instances {
        i.tags = merged_within(&INSTANCE_TAGS, std::mem::take(&mut i.tags), tags.clone()).map_err(
            |e| ApiError {
                message: format!("{}: {}", i.instance_name, e.message),
                ..e
            },
        )?;
    }
    save_all(registry, &instances).await?;
    Ok(json!({}))
}

/// RemoveTagsFromOnPremisesInstances: a tag given with a value removes the instance's tag of
/// that key if it has that value; one given without a value removes the key, whatever its value.
pub async fn remove_tags(registry: &impl Registry, input: TagsInput) -> Result<Value, ApiError> {
    let (mut instances, tags) = tagging(registry, input).await?;
    for i in &mut instances {
        i.tags.retain(|t| {
            !tags
                .iter()
                .any(|r| r.key == t.key && (r.value.is_empty() || r.value == t.value))
        });
    }
    save_all(registry, &instances).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryRegistry;

    const USER: &str = "arn:aws:iam::123456789012:user/deployers/rack-1";
    const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/OnPrem/rack-2";
    const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn input<T: serde::de::DeserializeOwned>(json: Value) -> T {
        serde_json::from_value(json).unwrap()
    }

    async fn register_as(r: &MemoryRegistry, name: &str, arns: Value) -> Result<Value, ApiError> {
        let mut body = arns;
        body["instanceName"] = json!(name);
        register(r, input(body), NOW, "eu-west-1").await
    }

    fn kind(e: ApiError) -> &'static str {
        e.kind.name()
    }

    async fn get_one(r: &MemoryRegistry, name: &str) -> Result<Value, ApiError> {
        let out = get(r, input(json!({ "instanceName": name }))).await?;
        Ok(serde_json::to_value(out).unwrap()["instanceInfo"].clone())
    }

    async fn names(r: &MemoryRegistry, body: Value) -> Result<Vec<String>, ApiError> {
        Ok(list(r, input(body)).await?.instance_names)
    }

    async fn tag(r: &MemoryRegistry, names: &[&str], tags: Value) -> Result<Value, ApiError> {
        add_tags(r, input(json!({ "instanceNames": names, "tags": tags }))).await
    }

    #[tokio::test]
    async fn instances_register_with_one_iam_identity_and_an_arn_in_its_account() {
        let r = MemoryRegistry::default();
        register_as(&r, "rack-1", json!({ "iamUserArn": USER }))
            .await
            .unwrap();
        register_as(&r, "rack-2", json!({ "iamSessionArn": SESSION }))
            .await
            .unwrap();
        let info = get_one(&r, "rack-1").await.unwrap();
        assert_eq!(
            info,
            json!({
                "instanceName": "rack-1",
                "iamUserArn": USER,
                "instanceArn": "arn:aws:codedeploy:eu-west-1:123456789012:instance/rack-1",
                "registerTime": 1_700_000_000.0,
                "tags": [],
            })
        );
        assert_eq!(
            get_one(&r, "rack-2").await.unwrap()["iamSessionArn"],
            SESSION
        );

        let refused = [
            (
                "rack-1",
                json!({ "iamUserArn": "arn:aws:iam::123456789012:user/other" }),
                "InstanceNameAlreadyRegisteredException",
            ),
            ("rack-3", json!({}), "IamArnRequiredException"),
            (
                "rack-3",
                json!({ "iamUserArn": "" }),
                "IamArnRequiredException",
            ),
            (
                "rack-3",
                json!({ "iamUserArn": USER, "iamSessionArn": SESSION }),
                "MultipleIamArnsProvidedException",
            ),
            (
                "rack-3",
                json!({ "iamUserArn": USER }),
                "IamUserArnAlreadyRegisteredException",
            ),
            (
                "rack-3",
                json!({ "iamSessionArn": SESSION }),
                "IamSessionArnAlreadyRegisteredException",
            ),
            (
                "rack-3",
                json!({ "iamUserArn": SESSION }),
                "InvalidIamUserArnException",
            ),
            (
                "rack-3",
                json!({ "iamUserArn": "arn:aws:iam::1234:user/x" }),
                "InvalidIamUserArnException",
            ),
            (
                "rack-3",
                json!({ "iamUserArn": "arn:aws:iam::123456789012:role/x" }),
                "InvalidIamUserArnException",
            ),
            (
                "rack-3",
                json!({ "iamSessionArn": USER }),
                "InvalidIamSessionArnException",
            ),
            (
                "rack-3",
                json!({ "iamSessionArn": "arn:aws:sts::123456789012:assumed-role/OnPrem" }),
                "InvalidIamSessionArnException",
            ),
            (
                "",
                json!({ "iamUserArn": USER }),
                "InstanceNameRequiredException",
            ),
            (
                "rack 3",
                json!({ "iamUserArn": USER }),
                "InvalidInstanceNameException",
            ),
            (
                "i-0123456789abcdef0",
                json!({ "iamUserArn": USER }),
                "InvalidInstanceNameException",
            ),
            (
                "..",
                json!({ "iamUserArn": USER }),
                "InvalidInstanceNameException",
            ),
            (
                &"r".repeat(101) as &str,
                json!({ "iamUserArn": USER }),
                "InvalidInstanceNameException",
            ),
        ];
        for (name, arns, exception) in refused {
            let e = register_as(&r, name, arns.clone()).await.unwrap_err();
            assert_eq!(kind(e), exception, "{name} {arns}");
        }
        // None of it registered anything.
        assert_eq!(names(&r, json!({})).await.unwrap(), ["rack-1", "rack-2"]);
    }

    #[tokio::test]
    async fn a_deregistered_instance_is_kept_until_its_name_is_registered_again() {
        let r = MemoryRegistry::default();
        register_as(&r, "rack-1", json!({ "iamUserArn": USER }))
            .await
            .unwrap();
        tag(&r, &["rack-1"], json!([{"Key": "Env", "Value": "prod"}]))
            .await
            .unwrap();
        let later = Timestamp::from_secs(1_700_000_060);
        let name = || input::<NameInput>(json!({ "instanceName": "rack-1" }));
        deregister(&r, name(), later).await.unwrap();
        // Again: harmless, and the first time stays.
        deregister(&r, name(), Timestamp::from_secs(1_800_000_000))
            .await
            .unwrap();
        let info = get_one(&r, "rack-1").await.unwrap();
        assert_eq!(info["deregisterTime"], 1_700_000_060.0);
        assert_eq!(info["tags"], json!([{"Key": "Env", "Value": "prod"}]));
        let e = deregister(&r, input(json!({ "instanceName": "rack-9" })), later)
            .await
            .unwrap_err();
        assert_eq!(kind(e), "InstanceNotRegisteredException");
        assert_eq!(
            kind(get_one(&r, "rack-9").await.unwrap_err()),
            "InstanceNotRegisteredException"
        );

        // A deregistered instance takes no tags, and frees its IAM identity and its name.
        let e = tag(&r, &["rack-1"], json!([{"Key": "Role", "Value": "web"}]))
            .await
            .unwrap_err();
        assert_eq!(kind(e), "InstanceNotRegisteredException");
        register_as(&r, "rack-2", json!({ "iamUserArn": USER }))
            .await
            .unwrap();
        register_as(&r, "rack-1", json!({ "iamSessionArn": SESSION }))
            .await
            .unwrap();
        let info = get_one(&r, "rack-1").await.unwrap();
        assert!(info.get("deregisterTime").is_none(), "{info}");
        assert_eq!(info["tags"], json!([]));
    }

    #[tokio::test]
    async fn tags_are_added_and_removed_on_registered_instances_only_all_or_nothing() {
        let r = MemoryRegistry::default();
        register_as(&r, "rack-1", json!({ "iamUserArn": USER }))
            .await
            .unwrap();
        register_as(&r, "rack-2", json!({ "iamSessionArn": SESSION }))
            .await
            .unwrap();
        tag(
            &r,
            &["rack-1", "rack-2"],
            json!([{"Key": "Env", "Value": "prod"}, {"Key": "Role", "Value": "web"}]),
        )
        .await
        .unwrap();
        tag(&r, &["rack-2"], json!([{"Key": "Role", "Value": "db"}]))
            .await
            .unwrap();
        let tags_of = |name: &'static str| {
            let r = &r;
            async move { get_one(r, name).await.unwrap()["tags"].clone() }
        };
        assert_eq!(
            tags_of("rack-2").await,
            json!([{"Key": "Env", "Value": "prod"}, {"Key": "Role", "Value": "db"}])
        );

        let refused = [
            (
                json!([]),
                json!([{"Key": "a", "Value": "b"}]),
                "InstanceNameRequiredException",
            ),
            (json!(["rack-1"]), json!([]), "TagRequiredException"),
            (
                json!(["rack-1"]),
                json!([{"Value": "b"}]),
                "InvalidTagException",
            ),
            (
                json!(["rack-1"]),
                json!([{"Key": "k".repeat(129), "Value": "b"}]),
                "InvalidTagException",
            ),
            (
                json!(["rack-1", "rack-9"]),
                json!([{"Key": "a", "Value": "b"}]),
                "InstanceNotRegisteredException",
            ),
            (
                json!(["rack-1", "bad name"]),
                json!([{"Key": "a", "Value": "b"}]),
                "InvalidInstanceNameException",
            ),
            (
                json!((0..11).map(|i| format!("rack-{i}")).collect::<Vec<_>>()),
                json!([{"Key": "a", "Value": "b"}]),
                "InstanceLimitExceededException",
            ),
            (
                json!(["rack-1"]),
                json!(
                    (0..11)
                        .map(|i| json!({"Key": format!("k{i}"), "Value": ""}))
                        .collect::<Vec<_>>()
                ),
                "TagLimitExceededException",
            ),
            // Two more would be eleven tags on rack-1.
            (
                json!(["rack-1"]),
                json!(
                    (0..9)
                        .map(|i| json!({"Key": format!("k{i}"), "Value": ""}))
                        .collect::<Vec<_>>()
                ),
                "TagLimitExceededException",
            ),
        ];
        for (names, tags, exception) in refused {
            let body = json!({ "instanceNames": names, "tags": tags });
            let e = add_tags(&r, input(body.clone())).await.unwrap_err();
            assert_eq!(kind(e), exception, "add {body}");
            if exception != "TagLimitExceededException" || tags.as_array().unwrap().len() > 10 {
                let e = remove_tags(&r, input(body.clone())).await.unwrap_err();
                assert_eq!(kind(e), exception, "remove {body}");
            }
        }
        // None of it changed a tag.
        assert_eq!(
            tags_of("rack-1").await,
            json!([{"Key": "Env", "Value": "prod"}, {"Key": "Role", "Value": "web"}])
        );

        // A value that differs keeps the tag; no value removes the key.
        remove_tags(
            &r,
            input(json!({
                "instanceNames": ["rack-1", "rack-2"],
                "tags": [{"Key": "Role", "Value": "web"}, {"Key": "Env"}],
            })),
        )
        .await
        .unwrap();
        assert_eq!(tags_of("rack-1").await, json!([]));
        assert_eq!(
            tags_of("rack-2").await,
            json!([{"Key": "Role", "Value": "db"}])
        );
    }

    #[tokio::test]
    async fn lists_filter_by_status_and_tags_and_batches_leave_unknown_names_out() {
        let r = MemoryRegistry::default();
        for (i, name) in ["c", "a", "b"].iter().enumerate() {
            let arn = format!("arn:aws:iam::123456789012:user/{name}");
            register_as(&r, name, json!({ "iamUserArn": arn }))
                .await
                .unwrap();
            let role = ["web", "db", "web"][i];
            tag(&r, &[name], json!([{"Key": "Role", "Value": role}]))
                .await
                .unwrap();
        }
        tag(&r, &["a"], json!([{"Key": "Canary", "Value": ""}]))
            .await
            .unwrap();
        deregister(&r, input(json!({ "instanceName": "b" })), NOW)
            .await
            .unwrap();

        assert_eq!(names(&r, json!({})).await.unwrap(), ["a", "b", "c"]);
        let registered = json!({ "registrationStatus": "Registered" });
        assert_eq!(names(&r, registered).await.unwrap(), ["a", "c"]);
        let deregistered = json!({ "registrationStatus": "Deregistered" });
        assert_eq!(names(&r, deregistered).await.unwrap(), ["b"]);
        let web =
            json!({ "tagFilters": [{"Key": "Role", "Value": "web", "Type": "KEY_AND_VALUE"}] });
        assert_eq!(names(&r, web).await.unwrap(), ["b", "c"]);
        let any = json!({
            "registrationStatus": "Registered",
            "tagFilters": [
                {"Key": "Canary", "Type": "KEY_ONLY"},
                {"Value": "web", "Type": "VALUE_ONLY"},
            ],
        });
        assert_eq!(names(&r, any).await.unwrap(), ["a", "c"]);
        for (body, exception) in [
            (
                json!({ "registrationStatus": "Gone" }),
                "InvalidRegistrationStatusException",
            ),
            (
                json!({ "tagFilters": [{"Key": "Role", "Type": "SOME"}] }),
                "InvalidTagFilterException",
            ),
            (
                json!({ "tagFilters": [{"Value": "web", "Type": "KEY_AND_VALUE"}] }),
                "InvalidTagFilterException",
            ),
            (
                json!({ "tagFilters": [{"Key": "Role", "Type": "VALUE_ONLY"}] }),
                "InvalidTagFilterException",
            ),
            (json!({ "nextToken": "later" }), "InvalidNextTokenException"),
        ] {
            let e = names(&r, body.clone()).await.unwrap_err();
            assert_eq!(kind(e), exception, "{body}");
        }

        let got = batch_get(&r, input(json!({ "instanceNames": ["c", "zz", "b"] })))
            .await
            .unwrap();
        let got: Vec<&str> = got
            .instance_infos
            .iter()
            .map(|i| i.instance_name.as_str())
            .collect();
        assert_eq!(got, ["c", "b"]);
        let too_many: Vec<String> = (0..26).map(|i| format!("n{i}")).collect();
        for (names, exception) in [
            (json!([]), "InstanceNameRequiredException"),
            (json!(too_many), "BatchLimitExceededException"),
            (json!(["a", "no/slash"]), "InvalidInstanceNameException"),
        ] {
            let e = batch_get(&r, input(json!({ "instanceNames": names })))
                .await
                .unwrap_err();
            assert_eq!(kind(e), exception, "{names}");
        }
    }
}
