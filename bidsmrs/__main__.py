from bidsmrs.cli import main

raise SystemExit(main())
