import sys
from pathlib import Path

# Let the tests import the tfconfig helper whether or not tests/ is a package on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
