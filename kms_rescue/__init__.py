"""kms-rescue: get back into AWS KMS keys you are locked out of, and stop getting locked out."""

__version__ = "0.1.0"
