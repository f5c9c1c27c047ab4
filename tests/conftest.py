import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Each test compiles its own programs: no result depends on a cache another test (or an
# earlier suite) wrote. tests/test_check.py turns the cache on in folders of its own.
os.environ.setdefault("ARCHSPEC_NO_COMPILE_CACHE", "1")
