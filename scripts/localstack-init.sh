#!/usr/bin/env bash
# LocalStack ready hook (docker-compose.yml): the bucket and topic the service uses.
set -euo pipefail
awslocal s3 mb "s3://${S3_BUCKET_NAME:-tenantry-files}"
awslocal sns create-topic --name "${SNS_EMAIL_TOPIC:-tenantry-email}"
