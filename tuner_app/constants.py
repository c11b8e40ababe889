"""Facts every layer shares: the clip the models take."""

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
