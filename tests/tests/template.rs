//! Structural checks of `template.yaml` that cfn-lint cannot make: the SSM document is the one in
//! `infra/ssm/`, every function gets the contract's environment, every step queue has a
//! dead-letter queue and feeds its function, and no IAM statement allows a wildcard action.

use std::collections::{BTreeMap, BTreeSet};

use cutover_tests::repo_root;
use yaml_serde::{Mapping, Value};

/// The functions: logical id in the template and binary name (`functions/<name>`).
const FUNCTIONS: [(&str, &str); 8] = [
    ("ValidateRevision", "validate-revision"),
    ("ProvisionReplacements", "provision-replacements"),
    ("RunHooks", "run-hooks"),
    ("ShiftTraffic", "shift-traffic"),
    ("Finalize", "finalize"),
    ("S3Trigger", "s3-trigger"),
    ("Schedule", "schedule"),
    ("Api", "api"),
];

/// The step queues: the environment variable that names each, and the function it feeds.
const STEP_QUEUES: [(&str, &str); 5] = [
    ("CUTOVER_QUEUE_VALIDATE_REVISION", "ValidateRevision"),
    (
        "CUTOVER_QUEUE_PROVISION_REPLACEMENTS",
        "ProvisionReplacements",
    ),
    ("CUTOVER_QUEUE_RUN_HOOKS", "RunHooks"),
    ("CUTOVER_QUEUE_SHIFT_TRAFFIC", "ShiftTraffic"),
    ("CUTOVER_QUEUE_FINALIZE", "Finalize"),
];

/// The SSM document's parameters, and the default of each optional one.
const DOCUMENT_PARAMETERS: [(&str, Option<&str>); 15] = [
    ("deploymentId", None),
    ("applicationName", None),
    ("deploymentGroupName", None),
    ("deploymentGroupId", None),
    ("bundleUrl", None),
    ("lifecycleEvents", None),
    ("bundleSha256", Some("")),
    ("fileExistsBehavior", Some("")),
    ("ignoreApplicationStopFailures", Some("false")),
    ("bundleBucket", Some("")),
    ("bundleKey", Some("")),
    ("bundleEtag", Some("")),
    ("bundleVersion", Some("")),
    ("appspecName", Some("")),
    ("executionTimeout", Some("3600")),
];

/// Calls that AWS does not scope to a resource: the only ones a statement may grant on `*`.
const UNSCOPED_ACTIONS: [&str; 10] = [
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "autoscaling:DescribeAutoScalingGroups",
    "ssm:DescribeInstanceInformation",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:CancelCommand",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTargetGroups",
];

fn load(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    yaml_serde::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn template() -> Value {
    load("template.yaml")
}

fn mapping<'a>(value: &'a Value, what: &str) -> &'a Mapping {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {value:?}"))
}

fn resources(template: &Value) -> &Mapping {
    mapping(&template["Resources"], "Resources")
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    resources(template)
        .get(id)
        .unwrap_or_else(|| panic!("the template has no resource {id}"))
}

fn resource_type<'a>(template: &'a Value, id: &str) -> &'a str {
    resource(template, id)["Type"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no Type"))
}

fn ids_of_type<'a>(template: &'a Value, ty: &str) -> Vec<&'a str> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(id, _)| id.as_str().expect("resource ids are strings"))
        .collect()
}

/// The argument of an intrinsic function, in its short (`!Ref x`) or long (`Ref: x`) form.
fn intrinsic<'a>(value: &'a Value, short: &str, long: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == short => Some(&tagged.value),
        Value::Mapping(m) if m.len() == 1 => m.get(long),
        _ => None,
    }
}

/// The logical id that `!Ref id` names.
fn ref_target(value: &Value) -> Option<&str> {
    intrinsic(value, "Ref", "Ref")?.as_str()
}

