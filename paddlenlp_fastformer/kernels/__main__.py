"""``python -m paddlenlp_fastformer.kernels``: build the fused CPU kernels now; exit 1 if they cannot be built."""
import logging
import sys

from . import library

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if library.load() is None:
        print("error: the fused CPU kernels could not be built (see the warning above); the model will run on the "
              "pure-Paddle reference ops, which compute the same values more slowly", file=sys.stderr)
        sys.exit(1)
    print(f"fused CPU kernels ready in {library.build_directory()}")
