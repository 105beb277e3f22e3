//! The SDK configuration every client is built from: rustls (ring) for TLS, the usual credential
//! and region chain, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_<SERVICE>`) for emulators and
//! LocalStack-style setups.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;

/// Loads the SDK configuration from the environment, as every AWS SDK does.
pub async fn load() -> SdkConfig {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}
