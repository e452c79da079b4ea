#!/usr/bin/env python3
from bidsmrs.cli import main
raise SystemExit(main())