/// The logical id that `!GetAtt id.attribute` names, if it asks for `attribute`.
fn get_att_target<'a>(value: &'a Value, attribute: &str) -> Option<&'a str> {
    match intrinsic(value, "GetAtt", "Fn::GetAtt")? {
        Value::String(s) => s
            .split_once('.')
            .filter(|(_, a)| *a == attribute)
            .map(|(id, _)| id),
        Value::Sequence(parts) if parts.len() == 2 && parts[1].as_str() == Some(attribute) => {
            parts[0].as_str()
        }
        _ => None,
    }
}

/// A function's property, from the function or else from the template's Globals.
fn function_property<'a>(template: &'a Value, id: &str, name: &str) -> Option<&'a Value> {
    resource(template, id)["Properties"]
        .get(name)
        .or_else(|| template["Globals"]["Function"].get(name))
}

/// A function's environment: the Globals' variables, overridden by its own.
fn environment<'a>(template: &'a Value, id: &str) -> BTreeMap<&'a str, &'a Value> {
    let mut variables = BTreeMap::new();
    for source in [
        &template["Globals"]["Function"],
        &resource(template, id)["Properties"],
    ] {
        if let Some(vars) = source["Environment"]["Variables"].as_mapping() {
            for (name, value) in vars {
                variables.insert(name.as_str().expect("variable names are strings"), value);
            }
        }
    }
    variables
}

fn number(value: Option<&Value>, what: &str) -> u64 {
    value
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{what} is not a whole number: {value:?}"))
}

#[test]
fn the_template_holds_the_ssm_document_of_infra_ssm() {
    let template = template();
    let documents = ids_of_type(&template, "AWS::SSM::Document");
    assert_eq!(documents.len(), 1, "one SSM document: {documents:?}");
    let properties = &resource(&template, documents[0])["Properties"];
    assert_eq!(properties["DocumentType"].as_str(), Some("Command"));
    assert_eq!(properties["DocumentFormat"].as_str(), Some("YAML"));
    let file = load("infra/ssm/cutover-run-agent.yaml");
    assert!(
        properties["Content"] == file,
        "the document in template.yaml ({}) differs from infra/ssm/cutover-run-agent.yaml: copy \
         the file's content under Content",
        documents[0]
    );
}

#[test]
fn the_ssm_document_passes_its_parameters_quoted_to_the_agent() {
    let document = load("infra/ssm/cutover-run-agent.yaml");
    assert_eq!(document["schemaVersion"].as_str(), Some("2.2"));
    let parameters = mapping(&document["parameters"], "parameters");
    let declared: BTreeSet<&str> = parameters.keys().filter_map(Value::as_str).collect();
    let expected: BTreeSet<&str> = DOCUMENT_PARAMETERS.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, expected, "the document's parameters");
    for (name, default) in DOCUMENT_PARAMETERS {
        let parameter = &parameters[name];
        assert_eq!(parameter["type"].as_str(), Some("String"), "{name}'s type");
        assert_eq!(parameter["default"].as_str(), default, "{name}'s default");
        let pattern = parameter["allowedPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no allowedPattern"));
        assert!(
            pattern.starts_with('^') && pattern.ends_with('$'),
            "{name}'s allowedPattern {pattern} is not anchored, so it does not bound the value"
        );
        // Either the pattern forbids quotes and line breaks outright, or it is made of classes
        // and literals that cannot match them.
        let forbids_outright = pattern.contains(r"[^'\r\n]") || pattern.contains(r"[^'\n\r]");
        let only_positive = ["'", ".", "[^", r"\s", r"\S", r"\W", r"\D", r"\n", r"\r"]
            .iter()
            .all(|open| !pattern.contains(open));
        assert!(
            forbids_outright || only_positive,
            "{name}'s allowedPattern {pattern} may let a quote or a newline through"
        );
    }

    let steps = document["mainSteps"]
        .as_sequence()
        .expect("mainSteps is a list");
    assert_eq!(steps.len(), 1, "one step");
    assert_eq!(steps[0]["action"].as_str(), Some("aws:runShellScript"));
    let script: String = steps[0]["inputs"]["runCommand"]
        .as_sequence()
        .expect("runCommand is a list")
        .iter()
        .map(|line| format!("{}\n", line.as_str().expect("runCommand lines are strings")))
        .collect();

    // Every parameter reference is a declared parameter, inside single quotes.
    let mut used = BTreeSet::new();
    let mut rest = script.as_str();
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}").expect("a closed {{ }}");
        let name = rest[start + 2..end].trim();
        assert!(
            declared.contains(name),
            "the script uses {{{{ {name} }}}}, which is not a parameter"
        );
        assert!(
            rest[..start].ends_with('\'') && rest[end + 2..].starts_with('\''),
            "{{{{ {name} }}}} is not alone inside single quotes"
        );
        used.insert(name.to_owned());
        rest = &rest[end + 2..];
    }
    // executionTimeout bounds the step (its timeoutSeconds) rather than reaching the agent.
    assert_eq!(
        steps[0]["inputs"]["timeoutSeconds"].as_str(),
        Some("{{ executionTimeout }}")
    );
    used.insert("executionTimeout".to_owned());
    let unused: Vec<&&str> = declared.iter().filter(|n| !used.contains(**n)).collect();
    assert!(
        unused.is_empty(),
        "parameters the script never passes: {unused:?}"
    );

    for needle in [
        "${CUTOVER_HOST_ROOT:-/}",
        "${CUTOVER_DEPLOYMENT_ROOT:-/opt/cutover/deployment-root}",
        "${CUTOVER_AGENT:-cutover-agent}",
        "/usr/local/bin/cutover-agent",
        "exit 127",
    ] {
        assert!(script.contains(needle), "the script lacks {needle}");
    }
}

