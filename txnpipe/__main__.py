"""``python -m txnpipe``: the same command as ``txnpipe``."""
import sys

from txnpipe.tools.cli import main

sys.exit(main())
