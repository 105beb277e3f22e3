//! Hosts reached through SSM Run Command: each host gets one command of cutover's SSM document,
//! which runs `cutover-agent` with a presigned URL of the revision; its outcome is read with
//! `GetCommandInvocation` by polls that the engine spaces out through delayed steps.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_ssm::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, CommandInvocationStatus};
use cutover_core::TargetId;
use cutover_core::Timestamp;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::machine::{Deployment, LifecycleOutcome, OutcomeStatus};
use cutover_core::model::{
    Diagnostics, LifecycleErrorCode, LifecycleEventStatus, RevisionLocation, S3Location,
};
use cutover_engine::{HookRunner, HostRun, Polled, PortError};
use serde::Deserialize;

use crate::error::{code, port_error};

/// How long the presigned revision URL stays valid after the command is sent.
const URL_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// How long a step may take to send a command, unless the settings say otherwise.
const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(120);

/// What to tell a user whose host cannot run cutover's commands.
const INSTALL_HINT: &str = "install and start the SSM agent (amazon-ssm-agent) with an instance profile that allows AmazonSSMManagedInstanceCore (on premises: register the host as an SSM managed instance), and install cutover-agent at /usr/local/bin/cutover-agent";

/// Runs lifecycle events on EC2 and on-premises hosts through SSM.
#[derive(Clone, Debug)]
pub struct SsmHosts {
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
    document: String,
    /// How long one command may run, passed to the document; its own default otherwise.
    execution_timeout: Option<u64>,
    claim_lease: Duration,
}

impl SsmHosts {
    pub fn new(
        ssm: aws_sdk_ssm::Client,
        s3: aws_sdk_s3::Client,
        document: impl Into<String>,
        execution_timeout: Option<u64>,
    ) -> Self {
        SsmHosts {
            ssm,
            s3,
            document: document.into(),
            execution_timeout,
            claim_lease: DEFAULT_CLAIM_LEASE,
        }
    }

    /// How long a step may take to send a command before another may take the run over
    /// (two minutes unless given: a step function runs for one at most).
    pub fn with_claim_lease(mut self, lease: Option<Duration>) -> Self {
        self.claim_lease = lease.unwrap_or(DEFAULT_CLAIM_LEASE);
        self
    }

    async fn bundle_url(&self, loc: &S3Location) -> Result<String, PortError> {
        let config = PresigningConfig::expires_in(URL_LIFETIME)
            .map_err(|e| PortError::permanent(e.to_string()))?;
        let request = self
            .s3
            .get_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(loc.version.clone())
            .presigned(config)
            .await
            .map_err(|e| port_error(format!("presigning s3://{}/{}", loc.bucket, loc.key), e))?;
        Ok(request.uri().to_owned())
    }
}

impl HookRunner for SsmHosts {
    fn sends_commands(&self) -> bool {
        true
    }

    fn claim_lease(&self) -> Duration {
        self.claim_lease
    }

