//! Alarms over CloudWatch: the first of a deployment's alarms (metric or composite) that is in
//! the ALARM state, read with DescribeAlarms by name.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch as cloudwatch;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use cutover_engine::{Alarms, PortError};

use crate::error::port_error as sdk_error;

/// The most alarm names DescribeAlarms takes in one call.
const NAMES_PER_CALL: usize = 100;

/// Reads alarm states from CloudWatch.
#[derive(Clone, Debug)]
pub struct CloudWatchAlarms {
    client: cloudwatch::Client,
}

impl CloudWatchAlarms {
    pub fn new(config: &SdkConfig) -> Self {
        CloudWatchAlarms::from_client(cloudwatch::Client::new(config))
    }

    pub fn from_client(client: cloudwatch::Client) -> Self {
        CloudWatchAlarms { client }
    }

    /// The state of each named alarm that exists.
    async fn states(&self, names: &[String]) -> Result<HashMap<String, StateValue>, PortError> {
        let mut unique: Vec<String> = names.to_vec();
        unique.sort();
        unique.dedup();
        let mut states = HashMap::new();
        for chunk in unique.chunks(NAMES_PER_CALL) {
            let mut pages = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .page_size(100)
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error("cloudwatch:DescribeAlarms", e))?;
                let metric = page
                    .metric_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value()));
                let composite = page
                    .composite_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value()));
                for (name, state) in metric.chain(composite) {
                    if let (Some(name), Some(state)) = (name, state) {
                        states.insert(name.to_owned(), state.clone());
                    }
                }
            }
        }
        Ok(states)
    }
}

impl Alarms for CloudWatchAlarms {
    /// An alarm in ALARM wins over an alarm that does not exist: the deployment stops on it
    /// either way, and the alarm is the better reason.
    async fn first_in_alarm(&self, names: &[String]) -> Result<Option<String>, PortError> {
        if names.is_empty() {
            return Ok(None);
        }
        let states = self.states(names).await?;
        if let Some(name) = names
            .iter()
            .find(|n| states.get(n.as_str()) == Some(&StateValue::Alarm))
        {
            return Ok(Some(name.clone()));
        }
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !states.contains_key(n.as_str()))
            .map(|n| format!("'{n}'"))
            .collect();
        if !missing.is_empty() {
            return Err(PortError::permanent(format!(
                "CloudWatch has no alarm named {} in this account and region; create it, or remove it from the deployment group's alarmConfiguration",
                missing.join(", ")
            )));
        }
        Ok(None)
    }
}
