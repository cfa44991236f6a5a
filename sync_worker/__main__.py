"""``python -m sync_worker`` runs the ``stockcast`` command."""

from sync_worker.cli import main

main()
