"""``python -m mnistexp`` is the same as the ``mnistexp`` command."""

from mnistexp.cli import main

if __name__ == "__main__":
    main()
