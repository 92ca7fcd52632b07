"""Report exports run as jobs (large exports) with progress."""
