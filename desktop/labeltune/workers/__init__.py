"""Qt workers: run ``core`` jobs in threads and turn their callbacks into signals."""
