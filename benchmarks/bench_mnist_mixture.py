"""The shipped MNIST mixture of factor analysers (``scoredae fit-mixture``) beside the networks: its
exact MMSE denoiser's PSNR on the first 2,000 test digits at the networks' levels (the table of
``scoredae eval``), and its samples judged by the shipped classifier (confident share, class
entropy, classifier FID against the test set) beside as many real training digits. Its held-out
bits per dimension are in its metadata, from the fit. ``--write-metadata`` adds the record to the
mixture's JSON.

    python benchmarks/bench_mnist_mixture.py [--n 1000] [--images 2000] [--write-metadata]
"""

import argparse
import json

import torch

from scoredae.data import load_mnist
from scoredae.eval.denoising import denoising_metrics
from scoredae.eval.report import eval_sigmas
from scoredae.eval.sample_quality import quality_beside_real
from scoredae.nets import list_pretrained, load_pretrained
from scoredae.nets.registry import MIXTURES_DIR

NAME = "mnist_mixture"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="samples judged by the classifier (default 1000)")
    p.add_argument("--images", type=int, default=2000, help="test digits denoised (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-metadata", action="store_true", help=f"add the record to {NAME}.json")
    args = p.parse_args(argv)
    denoiser = load_pretrained(NAME)
    clean = load_mnist("test")[0][: args.images].double()
    psnr = {str(s): round(denoising_metrics(denoiser, clean, s, ssim=False)["psnr"], 3) for s in eval_sigmas("mnist")}
    networks = {name: meta.get("psnr", {}) for name, meta in list_pretrained().items()
                if meta.get("data", {}).get("dataset", "mnist") == "mnist" and meta.get("psnr")}
    print(f"PSNR (dB) on the first {len(clean)} test digits")
    print(f"  {'model':24s}" + "".join(f"{s:>9s}" for s in psnr))
    print(f"  {NAME:24s}" + "".join(f"{v:9.2f}" for v in psnr.values()))
    for name, row in sorted(networks.items()):
        print(f"  {name:24s}" + "".join(f"{row[s]:9.2f}" if s in row else f"{'-':>9s}" for s in psnr))
    samples = denoiser.mixture.sample(args.n, generator=torch.Generator().manual_seed(args.seed)).reshape(-1, 1, 28, 28)
    quality = quality_beside_real(samples.float(), seed=args.seed)
    for who, q in quality.items():
        print(f"{who:16s} confident {q['confident_share']:.3f}  class entropy {q['class_entropy']:.3f}  "
              f"FID {q['fid']:.2f}")
    if args.write_metadata:
        path = MIXTURES_DIR / f"{NAME}.json"
        meta = json.loads(path.read_text())
        meta["psnr"] = psnr
        meta["psnr_images"] = f"the first {len(clean)} MNIST test images (scoredae eval's noise seed)"
        meta["generation"] = {"n": args.n, "seed": args.seed, "command": "python benchmarks/bench_mnist_mixture.py "
                              "--write-metadata", **{k: {m: round(v, 4) for m, v in q.items()} for k, q in quality.items()}}
        path.write_text(json.dumps(meta, indent=2, sort_keys=True))
        print(f"-> {path}")


if __name__ == "__main__":
    main()
