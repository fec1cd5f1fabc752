"""Wharf: a PEP 694 (Upload 2.0) package index for AWS serverless."""
