//! `cutover-aws`: the engine's ports over the AWS SDK (DynamoDB, SQS, S3, EC2, Auto Scaling,
//! ELBv2, SSM, Lambda, ECS, CloudWatch). This is the only library crate that may depend on the
//! SDK. The ports arrive with the cloud functions; today the crate only names the core it builds on.

pub use cutover_core as core;
