"""``python -m avgen``: the same as the ``avgen`` command."""

from avgen._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
