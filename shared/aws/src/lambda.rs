//! Lambda deployments over AWS Lambda: the alias's checks and weights (GetFunction, GetAlias,
//! UpdateAlias) and hook functions invoked asynchronously (Invoke with the `Event` type).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_lambda as lambda;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};
use cutover_core::DeploymentId;
use cutover_core::appspec::{AliasRoute, LambdaFunction};
use cutover_core::model::ErrorInformation;
use cutover_engine::{HookFunctions, LambdaTraffic, PortError};

use crate::error::{code, port_error};

/// Moves alias traffic and invokes hook functions with the Lambda API.
#[derive(Clone, Debug)]
pub struct LambdaFunctions {
    client: lambda::Client,
}

impl LambdaFunctions {
    pub fn new(config: &SdkConfig) -> Self {
        LambdaFunctions {
            client: lambda::Client::new(config),
        }
    }

    /// Whether `version` of the function exists; other failures are errors.
    async fn version_exists(&self, name: &str, version: &str) -> Result<bool, PortError> {
        match self
            .client
            .get_function_configuration()
            .function_name(name)
            .qualifier(version)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(port_error("lambda:GetFunctionConfiguration", e)),
        }
    }

    async fn update_alias(
        &self,
        f: &LambdaFunction,
        version: &str,
        weights: HashMap<String, f64>,
    ) -> Result<(), PortError> {
        let routing = AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(weights))
            .build();
        self.client
            .update_alias()
            .function_name(&f.name)
            .name(&f.alias)
            .function_version(version)
            .routing_config(routing)
            .send()
            .await
            .map(drop)
            .map_err(|e| port_error("lambda:UpdateAlias", e))
    }
}

impl LambdaTraffic for LambdaFunctions {
    async fn check(&self, f: &LambdaFunction) -> Result<Option<ErrorInformation>, PortError> {
        if let Some(problem) = f.versions_problem() {
            return Ok(Some(problem));
        }
        if !self.version_exists(&f.name, "$LATEST").await? {
            return Ok(Some(f.missing_function()));
        }
        for (field, version) in f.versions() {
            if !self.version_exists(&f.name, version).await? {
                return Ok(Some(f.missing_version(field, version)));
            }
        }
        let alias = match self
            .client
            .get_alias()
            .function_name(&f.name)
            .name(&f.alias)
            .send()
            .await
        {
            Ok(alias) => alias,
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {
                return Ok(Some(f.missing_alias()));
            }
            Err(e) => return Err(port_error("lambda:GetAlias", e)),
        };
        let weights = alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .into_iter()
            .flatten()
            .map(|(version, weight)| (version.clone(), *weight));
        let route = AliasRoute::new(alias.function_version().unwrap_or_default(), weights);
        Ok(f.route_problem(&route))
    }

    async fn shift(&self, f: &LambdaFunction, percent: u8) -> Result<(), PortError> {
        if percent >= 100 {
            return self
                .update_alias(f, &f.target_version, HashMap::new())
                .await;
        }
        let weight = f64::from(percent) / 100.0;
        let weights = HashMap::from([(f.target_version.clone(), weight)]);
        self.update_alias(f, &f.current_version, weights).await
    }

    async fn restore(&self, f: &LambdaFunction) -> Result<(), PortError> {
        self.update_alias(f, &f.current_version, HashMap::new())
            .await
    }
}

impl HookFunctions for LambdaFunctions {
    async fn invoke(
        &self,
        function: &str,
        deployment_id: &DeploymentId,
        execution_id: &str,
    ) -> Result<(), PortError> {
        let payload = serde_json::json!({
            "DeploymentId": deployment_id,
            "LifecycleEventHookExecutionId": execution_id,
        });
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map(drop)
            .map_err(|e: SdkError<_>| port_error(format!("lambda:Invoke {function}"), e))
    }
}
