"""The package's shape: data flows one way, and the repository stands on its own.

The import graph is read from the source (imports inside functions included): no module may
be part of a cycle, and imports inside functions are kept for optional dependencies only.
"""

import ast
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "koopjax"
# Layers in the order data flows; a module may import its own layer and those before it.
LAYERS = ("_src", "nn", "data", "configs", "parallel", "models", "train", "eval", "report",
          "cli", "__main__")
# Imports allowed inside functions: optional dependencies only (none at the moment).
OPTIONAL = {"torch"}


def _modules():
  for path in sorted(PACKAGE.rglob("*.py")):
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    yield name.removesuffix(".__init__"), path


def _imports(path, module):
  """(imported koopjax module, inside a function?) pairs of one file."""
  is_package = path.name == "__init__.py"
  found = []

  def visit(node, inside):
    for child in ast.iter_child_nodes(node):
      nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      if isinstance(child, ast.Import):
        found.extend((a.name, inside) for a in child.names)
      elif isinstance(child, ast.ImportFrom):
        if child.level:
          parts = module.split(".")[:len(module.split(".")) - child.level + is_package]
          base = ".".join(parts + ([child.module] if child.module else []))
        else:
          base = child.module or ""
        found.extend([(f"{base}.{a.name}", inside) for a in child.names] + [(base, inside)])
      visit(child, nested)

  visit(ast.parse(path.read_text()), False)
  return found


def _graph():
  modules = dict(_modules())

  def resolve(name):
    while name and name not in modules:
      name = name.rpartition(".")[0]
    return name or None

  edges, inner = {m: set() for m in modules}, []
  for module, path in modules.items():
    for name, inside in _imports(path, module):
      top = name.split(".")[0]
      if inside and top != "koopjax" and top not in OPTIONAL and top != "__future__":
        inner.append((module, name))
      target = resolve(name) if top == "koopjax" else None
      if target and target != module and not target.startswith(module + "."):
        edges[module].add(target)
        if inside:
          inner.append((module, name))
  return edges, inner


def _layer(module):
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles_and_no_imports_inside_functions():
  edges, inner = _graph()
  assert inner == [], f"imports inside functions (only optional dependencies may be): {inner}"
  colour = {}

  def visit(node, stack):
    colour[node] = "grey"
    for nxt in sorted(edges[node]):
      assert colour.get(nxt) != "grey", f"import cycle: {' -> '.join(stack + [node, nxt])}"
      if nxt not in colour:
        visit(nxt, stack + [node])
    colour[node] = "black"

  for node in sorted(edges):
    if node not in colour:
      visit(node, [])


def test_no_module_imports_a_layer_above_it():
  edges, _ = _graph()
  for module, targets in edges.items():
    if _layer(module) == "__init__":
      continue  # the public API re-exports from _src
    for target in targets:
      if _layer(target) == "__init__":  # `import koopjax as kj`: the public maths API
        continue
      assert LAYERS.index(_layer(target)) <= LAYERS.index(_layer(module)), (
          f"{module} imports {target}, a layer above it")


def test_the_repository_refers_to_no_file_outside_it():
  """Package, docs and README stand alone (tests and benchmarks may read shared data)."""
  pattern = re.compile(r"\.\./shared|skd-spec\.md|jax-notes\.md|shared/docs")
  files = [*PACKAGE.rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md"]
  offenders = [str(f.relative_to(REPO)) for f in files if pattern.search(f.read_text())]
  assert offenders == []


def test_docs_pages_that_the_code_cites_exist():
  cited = set()
  for path in [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
    cited |= set(re.findall(r"docs/([\w\-]+\.md)", path.read_text()))
  missing = sorted(page for page in cited if not (REPO / "docs" / page).is_file())
  assert cited and missing == []