#[test]
fn the_functions_are_the_contract_binaries_on_arm64() {
    let template = template();
    let mut ids = ids_of_type(&template, "AWS::Serverless::Function");
    ids.sort_unstable();
    let mut expected: Vec<&str> = FUNCTIONS.iter().map(|(id, _)| *id).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "the template's functions");
    for (id, binary) in FUNCTIONS {
        let code_uri = function_property(&template, id, "CodeUri").and_then(Value::as_str);
        let expected_uri = format!("target/lambda/{binary}/bootstrap.zip");
        assert_eq!(code_uri, Some(expected_uri.as_str()), "{id}'s CodeUri");
        let runtime = function_property(&template, id, "Runtime").and_then(Value::as_str);
        assert_eq!(runtime, Some("provided.al2023"), "{id}'s Runtime");
        let handler = function_property(&template, id, "Handler").and_then(Value::as_str);
        assert_eq!(handler, Some("bootstrap"), "{id}'s Handler");
        let architectures = function_property(&template, id, "Architectures")
            .and_then(Value::as_sequence)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>());
        assert_eq!(architectures, Some(vec!["arm64"]), "{id}'s Architectures");
        let role = function_property(&template, id, "Role")
            .and_then(|r| get_att_target(r, "Arn"))
            .unwrap_or_else(|| panic!("{id} has no role of its own"));
        assert_eq!(
            resource_type(&template, role),
            "AWS::IAM::Role",
            "{id}'s role"
        );
    }
    let roles: BTreeSet<&str> = FUNCTIONS
        .iter()
        .filter_map(|(id, _)| function_property(&template, id, "Role"))
        .filter_map(|r| get_att_target(r, "Arn"))
        .collect();
    assert_eq!(roles.len(), FUNCTIONS.len(), "one role per function");
}

#[test]
fn every_function_names_the_table_the_step_queues_and_the_document() {
    let template = template();
    for (id, _) in FUNCTIONS {
        let env = environment(&template, id);
        let target = |name: &str| -> &str {
            env.get(name)
                .and_then(|v| ref_target(v))
                .unwrap_or_else(|| panic!("{id} does not get {name} as a !Ref"))
        };
        let table = target("CUTOVER_TABLE");
        assert_eq!(resource_type(&template, table), "AWS::DynamoDB::Table");
        let document = target("CUTOVER_SSM_DOCUMENT");
        assert_eq!(resource_type(&template, document), "AWS::SSM::Document");
        let queues: BTreeSet<&str> = STEP_QUEUES
            .iter()
            .map(|(name, _)| {
                let queue = target(name);
                assert_eq!(resource_type(&template, queue), "AWS::SQS::Queue", "{name}");
                queue
            })
            .collect();
        assert_eq!(
            queues.len(),
            STEP_QUEUES.len(),
            "{id}: a different queue for each step"
        );
    }
}

