//! One place that turns weir's AWS settings into SDK configuration.
//!
//! Every adapter of this crate talks to AWS through the same loaded [`SdkConfig`]: the region,
//! an optional endpoint (moto, LocalStack, a VPC endpoint) and credentials from the standard
//! chain (environment, profile, web identity, ECS/IMDS). The SDKs are built without their default
//! HTTPS client, whose rustls runs on aws-lc (a C build); this module hands them a hyper client
//! with rustls on ring instead, the TLS stack the rest of the workspace already compiles.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use weir_ports::PortError;

/// Where and how to reach AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region (`None`: from the standard chain, `AWS_REGION` or the profile).
    pub region: Option<String>,
    /// Another endpoint for every service (`None`: the real AWS endpoints, or `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
}

/// Loads the SDK configuration for `settings`.
pub async fn load(settings: &AwsSettings) -> SdkConfig {
    loader(settings).load().await
}

/// The configuration loader for `settings`, for callers that add to it (fixed credentials in
/// tests) before loading.
pub fn loader(settings: &AwsSettings) -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader
}

/// Maps an SDK error to a [`PortError`] by its AWS error code: codes that say the request can
/// never succeed are `Invalid`, missing things `NotFound`, everything else (throttling, network,
/// 5xx) `Unavailable`, so the worker retries it.
pub(crate) fn port_error<E>(context: &str, err: E) -> PortError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error,
{
    let code = err.code().unwrap_or("").to_string();
    // The service's own code and sentence when it sent them; the whole chain of an error with
    // neither (a connection failure) would show the SDK's Debug of the response instead.
    let text = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&err)),
    };
    match code.as_str() {
        "ReceiptHandleIsInvalid"
        | "InvalidParameterValue"
        | "ValidationException"
        | "InvalidArgument"
        | "InvalidParameter"
        | "InvalidAttributeName"
        | "TooManyEntriesInBatchRequest"
        | "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
        | "EmptyBatchRequest"
        | "AWS.SimpleQueueService.EmptyBatchRequest" => PortError::Invalid(format!("{context}: {text}")),
        "QueueDoesNotExist"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "ResourceNotFoundException"
        | "NotFound"
        | "NoSuchKey" => PortError::NotFound(format!("{context}: {text}")),
        "NoSuchBucket" => PortError::NoSuchBucket(format!("{context}: {text}")),
        _ => PortError::unavailable(context.to_string(), text),
    }
}

/// Installs rustls's ring provider as the process default, once: `object_store`'s HTTP client
/// (reqwest built without a provider of its own) uses it for HTTPS.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `weir setup aws` printed against an endpoint without versioning: the service's code
    /// and sentence, not a Debug dump of the SDK's error.
    #[test]
    fn a_service_error_is_its_code_and_message() {
        use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningError;
        let meta = aws_sdk_s3::error::ErrorMetadata::builder()
            .code("NotImplemented")
            .message("A header you provided implies functionality that is not implemented.")
            .build();
        let e = port_error("enabling versioning on b", PutBucketVersioningError::generic(meta));
        let text = e.to_string();
        assert!(
            text.contains("enabling versioning on b: NotImplemented: A header you provided implies functionality that is not implemented."),
            "{text}"
        );
        assert!(!text.contains("ErrorMetadata") && !text.contains('{'), "{text}");
    }
}
