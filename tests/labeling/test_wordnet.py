"""Missing WordNet is a user error with one line that says how to get it, not a traceback."""

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from labeling.wordnet import HOW_TO_GET


def test_missing_wordnet_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "ds" / "metadata").mkdir(parents=True)
    table = pa.table({"uid": ["0123456789abcdef"], "url": ["http://h/1.jpg"],
                      "caption": ["#dog"], "source": ["x"]})  # fmt: skip
    pq.write_table(table, tmp_path / "ds" / "metadata" / "part-00000.parquet")
    empty = tmp_path / "no_nltk_data"
    empty.mkdir()
    code = (
        "import sys, nltk; nltk.data.path[:] = [sys.argv[1]]; "
        "from curation.cli import main; sys.exit(main(['build-vocab', '--root', sys.argv[2]]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(empty), str(tmp_path / "ds")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {HOW_TO_GET}"
    assert not (tmp_path / "ds" / "vocab").exists() and not (tmp_path / "ds" / "labels").exists()
