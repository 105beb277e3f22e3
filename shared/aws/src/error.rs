//! SDK errors as port errors, told apart by whether trying again may help.

use std::error::Error;
use std::fmt::Display;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use cutover_engine::PortError;

/// Error codes that mean "not now" rather than "never".
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// `what` failed with `e`: transient when the network, a timeout, throttling or a server error
/// is to blame, permanent otherwise.
pub fn port_error<E>(what: impl Display, e: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let message = format!("{what}: {}", DisplayErrorContext(&e));
    if is_transient(&e) {
        PortError::transient(message)
    } else {
        PortError::permanent(message)
    }
}

/// True when the same call may succeed later.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service.raw().status().as_u16() == 429
                || service
                    .err()
                    .code()
                    .is_some_and(|code| TRANSIENT_CODES.contains(&code))
        }
        _ => false,
    }
}

/// The error's service code, such as `ConditionalCheckFailedException`.
pub fn code<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<&str> {
    match e {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}
