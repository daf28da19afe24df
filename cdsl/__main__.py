from cdsl.cli import main

raise SystemExit(main())