#[test]
fn every_step_queue_has_a_dead_letter_queue_and_feeds_its_function() {
    let template = template();
    for (variable, function) in STEP_QUEUES {
        let queue = ref_target(environment(&template, function)[variable])
            .expect("the queue variable is a !Ref");
        let properties = &resource(&template, queue)["Properties"];
        assert_eq!(
            properties["SqsManagedSseEnabled"].as_bool(),
            Some(true),
            "{queue} is encrypted"
        );
        let redrive = &properties["RedrivePolicy"];
        assert_eq!(
            number(redrive.get("maxReceiveCount"), "maxReceiveCount"),
            5,
            "{queue}'s maxReceiveCount"
        );
        let dead_letter = get_att_target(&redrive["deadLetterTargetArn"], "Arn")
            .unwrap_or_else(|| panic!("{queue}'s deadLetterTargetArn is not a !GetAtt of a queue"));
        assert_ne!(dead_letter, queue);
        assert_eq!(resource_type(&template, dead_letter), "AWS::SQS::Queue");
        assert_eq!(
            number(
                resource(&template, dead_letter)["Properties"].get("MessageRetentionPeriod"),
                "MessageRetentionPeriod"
            ),
            14 * 24 * 3600,
            "{dead_letter} keeps messages for 14 days"
        );

        // The queue's only consumer is its function, which answers with partial batch responses.
        let events = mapping(
            &resource(&template, function)["Properties"]["Events"],
            "Events",
        );
        let sqs: Vec<&Value> = events
            .values()
            .filter(|e| e["Type"].as_str() == Some("SQS"))
            .map(|e| &e["Properties"])
            .collect();
        assert_eq!(sqs.len(), 1, "{function} has one SQS event source");
        let source = sqs[0];
        assert_eq!(
            get_att_target(&source["Queue"], "Arn"),
            Some(queue),
            "{function} reads {queue}"
        );
        let batch = number(source.get("BatchSize"), "BatchSize");
        assert!((1..=10).contains(&batch), "{function}'s BatchSize {batch}");
        let responses: Vec<&str> = source["FunctionResponseTypes"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(responses, ["ReportBatchItemFailures"], "{function}");

        // A message must not come back while a function still works on it.
        let timeout = number(function_property(&template, function, "Timeout"), "Timeout");
        let window = source
            .get("MaximumBatchingWindowInSeconds")
            .map_or(0, |w| number(Some(w), "MaximumBatchingWindowInSeconds"));
        let visibility = number(properties.get("VisibilityTimeout"), "VisibilityTimeout");
        assert!(
            visibility >= 6 * timeout + window,
            "{queue}'s VisibilityTimeout {visibility} is under six times {function}'s timeout \
             ({timeout}) plus its batching window ({window})"
        );
    }
    let queues = ids_of_type(&template, "AWS::SQS::Queue");
    assert_eq!(
        queues.len(),
        2 * STEP_QUEUES.len(),
        "the step queues and their dead-letter queues: {queues:?}"
    );
}

/// Every policy statement in `value`, looking through `!If` (both branches) and other tags.
fn statements<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
    match value {
        Value::Mapping(m) => {
            for (key, child) in m {
                if key.as_str() == Some("Statement") {
                    collect_statements(child, found);
                } else {
                    statements(child, found);
                }
            }
        }
        Value::Sequence(s) => s.iter().for_each(|child| statements(child, found)),
        Value::Tagged(tagged) => statements(&tagged.value, found),
        _ => {}
    }
}

