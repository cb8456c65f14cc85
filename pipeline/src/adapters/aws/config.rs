//! The AWS SDK's settings for every AWS adapter.

/// From the standard chain (environment, profile, instance or task role),
/// with the retry policy Storytime wants: throttling and server errors are
/// retried up to five times with backoff before an adapter sees them.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}
