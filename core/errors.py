"""One base class for the mistakes a user can fix.

A `UserError` is a wrong input, not a bug: a missing file, a bad config key, a malformed
row. The CLI catches exactly this class and prints its message as one line on stderr
with exit code 2 -- no traceback -- so every message must say what is wrong and where
(file, line, field) and, where there is one, the fix. Anything else that escapes is a
bug in assay and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave assay; the message names it and, where known, the fix."""
