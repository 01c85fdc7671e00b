"""`python -m lmm` runs the CLI.

`python -m lmm hook EVENT` (what `lmm install-hooks` writes) skips building the CLI: a hook must
start fast and exit 0 even when an unrelated command group fails to import.
"""

import sys

if sys.argv[1:2] == ["hook"]:
    from lmm.serve.hooks import main as hook_main

    raise SystemExit(hook_main(sys.argv[2:]))

from lmm.cli import main

raise SystemExit(main())
