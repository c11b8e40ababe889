"""Search: keras-tuner tuners and oracles, the observer hooks, progress, clean interrupts, the search record."""