    async fn run(
        &self,
        d: &Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
        claim: Option<&str>,
    ) -> Result<HostRun, PortError> {
        let RevisionLocation::S3(loc) = &d.revision else {
            return Err(PortError::permanent(format!(
                "hosts install S3 revisions only; this deployment's revision is {}",
                d.revision.revision_type()
            )));
        };
        let url = self.bundle_url(loc).await?;
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        let group = &d.group;
        let param = |v: &str| vec![v.to_owned()];
        let mut send = self
            .ssm
            .send_command()
            .document_name(&self.document)
            .instance_ids(target.as_str())
            .comment(comment(
                &d.deployment_id,
                claim.unwrap_or_default(),
                &names.join(","),
            ))
            .parameters("deploymentId", param(d.deployment_id.as_str()))
            .parameters("applicationName", param(&d.application_name))
            .parameters("deploymentGroupName", param(&group.deployment_group_name))
            .parameters("deploymentGroupId", param(&group.deployment_group_id))
            .parameters("bundleUrl", param(&url))
            .parameters("lifecycleEvents", param(&names.join(",")))
            .parameters(
                "fileExistsBehavior",
                param(d.options.file_exists_behavior.as_str()),
            )
            .parameters(
                "ignoreApplicationStopFailures",
                param(if d.options.ignore_application_stop_failures {
                    "true"
                } else {
                    "false"
                }),
            )
            .parameters("bundleBucket", param(&loc.bucket))
            .parameters("bundleKey", param(&loc.key))
            .parameters("bundleEtag", param(loc.e_tag.as_deref().unwrap_or("")))
            .parameters("bundleVersion", param(loc.version.as_deref().unwrap_or("")));
        if let Some(timeout) = self.execution_timeout {
            send = send.parameters("executionTimeout", param(&timeout.to_string()));
        }
        match send.send().await {
            Ok(sent) => {
                let command_id = sent
                    .command
                    .and_then(|c| c.command_id)
                    .ok_or_else(|| PortError::transient("SSM sent a command without an id"))?;
                Ok(HostRun::Started {
                    command_id,
                    poll_after: poll_delay(0),
                })
            }
            // SSM does not manage this host: it has no SSM agent, or is not registered.
            Err(e) if code(&e) == Some("InvalidInstanceId") => {
                let message = format!(
                    "{target} cannot be reached through SSM ({}): {INSTALL_HINT}",
                    e.into_service_error()
                );
                Ok(HostRun::Finished(failed_from(
                    events,
                    0,
                    agent_issue(message),
                )))
            }
            Err(e) => Err(port_error(
                format!("sending the agent's command to {target}"),
                e,
            )),
        }
    }

    async fn poll(
        &self,
        target: &TargetId,
        command_id: &str,
        events: &[LifecycleEventName],
        attempt: u32,
    ) -> Result<Polled, PortError> {
        let invocation = match self
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(target.as_str())
            .send()
            .await
        {
            Ok(invocation) => invocation,
            // A command just sent may not be visible yet.
            Err(e) if code(&e) == Some("InvocationDoesNotExist") && attempt < 5 => {
                return Ok(Polled::Running(poll_delay(attempt)));
            }
            Err(e) => {
                return Err(port_error(
                    format!("reading command {command_id} on {target}"),
                    e,
                ));
            }
        };
        let status = invocation
            .status
            .clone()
            .unwrap_or(CommandInvocationStatus::Pending);
        let stdout = invocation.standard_output_content.as_deref().unwrap_or("");
        let stderr = invocation.standard_error_content.as_deref().unwrap_or("");
        let exit = invocation.response_code;
        let ended = match status {
            CommandInvocationStatus::Pending
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Delayed
            | CommandInvocationStatus::Cancelling => {
                return Ok(Polled::Running(poll_delay(attempt)));
            }
            CommandInvocationStatus::Success => Ended::Exited(exit),
            CommandInvocationStatus::Failed => Ended::Exited(exit),
            CommandInvocationStatus::TimedOut => Ended::TimedOut,
            CommandInvocationStatus::Cancelled => Ended::Cancelled,
            other => Ended::Unreachable(other.as_str().to_owned()),
        };
        Ok(Polled::Finished(outcomes(
            target, events, stdout, stderr, ended,
        )))
    }

