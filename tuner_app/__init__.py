"""tuner-app: search compact CNNs for speech-command audio."""

__version__ = "0.1.0"
