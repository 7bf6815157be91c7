"""Build the bed's images from the recipes in tests/bed/images, cached by content.

Every image gets two tags:
  localhost/hearth-test/<name>:<recipe hash>  exact build, used to decide "already built"
  localhost/hearth/<name>:<stable tag>        what roles, tests and child recipes refer to
The recipe hash covers every file of the recipe directory plus the id of the parent
image, so changing a recipe or rebuilding the base rebuilds exactly what depends on it.
A recipe may borrow another recipe's Containerfile (its own directory is then the build
context, e.g. only a requirements.txt); that Containerfile is part of its hash.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .shell import BedError, PODMAN, cache_dir, file_lock, podman, run

RECIPES = Path(__file__).resolve().parent.parent / "images"
HASH_LABEL = "hearth.bed.recipe-hash"
BASE = "base"
# Debian 13: the root of images that need its newer packages (PostgreSQL 17).
BASE_TRIXIE = "base-trixie"
BASES = (BASE, BASE_TRIXIE)
TARGET = "target"
# The same target recipe on Debian 13 (systemd 257, podman 5.4 with Quadlet).
TARGET_TRIXIE = "target-trixie"
COMPONENTS = ("synapse", "postgres", "nginx", "exim", "sydent", "gateway-standin")
# The previous minor Synapse (the upgrade test's starting point): built from the synapse
# recipe's Containerfile with its own requirements.txt; loaded only into targets that ask.
SYNAPSE_PREVIOUS = "synapse-previous"
# Built like the components but loaded only into targets that ask for them (the PostgreSQL
# major upgrade test): every other target would only carry them around.
EXTRA_COMPONENTS = ("postgres17", "certbot")
# Run by tests on the bed network beside the targets, never loaded into a target.
BED_SERVICES = ("pebble",)
# Two builds at a time: the bed machines have 2 cores and builds are mostly downloads.
PARALLEL_BUILDS = int(os.environ.get("HEARTH_BED_PARALLEL", "2"))


@dataclass(frozen=True)
class Image:
    """One buildable image of the bed."""

    recipe: str        # directory under tests/bed/images
    repo: str          # image name below localhost/hearth/
    stable_tag: str
    containerfile_from: str = ""   # another recipe whose Containerfile builds this one
    parent: str = BASE  # the base image it is built FROM ("" for a base itself)
    # --build-arg values; part of the recipe hash (one recipe, several images).
    build_args: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        """The stable reference roles and tests use."""
        return f"localhost/hearth/{self.repo}:{self.stable_tag}"

    def hash_ref(self, recipe_hash: str) -> str:
        return f"localhost/hearth-test/{self.repo}:{recipe_hash}"


IMAGES: dict[str, Image] = {
    BASE: Image(BASE, "debian", "bookworm", parent=""),
    # Same recipe, the suite is the tag (make-rootfs <suite>).
    BASE_TRIXIE: Image(BASE, "debian", "trixie", parent=""),
    TARGET: Image(TARGET, "target", "test"),
    # Debian 13's netavark sets up container networks with nft; its rootless podman 5 runs
    # pasta (package passt) for each container network namespace; its docker.io has the
    # daemon only (the client is docker-cli, a recommendation).
    TARGET_TRIXIE: Image(TARGET, TARGET_TRIXIE, "test", parent=BASE_TRIXIE,
                         build_args=(("EXTRA_PACKAGES", "nftables passt docker-cli"),)),
    **{name: Image(name, name, "test") for name in COMPONENTS},
    SYNAPSE_PREVIOUS: Image(SYNAPSE_PREVIOUS, SYNAPSE_PREVIOUS, "test", containerfile_from="synapse"),
    # The postgres recipe for another major: Debian 13's postgresql-17.
    "postgres17": Image("postgres", "postgres17", "test", parent=BASE_TRIXIE,
                        build_args=(("PG_MAJOR", "17"),)),
    "certbot": Image("certbot", "certbot", "test"),
    **{name: Image(name, name, "test") for name in BED_SERVICES},
}


@dataclass(frozen=True)
class BuildResult:
    name: str
    ref: str
    recipe_hash: str
    built: bool        # False: the cached image was reused
    seconds: float


def recipe_hash(recipe: str, parent_id: str = "", containerfile_from: str = "") -> str:
    """sha256 of the recipe directory (paths, exec bits, contents), the borrowed
    Containerfile if any, and the parent id."""
    digest = hashlib.sha256(parent_id.encode())
    root = RECIPES / recipe
    files = [(path.relative_to(root).as_posix(), path) for path in sorted(p for p in root.rglob("*") if p.is_file())]
    if containerfile_from:
        files.append((f"<{containerfile_from}>/Containerfile", RECIPES / containerfile_from / "Containerfile"))
    for rel, path in files:
        executable = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"\0{rel}\0{executable}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def image_id(ref: str) -> str | None:
    proc = run([PODMAN, "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def host_ca_bundle() -> Path:
    """The CA bundle pip must trust inside builds (TLS is intercepted on bed machines)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BedError("no CA bundle found for pip inside builds (set PIP_CERT)")


