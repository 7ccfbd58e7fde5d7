import sys

from webmill.cli import main

sys.exit(main())