fn collect_statements<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
    match value {
        Value::Sequence(s) => s.iter().for_each(|child| collect_statements(child, found)),
        Value::Tagged(tagged) if tagged.tag == "If" => {
            let branches = tagged.value.as_sequence().expect("!If takes a list");
            branches[1..]
                .iter()
                .for_each(|branch| collect_statements(branch, found));
        }
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            assert_eq!(
                tagged.value.as_str(),
                Some("AWS::NoValue"),
                "a statement list"
            );
        }
        Value::Mapping(_) => found.push(value),
        other => panic!("not a policy statement: {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn no_policy_statement_allows_a_wildcard_action_and_star_resources_are_unscoped_calls() {
    let template = template();
    let mut found = Vec::new();
    statements(&template, &mut found);
    let allows: Vec<&Value> = found
        .into_iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .collect();
    // The eight roles' trust policies and at least one permission statement each.
    assert!(
        allows.len() >= 2 * FUNCTIONS.len(),
        "too few statements found: {}",
        allows.len()
    );
    for statement in allows {
        assert!(
            statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
            "an Allow statement with NotAction/NotResource grants almost everything: {statement:?}"
        );
        let actions = strings(&statement["Action"]);
        assert!(
            !actions.is_empty(),
            "a statement without actions: {statement:?}"
        );
        for action in &actions {
            let (service, call) = action
                .split_once(':')
                .unwrap_or_else(|| panic!("the action {action} names no service"));
            assert!(
                !service.is_empty() && !call.contains('*') && !call.is_empty(),
                "the statement allows the wildcard action {action}: {statement:?}"
            );
        }
        if strings(&statement["Resource"]).contains(&"*") {
            for action in &actions {
                assert!(
                    UNSCOPED_ACTIONS.contains(action),
                    "{action} is allowed on every resource, but AWS can scope it: {statement:?}"
                );
            }
        }
    }
}

#[test]
fn the_api_is_a_function_url_that_checks_signatures_itself_with_keys_from_one_parameter() {
    let template = template();
    let url = &resource(&template, "Api")["Properties"]["FunctionUrlConfig"];
    // AWS_IAM would make AWS check signatures against IAM users; cutover checks its own keys.
    assert_eq!(url["AuthType"].as_str(), Some("NONE"), "{url:?}");
    let env = environment(&template, "Api");
    let parameter = env
        .get("CUTOVER_API_KEYS_PARAMETER")
        .and_then(|v| ref_target(v))
        .expect("the api function is told its keys' parameter");
    assert_eq!(
        template["Parameters"][parameter]["Type"].as_str(),
        Some("String")
    );
    let output = &template["Outputs"]["ApiUrl"]["Value"];
    assert_eq!(get_att_target(output, "FunctionUrl"), Some("ApiUrl"));

    // The role reads that one parameter and no other.
    let role = &resource(&template, "ApiRole")["Properties"];
    let mut found = Vec::new();
    statements(role, &mut found);
    let reads: Vec<&Value> = found
        .into_iter()
        .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("ssm:")))
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(strings(&reads[0]["Action"]), ["ssm:GetParameter"]);
    let resource = intrinsic(&reads[0]["Resource"], "Sub", "Fn::Sub")
        .and_then(Value::as_str)
        .expect("the parameter's ARN is a !Sub");
    assert!(
        resource.ends_with(&format!(":parameter${{{parameter}}}")),
        "{resource}"
    );
}

