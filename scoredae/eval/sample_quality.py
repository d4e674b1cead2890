r"""The quality of generated digits, as judged by
:class:`~scoredae.nets.classifier.MNISTClassifier`.

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

import torch

from ..nets.classifier import MNISTClassifier

CONFIDENT = 0.9


@torch.no_grad()
def batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([fn(chunk) for chunk in x.split(batch_size)])


def accuracy(model: MNISTClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of correctly classified images."""
    return (batched(model.eval(), images).argmax(1) == labels).float().mean().item()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    r""":math:`\lVert \mu_a - \mu_b\rVert^2 + \operatorname{tr}(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2})`
    between Gaussians fitted to feature sets a (N, k) and b (M, k).

    The trace of the root is taken as :math:`\sum_i \sqrt{\lambda_i}` over the eigenvalues of the
    symmetric :math:`\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}`, which has the same spectrum as
    :math:`\Sigma_a \Sigma_b` and stays well defined for singular covariances.
    """
    for name, feats in (("a", a), ("b", b)):
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"{name}: a covariance needs at least 2 feature vectors (N, k), got shape {tuple(feats.shape)}")
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    w, v = torch.linalg.eigh(cov_a)
    root_a = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    trace_root = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    return float(mean_term + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_root)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    r"""The sliced 2-Wasserstein distance between the empirical distributions of the point sets a and
    b (n, d), the same n:
    :math:`\mathrm{SW}_2 = \big(\mathbb E_\theta\, W_2^2(\theta^\top a, \theta^\top b)\big)^{1/2}`
    over ``n_projections`` random unit directions :math:`\theta`, each 1-D distance from the sorted
    projections, :math:`W_2^2 = \frac1n \sum_i (a_{(i)} - b_{(i)})^2` (Rabin et al. 2011)."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a, b: expected two point sets of one shape (n, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    theta = torch.randn(a.shape[1], n_projections, generator=generator, dtype=a.dtype, device=a.device)
    theta = theta / theta.norm(dim=0)
    pa, pb = (torch.sort(points @ theta, dim=0).values for points in (a, b.to(a)))  # (n, P) each
    return float((pa - pb).square().mean().sqrt())


def max_sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_projections: int = 100,
                           generator: torch.Generator | None = None) -> float:
    r"""The largest 1-Wasserstein distance between the projections of the point sets a and b (n, d)
    (the same n) on ``n_projections`` random unit directions :math:`\theta`,
    :math:`\max_\theta W_1(\theta^\top a, \theta^\top b)`, :math:`W_1 = \frac1n \sum_i |a_{(i)} - b_{(i)}|`:
    the max-sliced distance (Deshpande et al. 2019) over random directions, with ``scipy``'s
    ``wasserstein_distance`` (p = 1) on each, as MCGdiff's and DCPS's Gaussian-mixture scripts
    measure their sliced distance."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a, b: expected two point sets of one shape (n, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    theta = torch.randn(a.shape[1], n_projections, generator=generator, dtype=a.dtype, device=a.device)
    theta = theta / theta.norm(dim=0)
    pa, pb = (torch.sort(points @ theta, dim=0).values for points in (a, b.to(a)))
    return float((pa - pb).abs().mean(0).max())


def mnist_sample_quality(
    samples: torch.Tensor, classifier: MNISTClassifier, reference: torch.Tensor
) -> dict[str, float]:
    """Confidence, class balance and classifier-feature Frechet distance of samples (N, 1, 28, 28)
    against reference images (e.g. the MNIST test set); see the module docstring."""
    classifier = classifier.eval()
    samples = samples.to(next(classifier.parameters()).device)
    probs = torch.softmax(batched(classifier, samples), dim=1)
    top = probs.max(1)
    hist = torch.bincount(top.indices, minlength=10).double() / samples.shape[0]
    entropy = -(hist[hist > 0] * hist[hist > 0].log()).sum().item() / math.log(10)
    fid = frechet_distance(batched(classifier.features, samples), batched(classifier.features, reference))
    return {
        "mean_confidence": top.values.mean().item(),
        "confident_share": (top.values >= CONFIDENT).float().mean().item(),
        "class_entropy": entropy,
        "fid": fid,
    }


def quality_beside_real(samples: torch.Tensor, seed: int = 0) -> dict[str, dict[str, float]]:
    """:func:`mnist_sample_quality` of ``samples`` (N, 1, 28, 28) against the MNIST test set with the
    shipped classifier, beside the same numbers for N real training digits drawn with ``seed``
    (the floor of the metric at that sample size): ``{"samples": ..., "training digits": ...}``."""
    from ..data.mnist import load_mnist
    from ..nets.registry import load_classifier

    if samples.shape[0] < 2:
        raise ValueError(f"samples: the Frechet distance needs at least 2 samples, got {samples.shape[0]}")
    classifier, test = load_classifier(), load_mnist("test")[0]
    train = load_mnist("train")[0]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(samples)]]
    return {name: mnist_sample_quality(images.float(), classifier, test)
            for name, images in (("samples", samples.cpu().clamp(0, 1)), ("training digits", real))}


#: a sample is a near copy when its nearest training image is this much closer than the second
#: nearest (the ratio test of Yoon et al. 2023, "Diffusion probabilistic models generalize when they
#: fail to memorize")
COPY_RATIO = 1 / 3


def nearest_training_distances(samples: torch.Tensor, training: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    r"""The pixel L2 distances :math:`\lVert x - t \rVert` from each sample (N, ...) to its nearest
    and second-nearest images of ``training`` (M, ...), shape (N, 2), on the device of ``samples``;
    the training set is read ``chunk`` images at a time."""
    x = samples.reshape(len(samples), -1).double()
    best = x.new_full((len(x), 2), math.inf)
    for part in training.split(chunk):
        t = part.reshape(len(part), -1).to(x)
        d2 = (x.square().sum(1, keepdim=True) - 2 * x @ t.T + t.square().sum(1)).clamp(min=0)  # (N, chunk)
        best = torch.cat([best, d2.sqrt().topk(min(2, len(t)), dim=1, largest=False).values], 1).sort(1).values[:, :2]
    return best


def memorisation(samples: torch.Tensor, training: torch.Tensor, held_out: torch.Tensor) -> dict[str, float]:
    """How close ``samples`` come to the training images, beside ``held_out`` images (digits the
    model never saw) of the same number: the median distance to the nearest training image and the
    share of near copies (:data:`COPY_RATIO`), for each."""
    out = {}
    for name, images in (("samples", samples), ("held-out", held_out[: len(samples)])):
        d = nearest_training_distances(images, training)
        out[f"{name} median nearest"] = float(d[:, 0].median())
        out[f"{name} near copies"] = float((d[:, 0] < COPY_RATIO * d[:, 1]).double().mean())
    return out
