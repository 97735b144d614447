import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/fakes.py

ROOT = Path(__file__).parent.parent


@pytest.fixture(autouse=True, scope="session")
def _offline_aws_and_repo_root():
    """Tests never reach AWS: dummy credentials, a fixed region, config paths relative to the repo."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    os.chdir(ROOT)
    yield
