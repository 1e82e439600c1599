"""`python -m keras_compattr` runs the command line."""

import sys

from keras_compattr.cli import main

sys.exit(main())
