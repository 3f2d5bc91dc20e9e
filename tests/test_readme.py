"""README's Python examples run as written, and CI runs README's test command."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_commands():
  first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
  commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
  assert commands[0] == "pip install -e . && koopjax train"
  assert commands[1] == 'pip install -e ".[test]" && python -m pytest'
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1] in ci.splitlines()


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_example_runs(index):
  exec(compile(PYTHON_BLOCKS[index], f"README.md python block {index}", "exec"), {})
