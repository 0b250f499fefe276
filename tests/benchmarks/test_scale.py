from __future__ import annotations

import json
import logging
from pathlib import Path

from benchmarks import scale


def test_the_chunked_paths_score_and_train_every_series_once(tmp_path: Path) -> None:
    prepared = scale.prepare(str(tmp_path), 128)
    assert prepared["required_history_days"] == 233
    (tmp_path / "prepared.json").write_text(json.dumps(prepared))
    try:
        scored = scale.run_chunked_scoring(str(tmp_path), 300, 128, False)
    finally:
        logging.disable(logging.NOTSET)
    assert (scored["rows"], scored["chunks"]) == (300, 3)
    assert scored["compute_seconds"] > 0
    assert scale.run_chunked_training(str(tmp_path), 300, 128)["chunks"] == 3
    assert (tmp_path / "trained-chunk.skops").is_file()
