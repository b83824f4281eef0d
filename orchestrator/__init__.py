"""cmspatch: verify, push and prove the fix for the Contec CMS8000-family backdoor.

The public API that views (CLI, TUI) may import lives in the subpackages: `domain` (pure values and
rules), `engine` (drives a campaign), `adapters` (I/O), `exports` (documents from the journal).
"""

__version__ = "0.1.0"
