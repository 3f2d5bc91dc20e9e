"""Same as `koopjax train ...` (for a checkout without the console script)."""

import sys

from koopjax import cli

if __name__ == "__main__":
  sys.exit(cli.main(["train", *sys.argv[1:]]))
