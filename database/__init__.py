"""The database build and migrate entry point (product): ``python -m database setup``."""
