# Example values: replace the account id, domain and addresses with your own.
region          = "us-east-1"
container_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tenantry:sha-0000000000000000000000000000000000000000"
alarm_email     = ""
from_email      = "noreply@dev.example.com"

cors_allowed_origins = ["https://app.dev.example.com"]
