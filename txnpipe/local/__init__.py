"""The local stand-ins for AWS: an embedded PostgreSQL and a moto S3, and the runner."""
