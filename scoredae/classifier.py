r"""A small CNN MNIST classifier, and the sample-quality numbers it gives generated digits.

The classifier sees a sample :math:`x` and returns class probabilities :math:`p(c \mid x)`; a good
generator yields samples the classifier is confident about, spread evenly over the ten digits,
with penultimate features distributed like those of real digits. :func:`mnist_sample_quality`
reports:

* ``mean_confidence``: :math:`\frac1N \sum_i \max_c p(c \mid x_i)`;
* ``confident_share``: the share of samples with :math:`\max_c p(c \mid x_i) \ge 0.9`;
* ``class_entropy``: the entropy of the histogram of predicted classes divided by :math:`\log 10`
  (1 for a uniform histogram, 0 when every sample is one digit);
* ``fid``: the Frechet distance between Gaussians fitted to the classifier's penultimate features
  of the samples and of the test set (Heusel et al. 2017, eq. 6, with this classifier in place of
  Inception), :math:`\lVert \mu_1 - \mu_2\rVert^2 + \operatorname{tr}\big(\Sigma_1 + \Sigma_2 -
  2 (\Sigma_1 \Sigma_2)^{1/2}\big)`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import load_checkpoint

CONFIDENT = 0.9
SHIPPED = Path(__file__).resolve().parent / "weights" / "classifier" / "mnist_cnn"


class MNISTClassifier(nn.Module):
    """conv(32) - pool - conv(64) - pool - fc(128) - fc(10); ``features`` is the 128-d layer."""

    def __init__(self, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.config = {"width": width, "feature_dim": feature_dim}
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(), nn.Linear(2 * width * 49, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, (B, feature_dim), for x (B, 1, 28, 28) in [0, 1]."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x: expected shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, 10)."""
        return self.head(self.features(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> MNISTClassifier:
    """Cross-entropy training with Adam and a cosine learning rate, batches by indexing one tensor."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images and labels differ in length: {images.shape[0]} vs {labels.shape[0]}")
    model = MNISTClassifier().to(images.device)
    n_batches = math.ceil(images.shape[0] / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * n_batches)
    model.train()
    bar = tqdm(total=epochs * n_batches, disable=not progress, desc="classifier")
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=generator).to(images.device)
        for idx in order.split(batch_size):
            loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    bar.close()
    return model.eval()


def load_classifier(path: str | Path = SHIPPED, device=None) -> MNISTClassifier:
    """The shipped classifier (trained by ``scoredae train-classifier``), or the checkpoint at ``path``."""
    model, _ = load_checkpoint(path, {"MNISTClassifier": MNISTClassifier}, "MNISTClassifier", device)
    return model


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([fn(chunk) for chunk in x.split(batch_size)])


def accuracy(model: MNISTClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of correctly classified images."""
    return (_batched(model.eval(), images).argmax(1) == labels).float().mean().item()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    r""":math:`\lVert \mu_a - \mu_b\rVert^2 + \operatorname{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2})`
    between Gaussians fitted to feature sets a (N, k) and b (M, k).

    The trace of the root is taken as :math:`\sum_i \sqrt{\lambda_i}` over the eigenvalues of the
    symmetric :math:`\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}`, which has the same spectrum as
    :math:`\Sigma_a \Sigma_b` and stays well defined for singular covariances.
    """
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    w, v = torch.linalg.eigh(cov_a)
    root_a = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    trace_root = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    return float(mean_term + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_root)


def mnist_sample_quality(
    samples: torch.Tensor, classifier: MNISTClassifier, reference: torch.Tensor
) -> dict[str, float]:
    """Confidence, class balance and classifier-feature Frechet distance of samples (N, 1, 28, 28)
    against reference images (e.g. the MNIST test set); see the module docstring."""
    classifier = classifier.eval()
    samples = samples.to(next(classifier.parameters()).device)
    probs = torch.softmax(_batched(classifier, samples), dim=1)
    top = probs.max(1)
    hist = torch.bincount(top.indices, minlength=10).double() / samples.shape[0]
    entropy = -(hist[hist > 0] * hist[hist > 0].log()).sum().item() / math.log(10)
    fid = frechet_distance(_batched(classifier.features, samples), _batched(classifier.features, reference))
    return {
        "mean_confidence": top.values.mean().item(),
        "confident_share": (top.values >= CONFIDENT).float().mean().item(),
        "class_entropy": entropy,
        "fid": fid,
    }
