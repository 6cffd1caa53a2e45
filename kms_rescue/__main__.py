from kms_rescue.cli.app import run

raise SystemExit(run())
