"""Data: decoding audio, corpus layout and splits, the FSDD import, stats, the synthetic corpus, the decoded cache."""