def _log_path(name: str) -> Path:
    logs = cache_dir() / "logs"
    logs.mkdir(exist_ok=True)
    path = logs / f"{name}.log"
    path.write_text("")
    return path


def _hash_extra(image: Image) -> str:
    """What besides the recipe files and the parent makes an image: the suite of a base other
    than bookworm, the build arguments. Empty for the original images (their hashes stay)."""
    extra = "suite=%s" % image.stable_tag if not image.parent and image.stable_tag != "bookworm" else ""
    return extra + "".join("\0%s=%s" % pair for pair in image.build_args)


def _build_base(image: Image, h: str) -> None:
    log = _log_path(image.repo + "-" + image.stable_tag)
    with log.open("ab") as log_handle:
        rootfs = subprocess.Popen([str(RECIPES / BASE / "make-rootfs"), image.stable_tag],
                                  stdout=subprocess.PIPE, stderr=log_handle)
        assert rootfs.stdout is not None
        importer = subprocess.run(
            [PODMAN, "import", "--change", 'CMD ["/bin/bash"]',
             "--change", f"LABEL {HASH_LABEL}={h}", "-", image.hash_ref(h)],
            stdin=rootfs.stdout, stdout=log_handle, stderr=subprocess.STDOUT, check=False)
        rootfs.stdout.close()
        if rootfs.wait() != 0 or importer.returncode != 0:
            raise BedError(f"base image build failed, see {log}:\n"
                           + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))


def _build_containerfile(image: Image, h: str, base_ref: str) -> None:
    try:
        _podman_build(image, h, base_ref)
    except BedError as error:
        # podman's layer cache lookup can trip over layers another build just removed
        # ("layer not known"); the build itself is fine on a second attempt.
        if "layer not known" not in str(error):
            raise
        _podman_build(image, h, base_ref)


def _podman_build(image: Image, h: str, base_ref: str) -> None:
    borrowed = (["--file", str(RECIPES / image.containerfile_from / "Containerfile")]
                if image.containerfile_from else [])
    args = [arg for key, value in image.build_args for arg in ("--build-arg", f"{key}={value}")]
    run([PODMAN, "build", "--layers", "--pull=never", *borrowed,
         "--build-arg", f"BASE={base_ref}", *args,
         "--secret", f"id=hostca,src={host_ca_bundle()}",
         "--label", f"{HASH_LABEL}={h}",
         "-t", image.hash_ref(h), str(RECIPES / image.recipe)],
        stdout_path=_log_path(image.repo))


def _drop_old_builds(image: Image, keep: set[str]) -> None:
    """Untag earlier builds of this image so the machine does not fill up (keep: the hashes
    of this run's builds of the same repository, e.g. both Debian bases)."""
    listing = podman("images", "--format", "{{.Repository}}:{{.Tag}}",
                     f"localhost/hearth-test/{image.repo}")
    prefix = f"localhost/hearth-test/{image.repo}:"
    # The listing also names other tags of the same images (the stable tag): skip those.
    for ref in listing.splitlines():
        if ref.startswith(prefix) and ref[len(prefix):] not in keep:
            podman("rmi", ref, check=False)


def _ensure(name: str, parent_id: str, base_ref: str) -> BuildResult:
    image = IMAGES[name]
    h = recipe_hash(image.recipe, parent_id + _hash_extra(image), image.containerfile_from)
    start = time.monotonic()
    built = image_id(image.hash_ref(h)) is None
    if built:
        if not image.parent:
            _build_base(image, h)
        else:
            _build_containerfile(image, h, base_ref)
    podman("tag", image.hash_ref(h), image.ref)
    return BuildResult(name, image.ref, h, built, round(time.monotonic() - start, 1))


