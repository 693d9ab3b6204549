"""``python -m workbench``: the same command line as the ``workbench`` script."""

from .cli import main

if __name__ == "__main__":
    main()
