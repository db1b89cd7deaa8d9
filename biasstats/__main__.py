import sys

from biasstats.cli import main

sys.exit(main())
