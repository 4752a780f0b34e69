"""What every Kitsu process shares for being observed: its log lines (logs.py)."""
