"""``python -m rhenus.migrations [REVISION]``: migrate the database named by
``RHENUS_MIGRATE_DATABASE_URL`` to REVISION (default ``head``); what
:func:`rhenus.migrations.upgrade_in_child` runs. Exit status 0 on success, 1 on failure (the
traceback on stderr, then the error in one line after ``FAILED_PREFIX``)."""

from __future__ import annotations

import os
import sys
import traceback

from rhenus.migrations import DATABASE_URL_ENV, FAILED_PREFIX, upgrade


def main(argv: list[str]) -> int:
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        print(f"{DATABASE_URL_ENV} is not set", file=sys.stderr)
        return 2
    try:
        upgrade(url, argv[0] if argv else "head")
    except Exception as exc:
        traceback.print_exc()
        first = next(iter(str(exc).splitlines()), "")  # SQLAlchemy adds a "Background" line
        print(f"{FAILED_PREFIX}{type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
