"""`python -m lmm` runs the CLI."""

from lmm.cli import main

raise SystemExit(main())
