from kms_rescue.cli.app import main

raise SystemExit(main())
