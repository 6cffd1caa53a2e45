"""The only package that talks to AWS (boto3/botocore): identities and sessions, probes, CloudTrail history, IAM
reads. It returns plain data (:mod:`kms_rescue.aws.results`), never a botocore exception.

Importing this package does not import boto3: the modules that need it (``sessions``, ``probe``, ``classify``,
``investigate``) are imported by name, so commands that never touch AWS stay fast.
"""
