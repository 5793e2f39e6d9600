"""ResNet Studio's library: CIFAR ResNets, the on-device data pipeline, the trainer, metrics
and the run folder format. It never imports streamlit; the dashboard builds on it."""

__version__ = "0.1.0"
