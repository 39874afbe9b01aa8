"""The repository root imports both as a ComfyUI custom-node folder (any name) and as the package `atelier`."""

import importlib.util
import sys
import tomllib
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_root_imports_by_path_under_a_random_name_without_comfyui():
    name = f"pack_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        assert callable(module.comfy_entrypoint)
        assert not hasattr(module, "NODE_CLASS_MAPPINGS"), "V3 packs must not also export NODE_CLASS_MAPPINGS"
        sites = importlib.import_module(f"{name}.models.sites")
        assert len(sites.SD15_SITES) == 16
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def test_installed_package_is_this_repository():
    import atelier
    import atelier.models.sites

    assert Path(atelier.__file__).resolve() == REPO / "__init__.py"
    assert Path(atelier.models.sites.__file__).resolve().parent == REPO / "models"


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {"atelier"} | {
        "atelier." + ".".join(path.parent.relative_to(REPO).parts)
        for path in REPO.rglob("__init__.py")
        if path.parent != REPO
        and not any(part.startswith(".") or part in {"tests", "build"} for part in path.relative_to(REPO).parts)
    }
    assert found == listed, f"add to / remove from [tool.setuptools] packages: {sorted(found ^ listed)}"


def test_dependencies_and_registry_metadata():
    deps = " ".join(PYPROJECT["project"]["dependencies"])
    for name in ("torch", "diffusers", "transformers", "safetensors", "comfyui-frontend-package",
                 "opencv-python", "einops", "peft", "accelerate"):
        assert name in deps
    torch_requirement = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert "==" not in torch_requirement and "<" not in torch_requirement, "never force a torch reinstall on users"
    assert PYPROJECT["tool"]["comfy"]["requires-comfyui"].startswith(">=")
    assert "comfyui" not in PYPROJECT["project"]["name"].lower()
