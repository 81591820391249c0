from avgen.cli import main

raise SystemExit(main())
