"""Plain helpers that several test modules share: paths, constants, policy and scenario builders, the report's
JSON Schema check, ways to run the CLI. Not test modules (pytest collects nothing here) and no fixtures: fixtures
live in ``tests/conftest.py``. See docs/testing.md."""