def build_images(names: list[str] | None = None) -> dict[str, BuildResult]:
    """Build (or reuse) the base, the target and the component images.

    names: subset of IMAGES (the base is always ensured). Returns results by name.
    """
    wanted = [n for n in (names or list(IMAGES)) if n not in BASES]
    unknown = [n for n in wanted if n not in IMAGES]
    if unknown:
        raise BedError(f"unknown image(s): {', '.join(unknown)}; known: {', '.join(IMAGES)}")
    # The bookworm base always; another base only when something wanted is built on it.
    others = [b for b in BASES if b != BASE and (b in (names or []) or any(IMAGES[n].parent == b for n in wanted))]
    with file_lock(cache_dir() / "build.lock"):
        results: dict[str, BuildResult] = {BASE: _ensure(BASE, "", "")}

        def on_base(base: str, children: list[str]) -> dict[str, BuildResult]:
            """A base, then what is built on it, one after the other (one worker)."""
            done = {base: results[base] if base in results else _ensure(base, "", "")}
            base_ref = IMAGES[base].hash_ref(done[base].recipe_hash)
            base_id = image_id(base_ref) or ""
            for child in children:
                done[child] = _ensure(child, base_id, base_ref)
            return done

        # The other bases' chains run beside the bookworm images (one worker each).
        with ThreadPoolExecutor(max_workers=PARALLEL_BUILDS) as pool:
            futures = [pool.submit(on_base, b, [n for n in wanted if IMAGES[n].parent == b]) for b in others]
            futures += [pool.submit(on_base, BASE, [n]) for n in wanted if IMAGES[n].parent == BASE]
            for future in futures:
                results.update(future.result())
        # Untag old builds only once no build is running: removing layers while another
        # build looks up its cache is what made podman fail with "layer not known".
        for name, result in results.items():
            if result.built:
                _drop_old_builds(IMAGES[name], {other.recipe_hash for key, other in results.items()
                                                if IMAGES[key].repo == IMAGES[name].repo})
    return results


def images_archive(names: list[str]) -> Path:
    """One docker-archive holding the given images (stable tags), cached by their ids.

    Both `podman load` and `docker load` read it, so targets need no registry.
    """
    refs = [IMAGES[n].ref for n in names]
    ids = [image_id(ref) or "" for ref in refs]
    if not all(ids):
        raise BedError(f"images missing, run `bed.py build` first: {refs}")
    key = hashlib.sha256("\n".join(refs + ids).encode()).hexdigest()[:16]
    archives = cache_dir() / "archives"
    archives.mkdir(exist_ok=True)
    archive = archives / f"images-{key}.tar"
    with file_lock(cache_dir() / "archive.lock"):
        if not archive.exists():
            partial = archive.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            podman("save", "--multi-image-archive", "--format", "docker-archive",
                   "-o", str(partial), *refs)
            partial.rename(archive)   # a crash never leaves a truncated archive behind
            # Older archives of other image sets: kept a while for concurrent runs.
            for old in archives.glob("images-*.tar"):
                if old != archive and time.time() - old.stat().st_mtime > 3600:
                    old.unlink(missing_ok=True)
    return archive


STORES_KEEP_SECONDS = 6 * 3600   # a target may still have an older store mounted


def image_store(names: list[str]) -> Path:
    """A podman image store (graph root) holding the given images, cached like the archive.

    A podman target mounts it read-only as an additional image store: its images are there
    at once, where a `podman load` copies every layer again for each target (~20-35 s here).
    """
    archive = images_archive(names)
    stores = cache_dir() / "stores"
    stores.mkdir(exist_ok=True)
    store = stores / archive.stem.replace("images-", "store-")
    with file_lock(cache_dir() / "store.lock"):
        if not (store / "ready").exists():
            partial = store.with_name(store.name + ".partial")
            run(["rm", "-rf", str(partial)])
            # podman refuses a run root path longer than 50 characters.
            run_root = tempfile.mkdtemp(prefix="hearth-bed-run-")
            try:
                podman("--root", str(partial / "root"), "--runroot", run_root, "load", "-i", str(archive))
            finally:
                run(["rm", "-rf", run_root])
            run(["rm", "-rf", str(store)])
            partial.rename(store)   # a crash never leaves a half-loaded store behind
            (store / "ready").touch()
        for old in stores.iterdir():
            if old != store and time.time() - old.stat().st_mtime > STORES_KEEP_SECONDS:
                run(["rm", "-rf", str(old)])
    return store / "root"
