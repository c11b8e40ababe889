"""Facts every layer shares: the clip the models take."""

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
SEED_MAX = 2**32 - 1  # numpy's largest seed: keras.utils.set_random_seed seeds numpy, which refuses more
MAX_TRIALS = 100_000  # the most trials a space's tuner.max_trials, or a dry run's --trials, may ask for
