# Example values: replace the account id, domain and addresses with your own.
region          = "us-east-1"
container_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tenantry:sha-0000000000000000000000000000000000000000"
certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
alarm_email     = "ops@example.com"
from_email      = "noreply@example.com"

cors_allowed_origins = ["https://app.example.com"]
