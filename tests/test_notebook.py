"""``examples/quickstart.ipynb`` runs top to bottom on real MNIST, in a kernel of this Python.

The notebook is executed with nbclient in a temporary folder (its run folders land there), in
a kernel started from the interpreter running the tests, which imports this checkout's
mnistexp (PYTHONPATH). Any cell that raises fails the test with the cell's traceback.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


@pytest.mark.mnist
@pytest.mark.slow
def test_the_quickstart_notebook_runs(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's paths, without a warning
    monkeypatch.setenv("MNISTEXP_DATA_DIR", str(mnist_dir))
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' installs it")
    import nbformat

    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first cell that fails

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    printed = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert printed.count(": completed, accuracy") == 4, printed
    tables = [
        out["data"]["text/markdown"] for out in outputs if "text/markdown" in out.get("data", {})
    ]
    assert len(tables) == 1 and "**Against baseline `baseline`**" in tables[0]
    assert "| label_smoothing |" in tables[0]
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the reliability diagram
    runs = sorted(p.name for p in (tmp_path / "runs-quickstart").iterdir())
    assert [name.split("-")[0] for name in runs] == ["baseline"] * 2 + ["label_smoothing"] * 2
