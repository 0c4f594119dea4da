"""The typed training configs live in torch-free modules: the GUI builds them in its own thread."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from labeltune.core.errors import UnusableInputError
from labeltune.core.train_config import TrainConfig
from labeltune.core.xrd.train_config import XrdTrainConfig


def test_importing_the_configs_leaves_torch_unloaded() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from labeltune.core.train_config import TrainConfig
        from labeltune.core.xrd.train_config import XrdTrainConfig
        from labeltune.core.run_schema import check_run_schema
        from labeltune.core.xrd.measured import read_labels_csv
        TrainConfig(strategy="full").validate()
        XrdTrainConfig(epochs=3).validate()
        print(json.dumps({"torch": "torch" in sys.modules}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"torch": False}


def test_the_configs_validate_their_values() -> None:
    with pytest.raises(UnusableInputError, match="unknown strategy"):
        TrainConfig(strategy="sideways").validate()
    assert TrainConfig(strategy="full").epochs == 10 and TrainConfig().resolved_lr() == 1e-3
    with pytest.raises(ValueError, match="epochs >= 1"):
        XrdTrainConfig(epochs=0).validate()
    assert XrdTrainConfig().to_json()["lr"] == 2e-3 and XrdTrainConfig(init=None).to_json()["init"] is None
