"""The memory browser (`lmm ui`): a local web page to see, search, correct and trust what lmm
remembers. server.py serves it (loopback only, token-guarded); sessions.py, memories.py,
recall.py and reports.py render its pages; layout.py holds the shared shell and stylesheet.
"""

from lmm.ui.server import UIConfig, make_server, serve

__all__ = ["UIConfig", "make_server", "serve"]
