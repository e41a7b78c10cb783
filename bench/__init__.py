"""CaseTrail benchmarks: ``python -m bench [--profile quick|full] [--only B9,S3,...]``."""
