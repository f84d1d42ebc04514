"""Moving networks and weights between numcnn and other frameworks (optional dependencies)."""
