//! Lambda deployments over AWS Lambda: the alias's checks and weights (GetFunction, GetAlias,
//! UpdateAlias) and hook functions invoked asynchronously (Invoke with the `Event` type).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_lambda as lambda;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};
use cutover_core::DeploymentId;
use cutover_core::appspec::LambdaFunction;
use cutover_core::model::{ErrorCode, ErrorInformation};
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
        let invalid = |code, message: String| Ok(Some(ErrorInformation::new(code, message)));
        if !self.version_exists(&f.name, "$LATEST").await? {
            return invalid(
                ErrorCode::InvalidLambdaFunction,
                format!("Lambda function '{}' does not exist", f.name),
            );
        }
        for (role, version) in [
            ("CurrentVersion", &f.current_version),
            ("TargetVersion", &f.target_version),
        ] {
            if !self.version_exists(&f.name, version).await? {
                return invalid(
                    ErrorCode::InvalidLambdaConfiguration,
                    format!(
                        "{role} {version} of Lambda function '{}' does not exist; publish it first",
                        f.name
                    ),
                );
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
                return invalid(
                    ErrorCode::InvalidLambdaConfiguration,
                    format!(
                        "alias '{}' of Lambda function '{}' does not exist",
                        f.alias, f.name
                    ),
                );
            }
            Err(e) => return Err(port_error("lambda:GetAlias", e)),
        };
        let pointed = alias.function_version().unwrap_or_default();
        let extra = alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .filter(|w| !w.is_empty());
        if pointed != f.current_version || extra.is_some() {
            let with = extra
                .map(|w| {
                    let mut parts: Vec<String> = w
                        .iter()
                        .map(|(v, weight)| format!("{}% on version {v}", weight * 100.0))
                        .collect();
                    parts.sort();
                    format!(" with {}", parts.join(", "))
                })
                .unwrap_or_default();
            return invalid(
                ErrorCode::InvalidLambdaConfiguration,
                format!(
                    "alias '{}' of Lambda function '{}' points at version {pointed}{with}, not at CurrentVersion {} alone",
                    f.alias, f.name, f.current_version
                ),
            );
        }
        Ok(None)
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
