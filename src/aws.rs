//! The AWS SDK configuration shared by the S3 and SNS clients.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Config;

/// Region and credentials from the standard AWS chain (environment, profile, ECS task
/// role); `AWS_ENDPOINT_URL` points both clients at a stand-in such as LocalStack or moto.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.aws.region.clone()));
    if let Some(url) = &config.aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
