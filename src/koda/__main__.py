from koda.cli.main import main

raise SystemExit(main())
