"""`python -m lmm` runs the CLI."""

import sys

if sys.argv[1:2] == ["hook"]:
    from lmm.serve.hooks import main as hook_main

    raise SystemExit(hook_main(sys.argv[2:]))

from lmm.cli import main

raise SystemExit(main())
