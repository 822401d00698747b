# Example values.
region            = "us-east-1"
github_repository = "example-org/tenantry"
