//! The one place AWS SDK errors become [`PortError`]s, classified by the
//! service's error code and HTTP status into the kinds the pipeline and
//! `doctor` act on. The SDK has already retried the transient ones with
//! backoff (five attempts, see `config.rs`) before an error reaches here.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::domain::{ErrorKind, PortError};

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
    "LimitExceededException",
];

/// Codes for refused credentials or permissions.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "KMSAccessDeniedException",
];

/// Codes for a bucket, queue, table or topic that does not exist.
const MISSING: &[&str] = &[
    "NoSuchBucket",
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NotFoundException",
    "TableNotFoundException",
];

/// Codes for an item that is not there.
const NOT_FOUND: &[&str] = &["NoSuchKey"];

/// Codes for a request the service will never accept as sent.
const INVALID: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidParameterValueException",
    "InvalidArgument",
    "InvalidRequest",
    "InvalidSsmlException",
    "TextLengthExceededException",
    "InvalidImageFormatException",
    "ImageTooLargeException",
    "UnsupportedDocumentException",
    "BadDocumentException",
    "DocumentTooLargeException",
    "InvalidAttributeValue",
    "InvalidMessageContents",
];

/// Classifies an SDK error for the pipeline: throttling, server errors,
/// timeouts and failed connections are worth retrying; access denied, a
/// missing resource and an invalid request are not, and say so by their
/// kind; the service's own code and message are kept as the detail.
pub(crate) fn classify<E>(what: &str, e: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    let status = e.raw_response().map(|r| r.status().as_u16());
    let is = |list: &[&str]| code.as_deref().is_some_and(|c| list.contains(&c));
    let kind = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => ErrorKind::Unavailable,
        SdkError::ServiceError(_) if is(THROTTLING) || status == Some(429) => ErrorKind::Throttled,
        SdkError::ServiceError(_) if status.is_some_and(|s| s >= 500) => ErrorKind::Unavailable,
        SdkError::ServiceError(_) if is(ACCESS_DENIED) || status == Some(403) => ErrorKind::AccessDenied,
        SdkError::ServiceError(_) if is(MISSING) => ErrorKind::Missing,
        SdkError::ServiceError(_) if is(NOT_FOUND) => ErrorKind::NotFound,
        SdkError::ServiceError(_) if is(INVALID) => ErrorKind::Invalid,
        SdkError::ConstructionFailure(_) => ErrorKind::Invalid,
        _ => ErrorKind::Failed,
    };
    let detail = match &code {
        Some(code) => format!("{code}: {}", e.message().unwrap_or("no message")),
        None => cause(&e),
    };
    PortError::new(kind, what, detail).with_source(e)
}

/// What went wrong before AWS answered (a connection, credentials, a
/// timeout): the error and the innermost cause in its chain, which is the
/// one that says why, without the SDK's nested debug dump.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let (top, root) = (e.to_string(), innermost.to_string());
    if std::ptr::eq(innermost, e) || top == root { top } else { format!("{top}: {root}") }
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
        assert_eq!(answered("SlowDown", 503).kind(), ErrorKind::Throttled);
        assert_eq!(answered("ThrottlingException", 400).kind(), ErrorKind::Throttled);
        assert_eq!(answered("InternalError", 500).kind(), ErrorKind::Unavailable);
        let timeout: SdkError<GetObjectError> = SdkError::timeout_error("no answer");
        let timeout = classify("the bucket", timeout);
        assert_eq!(timeout.kind(), ErrorKind::Unavailable);
        assert_eq!(timeout.detail(), "request has timed out: no answer");
        assert!(answered("SlowDown", 503).is_retryable());
    }

    #[test]
    fn denied_missing_and_invalid_are_permanent_with_the_reason() {
        for (code, status, kind) in [
            ("AccessDenied", 403, ErrorKind::AccessDenied),
            ("NoSuchBucket", 404, ErrorKind::Missing),
            ("InvalidArgument", 400, ErrorKind::Invalid),
            ("NoSuchKey", 404, ErrorKind::NotFound),
            ("SomethingElse", 400, ErrorKind::Failed),
        ] {
            let e = answered(code, status);
            assert_eq!(e.kind(), kind, "{code}");
            assert!(!e.is_retryable(), "{code}");
            assert_eq!(e.what(), "the bucket");
            assert_eq!(e.detail(), format!("{code}: as AWS said"));
        }
    }
}
