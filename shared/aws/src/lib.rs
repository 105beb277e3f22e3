//! `cutover-aws`: the engine's ports over the AWS SDK (DynamoDB, SQS, S3, EC2, Auto Scaling,
//! ELBv2, SSM, CloudWatch, Lambda). This is the only library crate that may depend on the SDK; the
//! function binaries and the cloud tests reach the SDK through the re-exports below.

pub mod alarms;
pub mod api;
pub mod config;
pub mod error;
pub mod fleet;
pub mod function;
pub mod hosts;
pub mod lambda;
pub mod notifier;
pub mod ports;
pub mod queue;
pub mod registry;
pub mod replacements;
pub mod revisions;
pub mod store;
pub mod traffic;

pub use aws_config;
pub use aws_sdk_autoscaling as autoscaling;
pub use aws_sdk_cloudwatch as cloudwatch;
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_ec2 as ec2;
pub use aws_sdk_elasticloadbalancingv2 as elbv2;
pub use aws_sdk_lambda as lambda_api;
pub use aws_sdk_s3 as s3;
pub use aws_sdk_sqs as sqs;
pub use aws_sdk_ssm as ssm;
pub use cutover_engine as engine;

use cutover_core::Timestamp;
use cutover_engine::{Clock, SystemClock};

/// The time now, by the system clock.
pub(crate) fn now() -> Timestamp {
    SystemClock.now()
}
