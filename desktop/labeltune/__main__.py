from labeltune.cli import main

raise SystemExit(main())
