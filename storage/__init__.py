"""CaseTrail storage: the BlobStore port and its adapters (local filesystem, S3)."""
