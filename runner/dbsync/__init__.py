"""dbsync: refresh non-production PostgreSQL databases from production, atomically and provably."""

__version__ = "0.1.0"
