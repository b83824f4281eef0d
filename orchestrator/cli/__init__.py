"""Headless command line. ``main.py`` owns argument parsing and the error -> exit code mapping;
each sibling module registers the subcommands of one concern and holds no campaign logic itself."""
