"""The sample-quality numbers against cases whose answer is known exactly."""

import math

import pytest
import torch
from torch import nn

from scoredae.eval import accuracy, frechet_distance, mnist_sample_quality, sliced_wasserstein
from scoredae.nets import MNISTClassifier
from scoredae.train import train_classifier


def test_frechet_distance_closed_forms():
    a = torch.randn(2000, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # equal covariances: only the means differ
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-6)
    # b = 2 (a - mean): tr(S + 4S - 2 * 2S) = tr(S), plus the squared mean
    centred = a - a.mean(0)
    cov_trace = torch.trace(torch.cov(a.T)).item()
    assert frechet_distance(a, 2 * centred) == pytest.approx(cov_trace + a.mean(0).pow(2).sum().item(), rel=1e-6)


class DigitFromPixel(nn.Module):
    """A stand-in classifier: the class is encoded in the first pixel, k / 10."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(50.0))

    def features(self, x):
        return x.flatten(1)[:, :3]

    def forward(self, x):
        label = (x[:, 0, 0, 0] * 10).round().long()
        return self.scale * nn.functional.one_hot(label, 10).float()


def images_of(labels, noise=0.0):
    x = torch.rand(len(labels), 1, 28, 28, generator=torch.Generator().manual_seed(1)) * noise
    x[:, 0, 0, 0] = torch.tensor(labels, dtype=torch.float32) / 10
    return x


def test_sliced_wasserstein_of_a_shift():
    """b = a + mu: every projection is shifted by theta.mu, so SW^2 = E (theta.mu)^2 = |mu|^2 / d over
    uniform unit directions; (theta.u)^2 ~ Beta(1/2, (d - 1)/2) gives the Monte Carlo error."""
    d, n_projections = 4, 20_000
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, d, generator=g, dtype=torch.float64)
    mu = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    sw2 = sliced_wasserstein(a, a + mu, n_projections, generator=g) ** 2
    norm2 = float(mu.pow(2).sum())
    sd = norm2 * (2 * (d - 1) / (d**2 * (d + 2))) ** 0.5  # of norm2 * Beta(1/2, 3/2)
    assert abs(sw2 - norm2 / d) < 4.5 * sd / n_projections**0.5  # a factor 2 on SW^2 would be ~70 se off
    assert sliced_wasserstein(a, a, 16, generator=g) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        sliced_wasserstein(a, a[:10])


def test_sample_quality_balanced_and_collapsed():
    clf = DigitFromPixel()
    balanced = images_of(list(range(10)) * 20, noise=0.5)
    quality = mnist_sample_quality(balanced, clf, balanced)
    assert quality["class_entropy"] == pytest.approx(1.0)
    assert quality["confident_share"] == 1.0
    assert quality["fid"] == pytest.approx(0.0, abs=1e-6)
    collapsed = mnist_sample_quality(images_of([7] * 200, noise=0.5), clf, balanced)
    assert collapsed["class_entropy"] == pytest.approx(0.0)
    halves = mnist_sample_quality(images_of([1] * 100 + [7] * 100, noise=0.5), clf, balanced)
    assert halves["class_entropy"] == pytest.approx(math.log(2) / math.log(10))


def test_classifier_learns_separable_toy_classes():
    """Ten classes made of bright squares at ten positions: a hundred steps reach ~100%."""
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 10, (600,), generator=g)
    images = 0.1 * torch.rand(600, 1, 28, 28, generator=g)
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 2 * c : 2 * c + 6, 4:10] += 0.9
    model = train_classifier(images[:500], labels[:500], epochs=10, batch_size=50, seed=2, progress=False).model
    assert accuracy(model, images[500:], labels[500:]) >= 0.95
    assert model.features(images[:4]).shape == (4, 128)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        MNISTClassifier()(torch.zeros(2, 28, 28))


def test_nearest_training_distances_and_the_near_copy_ratio():
    from scoredae.eval.sample_quality import memorisation, nearest_training_distances

    g = torch.Generator().manual_seed(0)
    training, fresh = torch.rand(300, 1, 6, 6, generator=g), torch.rand(20, 1, 6, 6, generator=g)
    d = nearest_training_distances(fresh, training, chunk=64)
    brute = torch.cdist(fresh.reshape(20, -1).double(), training.reshape(300, -1).double()).sort(1).values[:, :2]
    torch.testing.assert_close(d, brute, rtol=1e-9, atol=1e-9)
    copies = training[:20] + 0.01 * torch.randn(20, 1, 6, 6, generator=g)
    report = memorisation(copies, training, fresh)
    assert report["samples near copies"] == 1.0 and report["held-out near copies"] == 0.0
    assert report["samples median nearest"] < 0.1 < report["held-out median nearest"]