    /// The invocations on `target` of cutover's document since the claim was made, looked
    /// through for the claim in their comment.
    async fn find(
        &self,
        target: &TargetId,
        claim: &str,
        expires_at: Timestamp,
    ) -> Result<Option<String>, PortError> {
        // From the claim, with five minutes for this clock and SSM's being apart.
        let lease = i64::try_from(self.claim_lease.as_millis()).unwrap_or(i64::MAX);
        let since = expires_at
            .as_millis()
            .saturating_sub(lease)
            .saturating_sub(5 * 60 * 1000);
        let after = DateTime::from_millis(since)
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| PortError::permanent(e.to_string()))?;
        let filter = |key: CommandFilterKey, value: String| {
            CommandFilter::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| PortError::permanent(e.to_string()))
        };
        let mut pages = self
            .ssm
            .list_command_invocations()
            .instance_id(target.as_str())
            .filters(filter(
                CommandFilterKey::DocumentName,
                self.document.clone(),
            )?)
            .filters(filter(CommandFilterKey::InvokedAfter, after)?)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                port_error(
                    format!("looking for the command claimed {claim} on {target}"),
                    e,
                )
            })?;
            let found = page.command_invocations().iter().find(|i| {
                i.comment()
                    .is_some_and(|c| c.split(' ').nth(2) == Some(claim))
            });
            if let Some(invocation) = found {
                return Ok(invocation.command_id().map(str::to_owned));
            }
        }
        Ok(None)
    }

    async fn cancel(&self, target: &TargetId, command_id: &str) -> Result<(), PortError> {
        let cancelled = self
            .ssm
            .cancel_command()
            .command_id(command_id)
            .instance_ids(target.as_str())
            .send()
            .await;
        match cancelled {
            Ok(_) => Ok(()),
            // Already over: nothing is left to stop.
            Err(e) if matches!(code(&e), Some("InvalidCommandId" | "DuplicateInstanceId")) => {
                Ok(())
            }
            Err(e) => Err(port_error(
                format!("cancelling command {command_id} on {target}"),
                e,
            )),
        }
    }

    /// Cancels the commands sent; a command still being sent is cancelled by the step that
    /// sends it, which finds the deployment over.
    async fn stop(&self, d: &Deployment, targets: &[TargetId]) -> Result<(), PortError> {
        for target in targets {
            let sent = d
                .target(target)
                .and_then(|t| t.running_command())
                .and_then(|c| c.command_id.as_deref());
            if let Some(command_id) = sent {
                self.cancel(target, command_id).await?;
            }
        }
        Ok(())
    }
}

/// A command's comment: `cutover <deployment> <claim> <events>`, cut to the 100 characters SSM
/// allows (the events go first).
fn comment(id: &cutover_core::DeploymentId, claim: &str, events: &str) -> String {
    format!("cutover {id} {claim} {events}")
        .chars()
        .take(100)
        .collect()
}

/// How a command ended.
#[derive(Debug)]
enum Ended {
    Exited(i32),
    TimedOut,
    Cancelled,
    /// SSM could not deliver or run the command (Undeliverable, Terminated, ...).
    Unreachable(String),
}

/// One line the agent prints per lifecycle event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventReport {
    lifecycle_event_name: LifecycleEventName,
    status: LifecycleEventStatus,
    #[serde(default)]
    start_time: Option<Timestamp>,
    #[serde(default)]
    end_time: Option<Timestamp>,
    #[serde(default)]
    diagnostics: Option<Diagnostics>,
}

/// The outcome of every event asked for, from the agent's lines; the events it did not report
/// on are failed (the first) and skipped (the rest), with what the command's end says.
fn outcomes(
    target: &TargetId,
    events: &[LifecycleEventName],
    stdout: &str,
    stderr: &str,
    ended: Ended,
) -> Vec<(LifecycleEventName, LifecycleOutcome)> {
    let reports: Vec<EventReport> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line.trim()).ok())
        .collect();
    let mut out = Vec::with_capacity(events.len());
    for (i, &event) in events.iter().enumerate() {
        let Some(report) = reports.iter().find(|r| r.lifecycle_event_name == event) else {
            let why = match &ended {
                Ended::Exited(127) => agent_issue(format!(
                    "cutover-agent is not installed on {target}: {INSTALL_HINT}. {}",
                    last_line(stderr)
                )),
                Ended::Exited(code) => Diagnostics::new(
                    LifecycleErrorCode::UnknownError,
                    None,
                    format!(
                        "cutover-agent on {target} ended with exit code {code} without reporting {event}"
                    ),
                    stderr,
                ),
                Ended::TimedOut => Diagnostics::new(
                    LifecycleErrorCode::ScriptTimedOut,
                    None,
                    format!("the command on {target} ran out of time during {event}"),
                    stderr,
                ),
                Ended::Cancelled => Diagnostics::new(
                    LifecycleErrorCode::UnknownError,
                    None,
                    format!("the command on {target} was cancelled during {event}"),
                    stderr,
                ),
                Ended::Unreachable(status) => agent_issue(format!(
                    "SSM could not run the command on {target} (status {status}): {INSTALL_HINT}"
                )),
            };
            out.extend(failed_from(&events[i..], 0, why));
            return out;
        };
        let status = match report.status {
            LifecycleEventStatus::Succeeded => OutcomeStatus::Succeeded,
            LifecycleEventStatus::Skipped => OutcomeStatus::Skipped,
            _ => OutcomeStatus::Failed,
        };
        out.push((
            event,
            LifecycleOutcome {
                status,
                diagnostics: report.diagnostics.clone(),
                start_time: report.start_time,
                end_time: report.end_time,
            },
        ));
    }
    out
}

