"""Training: the one loop and the recipes that feed it (denoisers, toy scores, the classifier)."""

from .loop import TrainConfig, TrainResult, train
from .state import EMA
from .trainers import OBJECTIVES, denoiser_loss, train_classifier, train_denoiser, train_toy

__all__ = ["EMA", "OBJECTIVES", "TrainConfig", "TrainResult", "denoiser_loss", "train", "train_classifier",
           "train_denoiser", "train_toy"]
