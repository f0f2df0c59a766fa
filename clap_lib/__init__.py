"""Reproduction of Tavares et al., "On class separability pitfalls in audio-text contrastive zero-shot learning"."""

__version__ = "0.1.0"