/// `events[first]` failed with `why`; the ones after it are skipped.
fn failed_from(
    events: &[LifecycleEventName],
    first: usize,
    why: Diagnostics,
) -> Vec<(LifecycleEventName, LifecycleOutcome)> {
    let skipped = LifecycleOutcome {
        status: OutcomeStatus::Skipped,
        diagnostics: None,
        start_time: None,
        end_time: None,
    };
    events[first..]
        .iter()
        .enumerate()
        .map(|(i, &e)| {
            let outcome = if i == 0 {
                LifecycleOutcome::failed(why.clone())
            } else {
                skipped.clone()
            };
            (e, outcome)
        })
        .collect()
}

fn agent_issue(message: String) -> Diagnostics {
    Diagnostics::new(LifecycleErrorCode::UnknownError, None, message, "")
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// How long to wait before poll number `attempt`: soon at first, since most hooks are quick,
/// then less and less often, at most once a minute.
pub fn poll_delay(attempt: u32) -> Duration {
    const SECONDS: [u64; 7] = [2, 2, 3, 5, 10, 20, 30];
    Duration::from_secs(SECONDS.get(attempt as usize).copied().unwrap_or(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleEventName::*;

    const EVENTS: [LifecycleEventName; 3] = [BeforeInstall, Install, AfterInstall];

    fn statuses(outcomes: &[(LifecycleEventName, LifecycleOutcome)]) -> Vec<OutcomeStatus> {
        outcomes.iter().map(|(_, o)| o.status).collect()
    }

    #[test]
    fn the_agents_lines_become_outcomes_in_order() {
        let stdout = concat!(
            r#"{"lifecycleEventName":"BeforeInstall","status":"Succeeded","startTime":1700000000.5,"endTime":1700000001}"#,
            "\n",
            r#"{"lifecycleEventName":"Install","status":"Failed","diagnostics":{"errorCode":"ScriptFailed","scriptName":"x.sh","message":"boom","logTail":"out"}}"#,
            "\n",
            r#"{"lifecycleEventName":"AfterInstall","status":"Skipped"}"#,
            "\n"
        );
        let out = outcomes(&TargetId::new("i-1"), &EVENTS, stdout, "", Ended::Exited(1));
        use OutcomeStatus::*;
        assert_eq!(statuses(&out), [Succeeded, Failed, Skipped]);
        let d = out[1].1.diagnostics.as_ref().unwrap();
        assert_eq!(d.error_code, LifecycleErrorCode::ScriptFailed);
        assert_eq!(
            out[0].1.start_time,
            Some(Timestamp::from_millis(1_700_000_000_500))
        );
    }

    #[test]
    fn a_missing_agent_fails_the_first_event_with_what_to_install() {
        let out = outcomes(
            &TargetId::new("i-1"),
            &EVENTS,
            "",
            "cutover-agent: not found\n",
            Ended::Exited(127),
        );
        use OutcomeStatus::*;
        assert_eq!(statuses(&out), [Failed, Skipped, Skipped]);
        let message = &out[0].1.diagnostics.as_ref().unwrap().message;
        assert!(message.contains("install cutover-agent"), "{message}");
    }

    #[test]
    fn output_cut_short_fails_the_first_unreported_event() {
        let stdout = r#"{"lifecycleEventName":"BeforeInstall","status":"Succeeded"}
{"lifecycleEventName":"Install","sta"#;
        let out = outcomes(&TargetId::new("i-1"), &EVENTS, stdout, "", Ended::Exited(0));
        use OutcomeStatus::*;
        assert_eq!(statuses(&out), [Succeeded, Failed, Skipped]);
    }

    #[test]
    fn polls_space_out_to_once_a_minute() {
        assert_eq!(poll_delay(0), Duration::from_secs(2));
        assert!(poll_delay(3) < poll_delay(6));
        assert_eq!(poll_delay(100), Duration::from_secs(60));
    }
}
