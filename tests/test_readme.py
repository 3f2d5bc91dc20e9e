"""README's and the docs' Python examples run as written; CI runs README's test command."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_BLOCKS = [(page.name, i, block) for page in PAGES
                 for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(),
                                                      flags=re.S))]


def test_readme_starts_with_the_two_commands():
  first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
  commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
  assert commands[0] == "pip install -e . && koopjax train"
  assert commands[1] == 'pip install -e ".[test]" && python -m pytest'
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1] in ci.splitlines()


def test_readme_is_for_users():
  assert len(README.splitlines()) <= 200
  for link in re.findall(r"\]\((docs/[^)]+)\)", README):
    assert (REPO / link).is_file(), link


@pytest.mark.parametrize("page, index, block", PYTHON_BLOCKS,
                         ids=[f"{page}-{i}" for page, i, _ in PYTHON_BLOCKS])
def test_python_examples_run(page, index, block):
  exec(compile(block, f"{page} python block {index}", "exec"), {})
