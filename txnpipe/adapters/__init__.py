"""Adapters behind the core's seams: S3 (boto3) and PostgreSQL (psycopg)."""
