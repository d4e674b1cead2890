"""Start-up time: ``scoredae --help`` and ``import scoredae`` against ``python -c "import torch"``.

Each command runs in a fresh interpreter, interleaved with the others, best of five; the ratio to
importing torch alone is printed (target: ``scoredae --help`` within 1.5 times it).
"""

from __future__ import annotations

import subprocess
import sys
import time

COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "scoredae --help": [sys.executable, "-m", "scoredae", "--help"],
    'python -c "import scoredae"': [sys.executable, "-c", "import scoredae"],
    'python -c "from scoredae import ula"': [sys.executable, "-c", "from scoredae import ula"],
    'python -c "from scoredae.nets import UNet"': [sys.executable, "-c", "from scoredae.nets import UNet"],
}


def main(repeats: int = 5) -> None:
    best = {name: float("inf") for name in COMMANDS}
    for _ in range(repeats):
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            best[name] = min(best[name], time.perf_counter() - start)
    torch_s = best['python -c "import torch"']
    print(f"start-up times, best of {repeats} fresh interpreters")
    for name, seconds in best.items():
        target = "   (target <= 1.5)" if name == "scoredae --help" else ""
        print(f"  {name:<44} {seconds:6.2f} s   {seconds / torch_s:5.2f} x import torch{target}")


if __name__ == "__main__":
    main()
