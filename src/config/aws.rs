//! AWS, shared by the `s3` storage backend and the `sns` notifications backend: the
//! region, or an S3/SNS-compatible server instead.

use super::{ConfigError, vars::Vars};

#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// `AWS_REGION`.
    pub region: String,
    /// An S3/SNS-compatible server (LocalStack, moto) instead of AWS
    /// (`AWS_ENDPOINT_URL`); S3 is then addressed path-style.
    pub endpoint_url: Option<String>,
}

impl AwsConfig {
    pub(super) fn from_vars(
        vars: &Vars<'_, impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            region: vars.string("AWS_REGION", "us-east-1"),
            endpoint_url: vars.get("AWS_ENDPOINT_URL"),
        })
    }
}
