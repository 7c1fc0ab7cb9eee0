"""ucache: the Python side of the ucache uWSGI plugin."""
