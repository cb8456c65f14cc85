//! Adapters on AWS, through the official SDK. The SDK's own settings apply:
//! region, the credentials chain, `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` (so S3-compatible servers work too).

mod dynamodb;
mod ocr;
mod polly;
mod s3;
mod sns;
mod sqs;

pub use dynamodb::DynamoJobStore;
pub use ocr::AwsReader;
pub use polly::PollyNarrator;
pub use s3::S3BlobStore;
pub use sns::SnsNotifier;
pub use sqs::SqsQueue;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::domain::PortError;

/// Error codes AWS services use for throttling.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Classifies an SDK error for the pipeline: throttling, server errors,
/// timeouts and failed connections are worth retrying; anything else
/// (access denied, a missing bucket or queue, an invalid parameter) will
/// not get better by itself and is reported with the service's own words.
/// The SDK has already retried the transient ones with backoff.
pub(crate) fn classify<E>(what: &str, e: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    let status = e.raw_response().map(|r| r.status().as_u16());
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500) || code.as_deref().is_some_and(|c| THROTTLING.contains(&c))
        }
        _ => false,
    };
    let detail = match &code {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
        None => DisplayErrorContext(&e).to_string(),
    };
    if transient { PortError::unavailable(what, detail) } else { PortError::rejected(what, detail) }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn answered(code: &str, status: u16) -> PortError {
        let error = GetObjectError::generic(ErrorMetadata::builder().code(code).message("as AWS said").build());
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        classify("the bucket", SdkError::service_error(error, response))
    }

    #[test]
    fn throttling_server_errors_and_timeouts_are_worth_retrying() {
        assert!(matches!(answered("SlowDown", 503), PortError::Unavailable { .. }));
        assert!(matches!(answered("ThrottlingException", 400), PortError::Unavailable { .. }));
        assert!(matches!(answered("InternalError", 500), PortError::Unavailable { .. }));
        let timeout: SdkError<GetObjectError> = SdkError::timeout_error("no answer");
        assert!(matches!(classify("the bucket", timeout), PortError::Unavailable { .. }));
    }

    #[test]
    fn denied_missing_and_invalid_are_permanent_with_the_reason() {
        for (code, status) in [("AccessDenied", 403), ("NoSuchBucket", 404), ("InvalidArgument", 400)] {
            match answered(code, status) {
                PortError::Rejected { what, detail } => {
                    assert_eq!(what, "the bucket");
                    assert_eq!(detail, format!("{code}: as AWS said"));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}
