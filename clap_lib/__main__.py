import sys

from clap_lib.cli import main

sys.exit(main())