#[test]
fn lambda_deployments_may_touch_only_the_functions_the_stack_names() {
    let template = template();
    let lambda_actions = |role: &str| -> Vec<(String, Vec<String>)> {
        let mut found = Vec::new();
        statements(&resource(&template, role)["Properties"], &mut found);
        found
            .into_iter()
            .filter(|s| {
                strings(&s["Action"])
                    .iter()
                    .any(|a| a.starts_with("lambda:"))
            })
            .map(|s| {
                let actions: Vec<String> = strings(&s["Action"])
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                let resources = s["Resource"]
                    .as_sequence()
                    .map(|r| r.iter().collect::<Vec<_>>())
                    .unwrap_or_else(|| vec![&s["Resource"]])
                    .into_iter()
                    .map(|r| {
                        intrinsic(r, "Sub", "Fn::Sub")
                            .and_then(Value::as_str)
                            .expect("a function ARN is a !Sub")
                            .to_owned()
                    })
                    .collect::<Vec<String>>();
                for arn in &resources {
                    assert!(
                        arn.contains(":function:${LambdaFunctionNames}"),
                        "{role} reaches functions beyond LambdaFunctionNames: {arn}"
                    );
                }
                (actions.join(" "), resources)
            })
            .collect()
    };
    let only =
        |role: &str| -> Vec<String> { lambda_actions(role).into_iter().map(|(a, _)| a).collect() };
    assert_eq!(
        only("ValidateRevisionRole"),
        ["lambda:GetFunctionConfiguration lambda:GetAlias"]
    );
    assert_eq!(only("RunHooksRole"), ["lambda:InvokeFunction"]);
    assert_eq!(
        only("ShiftTrafficRole"),
        ["lambda:GetAlias lambda:UpdateAlias"]
    );
    for role in [
        "ProvisionReplacementsRole",
        "FinalizeRole",
        "S3TriggerRole",
        "ScheduleRole",
        "ApiRole",
    ] {
        assert!(only(role).is_empty(), "{role} needs no Lambda permission");
    }
    assert_eq!(
        template["Parameters"]["LambdaFunctionNames"]["Default"].as_str(),
        Some("*")
    );
}

/// The statements of a role's own policies (not its trust policy), looking through `!If`.
fn role_statements<'a>(template: &'a Value, role: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    statements(
        &resource(template, role)["Properties"]["Policies"],
        &mut found,
    );
    found
}

/// Every action a role's own policies allow.
fn role_actions<'a>(template: &'a Value, role: &str) -> BTreeSet<&'a str> {
    role_statements(template, role)
        .into_iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}

/// The one statement of `role` whose `Sid` is `sid`.
fn statement<'a>(template: &'a Value, role: &str, sid: &str) -> &'a Value {
    let found: Vec<&Value> = role_statements(template, role)
        .into_iter()
        .filter(|s| s["Sid"].as_str() == Some(sid))
        .collect();
    assert_eq!(found.len(), 1, "{role} has one statement {sid}: {found:?}");
    found[0]
}

/// A statement's resources, each the string of its `!Sub`, the id of its `!GetAtt x.Arn`, or
/// itself.
fn statement_resources(statement: &Value) -> Vec<String> {
    let resources = statement["Resource"]
        .as_sequence()
        .map(|r| r.iter().collect::<Vec<_>>())
        .unwrap_or_else(|| vec![&statement["Resource"]]);
    resources
        .into_iter()
        .map(|r| {
            intrinsic(r, "Sub", "Fn::Sub")
                .and_then(Value::as_str)
                .or_else(|| get_att_target(r, "Arn"))
                .or_else(|| r.as_str())
                .unwrap_or_else(|| panic!("a resource that is not a string: {r:?}"))
                .to_owned()
        })
        .collect()
}

/// What only the role of provision-replacements may do: make, change and remove hosts.
const FLEET_CHANGES: [&str; 11] = [
    "autoscaling:CreateAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:DeleteAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:DetachInstances",
    "autoscaling:AttachLoadBalancerTargetGroups",
    "autoscaling:AttachLoadBalancers",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:TerminateInstances",
    "iam:PassRole",
];

