"""dbsync's CrossGuard policy pack (the policies live in ``policies.py``)."""
