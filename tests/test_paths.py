"""The project root (nnlib.paths.find_root) from any working directory."""
import importlib

import pytest

import nnlib.paths as paths


def make_project(folder):
    (folder / "notebooks").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("[project]\nname = 'nnlib'\n")
    (folder / "sub" / "deeper").mkdir(parents=True)
    return folder


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A project, another folder, and nnlib installed outside both (site-packages)."""
    monkeypatch.delenv("NNLIB_ROOT", raising=False)
    project = make_project(tmp_path / "proj")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = tmp_path / "venv" / "lib" / "site-packages" / "nnlib"
    site.mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(site / "paths.py"))
    return project, elsewhere


def test_the_environment_names_the_root(tree, monkeypatch, tmp_path):
    project, elsewhere = tree
    monkeypatch.setenv("NNLIB_ROOT", str(elsewhere))
    assert paths.find_root(project / "sub") == elsewhere
    monkeypatch.setenv("NNLIB_ROOT", "../elsewhere/./x")  # relative: from the working directory
    assert paths.find_root(project) == elsewhere / "x"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NNLIB_ROOT", "~/proj")
    assert paths.find_root(elsewhere) == project
    monkeypatch.setenv("NNLIB_ROOT", "")  # empty: not set
    assert paths.find_root(project / "sub") == project


def test_an_installed_copy_finds_the_project_above_the_working_directory(tree, monkeypatch):
    project, elsewhere = tree
    for cwd in (project, project / "sub", project / "sub" / "deeper"):
        assert paths.find_root(cwd) == project
        monkeypatch.chdir(cwd)
        assert paths.find_root() == project  # the working directory by default
    assert paths.find_root(elsewhere) == elsewhere  # nothing found: the working directory
    monkeypatch.chdir(elsewhere)
    assert paths.find_root() == elsewhere


def test_the_working_directory_is_resolved(tree, tmp_path):
    project, elsewhere = tree
    (tmp_path / "link").symlink_to(project / "sub")
    assert paths.find_root(tmp_path / "link") == project
    (tmp_path / "other").symlink_to(elsewhere)
    assert paths.find_root(tmp_path / "other" / ".." / "proj" / "sub") == project
    assert paths.find_root(tmp_path / "other") == elsewhere


def test_a_checkout_is_its_own_root_wherever_the_process_runs(tree, monkeypatch, tmp_path):
    project, elsewhere = tree
    checkout = make_project(tmp_path / "checkout")
    (checkout / "nnlib").mkdir()
    monkeypatch.setattr(paths, "__file__", str(checkout / "nnlib" / "paths.py"))
    assert paths.find_root(elsewhere) == checkout
    assert paths.find_root(project / "sub") == checkout  # not the project it runs in


def test_a_copy_installed_inside_the_project_finds_it(tree, monkeypatch):
    project, elsewhere = tree
    site = project / ".venv" / "lib" / "python3.11" / "site-packages" / "nnlib"
    site.mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(site / "paths.py"))
    assert paths.find_root(elsewhere) == project
    other = make_project(elsewhere / "other")
    assert paths.find_root(other / "sub") == other  # the working directory's project first


@pytest.mark.parametrize("pyproject, notebooks", [("file", None), (None, "folder"),
                                                 ("folder", "folder"), ("file", "file")])
def test_a_project_needs_its_pyproject_and_notebooks(tree, pyproject, notebooks):
    project, elsewhere = tree
    assert paths.is_project(project)
    folder = elsewhere / "almost"
    (folder / "sub").mkdir(parents=True)
    for name, kind in (("pyproject.toml", pyproject), ("notebooks", notebooks)):
        if kind == "folder":
            (folder / name).mkdir()
        elif kind == "file":
            (folder / name).write_text("")
    assert not paths.is_project(folder)
    assert paths.find_root(folder / "sub") == folder / "sub"


@pytest.fixture
def reload_paths(monkeypatch):
    yield
    monkeypatch.undo()
    importlib.reload(paths)


def test_the_project_folders(reload_paths, monkeypatch, tmp_path):
    assert paths.PROJ_ROOT == paths.find_root()
    monkeypatch.setenv("NNLIB_ROOT", str(tmp_path))
    importlib.reload(paths)
    assert paths.PROJ_ROOT == tmp_path
    assert (paths.FIGURES_DIR, paths.REPORT_DIR, paths.GENERATED_DIR) == (
        tmp_path / "figures", tmp_path / "report", tmp_path / "report" / "generated")
    assert (paths.MODELS_DIR, paths.NOTEBOOKS_DIR, paths.RUNS_DIR) == (
        tmp_path / "models", tmp_path / "notebooks", tmp_path / "runs")


def test_default_data_root_order(tmp_path, monkeypatch):
    from nnlib.paths import default_data_root
    project = tmp_path / "checkout"
    project.mkdir()
    monkeypatch.delenv("NNLIB_DATA", raising=False)
    assert default_data_root(project) == project / "data"
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert default_data_root(project) == (tmp_path / "shared" / "datasets").resolve()
    monkeypatch.setenv("NNLIB_DATA", str(tmp_path / "elsewhere"))
    assert default_data_root(project) == (tmp_path / "elsewhere").resolve()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNLIB_DATA", "rel")
    assert default_data_root(project) == (tmp_path / "rel").resolve()