#[test]
fn every_role_may_send_to_every_step_queue() {
    let template = template();
    let queues: BTreeSet<String> = STEP_QUEUES
        .iter()
        .map(|(variable, function)| {
            ref_target(environment(&template, function)[variable])
                .expect("the queue variable is a !Ref")
                .to_owned()
        })
        .collect();
    let send = &resource(&template, "StepStatePolicy")["Properties"]["PolicyDocument"];
    let mut found = Vec::new();
    statements(send, &mut found);
    let send: Vec<&Value> = found
        .into_iter()
        .filter(|s| s["Sid"].as_str() == Some("SendStepMessages"))
        .collect();
    assert_eq!(send.len(), 1, "StepStatePolicy has one SendStepMessages");
    assert_eq!(strings(&send[0]["Action"]), ["sqs:SendMessage"]);
    let resources: BTreeSet<String> = statement_resources(send[0]).into_iter().collect();
    assert_eq!(resources, queues, "SendStepMessages names every step queue");
    for (id, _) in FUNCTIONS {
        let role = function_property(&template, id, "Role")
            .and_then(|r| get_att_target(r, "Arn"))
            .expect("a role");
        let managed: Vec<&str> = resource(&template, role)["Properties"]["ManagedPolicyArns"]
            .as_sequence()
            .map(|m| m.iter().filter_map(ref_target).collect())
            .unwrap_or_default();
        assert!(
            managed.contains(&"StepStatePolicy"),
            "{role} cannot send steps: {managed:?}"
        );
    }
}

#[test]
fn provision_replacements_may_copy_auto_scaling_groups_and_let_hosts_go_and_no_more() {
    let template = template();
    let role = "ProvisionReplacementsRole";
    let expected: BTreeSet<&str> = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "ec2:DescribeInstances",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
        "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeInstanceInformation",
    ]
    .into_iter()
    .chain(FLEET_CHANGES)
    .collect();
    assert_eq!(role_actions(&template, role), expected, "{role}'s actions");

    assert_eq!(
        statement_resources(statement(&template, role, "Logs")),
        ["ProvisionReplacementsLogGroup"]
    );
    assert_eq!(
        statement_resources(statement(&template, role, "ConsumeStepQueue")),
        ["ProvisionReplacementsQueue"]
    );
    assert_eq!(
        statement_resources(statement(&template, role, "ReadFleets")),
        ["*"]
    );
    let in_account = |sid: &str, prefix: &str| {
        for arn in statement_resources(statement(&template, role, sid)) {
            assert!(
                arn.starts_with(prefix),
                "{role}'s {sid} reaches beyond {prefix}: {arn}"
            );
        }
    };
    in_account(
        "CopyAutoScalingGroups",
        "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:",
    );
    in_account(
        "TerminateHosts",
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/",
    );
    in_account(
        "TagOnLaunch",
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:",
    );
    in_account(
        "LaunchFromTemplates",
        "arn:${AWS::Partition}:ec2:${AWS::Region}:",
    );
    in_account(
        "PassInstanceProfileRoles",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/",
    );

    // Tags only on the instances and volumes a launch creates.
    let tag = statement(&template, role, "TagOnLaunch");
    assert_eq!(
        tag["Condition"]["StringEquals"]["ec2:CreateAction"].as_str(),
        Some("RunInstances"),
        "{tag:?}"
    );
    // The launch template's instance profile, and only to EC2.
    let pass = statement(&template, role, "PassInstanceProfileRoles");
    assert_eq!(strings(&pass["Action"]), ["iam:PassRole"]);
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"].as_str(),
        Some("ec2.amazonaws.com"),
        "{pass:?}"
    );
    assert_eq!(
        mapping(&pass["Condition"], "Condition").len(),
        1,
        "{pass:?}"
    );
}

#[test]
fn only_provision_replacements_may_make_change_or_remove_hosts() {
    let template = template();
    for (id, _) in FUNCTIONS {
        let role = format!("{id}Role");
        let actions = role_actions(&template, &role);
        let changes: Vec<&str> = FLEET_CHANGES
            .iter()
            .copied()
            .filter(|a| actions.contains(a))
            .collect();
        if id == "ProvisionReplacements" {
            assert_eq!(changes, FLEET_CHANGES, "{role}");
        } else {
            assert!(changes.is_empty(), "{role} may change fleets: {changes:?}");
        }
    }
    // validate-revision still resolves the group's hosts, and no longer provisions any.
    assert_eq!(
        strings(&statement(&template, "ValidateRevisionRole", "ResolveTargets")["Action"]),
        [
            "ec2:DescribeInstances",
            "autoscaling:DescribeAutoScalingGroups",
            "ssm:DescribeInstanceInformation"
        ]
    );
}
