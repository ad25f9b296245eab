"""`python -m redisai.executor ...`: see main.py."""

import sys

from .main import main

sys.exit(main())
