"""Features: the front-end (waveforms to features), augmentation, and the tf.data pipeline of a trial."""
