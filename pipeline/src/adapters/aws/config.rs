//! The AWS SDK's settings for every AWS adapter.

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The HTTPS client the SDK uses: rustls on ring, the crypto the rest of
/// Storytime uses (the SDK's default would build aws-lc as well). Trusted
/// roots come from the system's store.
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// From the standard chain (environment, profile, instance or task role),
/// with the retry policy Storytime wants: throttling and server errors are
/// retried up to five times with backoff before an adapter sees them.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}
