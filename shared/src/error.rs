//! Errors that know whether a retry can help.
//!
//! Lambda retries a failed asynchronous invocation, replaying every side effect that
//! already happened. So a handler returns `Err` only for faults a retry can fix; permanent
//! ones (bad input, a Slack 4xx, a missing parameter) are logged and acknowledged.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The suite's error. It depends on nothing else in the crate: the modules whose errors
/// become one (`config`, `slack`) convert them where they are defined.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed; the text names the variable, never its value.
    #[error("{0}")]
    Config(String),

    #[error("bad input: {0}")]
    BadInput(String),

    /// A Slack delivery failed; whether a retry may help is Slack's answer's to say.
    #[error("{message}")]
    Slack { message: String, retryable: bool },

    #[error("{service} {operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: Option<String>,
        message: String,
        retryable: bool,
    },

    #[error("{0} did not finish before the invocation's deadline")]
    OutOfTime(&'static str),

    /// The function cannot act until its configuration is fixed. Counted as retryable so the
    /// event is kept (Lambda's retries, then the dead-letter queue) for a redrive after the fix,
    /// for functions whose events are worth keeping and carry nothing secret.
    #[error("not configured: {0}")]
    AwaitingConfiguration(String),
}

impl Error {
    pub fn bad_input(why: impl Into<String>) -> Self {
        Self::BadInput(why.into())
    }

    /// Whether invoking again with the same input could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(_) | Self::BadInput(_) => false,
            Self::Slack { retryable, .. } => *retryable,
            Self::Aws { retryable, .. } => *retryable,
            Self::OutOfTime(_) | Self::AwaitingConfiguration(_) => true,
        }
    }

    /// The AWS error code, when this came from an AWS service.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Classifies an AWS SDK error. Transport faults, timeouts, throttling and 5xx are
    /// retryable; a service's 4xx answer (not found, access denied, validation) is not.
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        let code = err.code().map(str::to_owned);
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ConstructionFailure(_) => false,
            SdkError::ServiceError(ctx) => {
                ctx.raw().status_code() >= 500 || code.as_deref().is_some_and(is_throttling_code)
            }
            _ => true,
        };
        let message = match (err.message(), &err) {
            (Some(m), _) => format!("{}: {m}", code.as_deref().unwrap_or("error")),
            // An answer the SDK could not parse (a proxy's HTML page, a stand-in's 404): its
            // context is the whole raw response, headers and body, which belongs in no log
            // line or Slack post. The status says enough.
            (None, SdkError::ServiceError(ctx)) => format!(
                "HTTP {} {}",
                ctx.raw().status_code(),
                code.as_deref()
                    .unwrap_or("that is not an AWS error (no error code or message)")
            ),
            (None, _) => DisplayErrorContext(&err).to_string(),
        };
        Self::Aws {
            service,
            operation,
            code,
            message,
            retryable,
        }
    }
}

/// Why an input is acknowledged without being acted on (not this function's event, or not
/// one it can use). Safe to log and to return: it describes the input, never quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotForUs(pub String);

/// The HTTP status of a raw response, so [`Error::from_sdk`] can stay generic.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// What a handler returns to the Lambda runtime for `result`: permanent errors are logged
/// and acknowledged so that Lambda does not replay side effects; retryable ones become an
/// invocation error so the async retries (and then the dead-letter queue) take over.
pub fn settle<T>(result: Result<T, Error>) -> Result<T, lambda_runtime::Error>
where
    T: Default,
{
    match result {
        Ok(v) => Ok(v),
        Err(e) if e.is_retryable() => {
            tracing::error!(error = %e, retryable = true, "invocation failed; returning an error so Lambda retries it");
            Err(Box::new(e))
        }
        Err(e) => {
            tracing::error!(error = %e, retryable = false, "invocation failed permanently; acknowledged so Lambda does not replay it");
            Ok(T::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_and_config_are_permanent() {
        assert!(!Error::bad_input("not JSON").is_retryable());
        assert!(!Error::Config("SNS_TOPIC_ARN is not set".into()).is_retryable());
    }

    #[test]
    fn running_out_of_time_is_retryable() {
        assert!(Error::OutOfTime("posting to Slack").is_retryable());
    }

    #[test]
    fn settle_acknowledges_permanent_errors_and_surfaces_retryable_ones() {
        assert!(settle::<()>(Err(Error::bad_input("unknown detail-type"))).is_ok());
        assert!(settle::<()>(Err(Error::OutOfTime("posting"))).is_err());
    }

    #[test]
    fn throttling_codes_are_recognised() {
        assert!(is_throttling_code("ThrottlingException"));
        assert!(is_throttling_code("TooManyRequestsException"));
        assert!(!is_throttling_code("ParameterNotFound"));
    }

    #[test]
    fn an_unparseable_answer_is_described_by_its_status_not_its_body() {
        use aws_sdk_ssm::operation::get_parameter::GetParameterError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        let page = "<html><title>502 Bad Gateway</title>Cookie: session=abc</html>";
        let raw = Response::new(StatusCode::try_from(502).unwrap(), SdkBody::from(page));
        let err = SdkError::service_error(
            GetParameterError::generic(ErrorMetadata::builder().build()),
            raw,
        );
        let e = Error::from_sdk("SSM", "GetParameter", err);
        let text = e.to_string();
        assert!(text.contains("HTTP 502"), "{text}");
        assert!(
            !text.contains("session=abc") && !text.contains("<html>"),
            "{text}"
        );
        assert!(e.is_retryable());
    }
}
