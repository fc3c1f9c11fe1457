"""User errors: one clear line on stderr and exit code 2, never a traceback.

Anything the user can fix (a missing file, a missing column, an empty input, an unknown
option, missing WordNet) is raised as `UsageError` at the boundary where it is detected;
`run_main` turns it into the one-line message and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

EXIT_USAGE = 2


class UsageError(Exception):
    """An input or option the user can fix. The message is the whole story, on one line."""


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Call `main(argv)`; a `UsageError` becomes `error: ...` on stderr and exit code 2."""
    try:
        return main(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `curate sql ... | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
