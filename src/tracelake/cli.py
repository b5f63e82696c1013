"""The ``tracelake`` command line (needs the ``server`` extra: ``pip install 'tracelake[server]'``)."""
from __future__ import annotations

import sys


def main() -> None:
    try:
        from tracelake.commands import cli
    except ImportError as exc:  # the SDK-only install has no click/server packages
        sys.stderr.write(f"tracelake: the command line needs the server extra ({exc}).\n"
                         "Install it with: pip install 'tracelake[server]'\n")
        raise SystemExit(2) from None
    cli()


if __name__ == "__main__":
    main()
