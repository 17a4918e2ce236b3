"""The ``nursemaid`` command line: the demo, the diagrams (private; see ``__main__``).

Nothing here is public API except the command line itself and the demo worker
program, which ``python -m nursemaid._cli.demo_worker`` runs.
"""
