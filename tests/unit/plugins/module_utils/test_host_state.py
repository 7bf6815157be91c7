# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hearth.matrix contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directories, secrets, files, links and the service user on a real (temporary) file system."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import List

import pytest

from ansible_collections.hearth.matrix.plugins.module_utils.component import (
    Directory,
    File,
    Link,
    Ownership,
    Secret,
    ServiceUser,
    secret_ref,
)
from ansible_collections.hearth.matrix.plugins.module_utils.host_state import (
    CHECK_MODE_SECRET,
    HostError,
    Report,
    check_sources,
    ensure_directory,
    ensure_file,
    ensure_link,
    ensure_secret,
    ensure_service_user,
    generate_secret,
)
from ansible_collections.hearth.matrix.tests.unit.plugins.module_utils.hosts import ScriptedHost

ME = str(os.getuid())
MY_GROUP = str(os.getgid())
# Names no machine running the tests has: ensure_service_user takes the create path.
NEW_USER = "hearth-unit-test-user"
NEW_GROUP = "hearth-unit-test-group"


def own(mode: str) -> Ownership:
    return Ownership(ME, MY_GROUP, mode)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def tree(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- directories ----------------------------------------------------------------------------

def test_directory_created_with_parents_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"
    report = Report()
    ensure_directory(ScriptedHost(), Directory(str(path), own("0750")), report)
    assert path.is_dir() and mode_of(path) == 0o750
    assert report.changes == ["directory %s: created" % path] and report.changed
    again = Report()
    ensure_directory(ScriptedHost(), Directory(str(path), own("0750")), again)
    assert again.changes == [] and not again.changed


def test_directory_attributes_fixed(tmp_path: Path) -> None:
    path = tmp_path / "d"
    path.mkdir(mode=0o755)
    report = Report()
    ensure_directory(ScriptedHost(), Directory(str(path), own("0700")), report)
    assert mode_of(path) == 0o700
    assert report.changes == ["directory %s: owner/mode" % path]


def test_directory_check_mode_changes_nothing(tmp_path: Path) -> None:
    existing, missing = tmp_path / "existing", tmp_path / "missing"
    existing.mkdir(mode=0o755)
    report = Report()
    host = ScriptedHost(check_mode=True)
    ensure_directory(host, Directory(str(existing), own("0700")), report)
    ensure_directory(host, Directory(str(missing), own("0700")), report)
    assert mode_of(existing) == 0o755 and not missing.exists()
    assert report.changes == ["directory %s: owner/mode" % existing, "directory %s: created" % missing]


def test_directory_where_a_file_is(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(HostError) as info:
        ensure_directory(ScriptedHost(), Directory(str(path), own("0700")), Report())
    assert info.value.field == "directories" and "not a directory" in str(info.value)


def test_unknown_owner_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(HostError) as info:
        ensure_directory(ScriptedHost(), Directory(str(tmp_path / "d"), Ownership(NEW_USER, MY_GROUP, "0700")), Report())
    assert info.value.field == "owner"


# --- secrets ----------------------------------------------------------------------------------

def test_secret_generated_once_0600(tmp_path: Path) -> None:
    path = tmp_path / "token"
    report = Report()
    ensure_secret(ScriptedHost(), Secret(str(path), own("0600"), length=40), report)
    value = path.read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{40}\n", value)
    assert mode_of(path) == 0o600
    assert report.changes == ["secret %s: generated" % path]
    assert value.strip() not in repr(report.diffs) and "value not shown" in report.diffs[0]["after"]
    assert tree(tmp_path) == ["token"]  # no temporary file left behind
    again = Report()
    ensure_secret(ScriptedHost(), Secret(str(path), own("0600"), length=40), again)
    assert path.read_text() == value and again.changes == [] and again.diffs == []


def test_secret_never_regenerated_even_if_it_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "legacy"
    path.write_text("short\n")
    path.chmod(0o644)
    report = Report()
    ensure_secret(ScriptedHost(), Secret(str(path), own("0600"), format="synapse_signing_key"), report)
    assert path.read_text() == "short\n" and mode_of(path) == 0o600
    assert report.changes == ["secret %s: owner/mode" % path]


def test_secret_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "token"
    report = Report()
    ensure_secret(ScriptedHost(check_mode=True), Secret(str(path), own("0600")), report)
    assert not path.exists() and tree(tmp_path) == []
    assert report.changes == ["secret %s: generated" % path]


def test_secret_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(HostError) as info:
        ensure_secret(ScriptedHost(), Secret(str(tmp_path / "no" / "s"), own("0600")), Report())
    assert info.value.field == "secrets"


def test_signing_key_format() -> None:
    algorithm, key_id, seed = generate_secret("synapse_signing_key", 64).split(" ")
    assert algorithm == "ed25519" and re.fullmatch(r"a_[A-Za-z0-9]{4}", key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}", seed)  # 32 bytes, unpadded base64


# --- files ------------------------------------------------------------------------------------

def test_file_created_updated_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    host = ScriptedHost()
    created = Report()
    ensure_file(host, File(str(path), own("0640"), content="a: 1\n"), created)
    assert path.read_text() == "a: 1\n" and mode_of(path) == 0o640
    assert created.changes == ["file %s: created" % path]
    assert created.restart_reasons == [str(path)]
    assert created.diffs == [{"before_header": str(path), "after_header": str(path), "before": "", "after": "a: 1\n"}]
    assert len(created.digests) == 1 and created.digests[0].startswith(str(path) + "=")

    unchanged = Report()
    ensure_file(host, File(str(path), own("0640"), content="a: 1\n"), unchanged)
    assert unchanged.changes == [] and unchanged.restart_reasons == [] and unchanged.diffs == []
    assert unchanged.digests == created.digests  # the digest is always reported, changed or not

    updated = Report()
    ensure_file(host, File(str(path), own("0640"), content="a: 2\n"), updated)
    assert path.read_text() == "a: 2\n"
    assert updated.changes == ["file %s: updated" % path] and updated.restart_reasons == [str(path)]
    assert updated.diffs[0]["before"] == "a: 1\n" and updated.diffs[0]["after"] == "a: 2\n"
    assert updated.digests != created.digests
    assert tree(tmp_path) == ["homeserver.yaml"]


def test_file_mode_fixed_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("same")
    path.chmod(0o600)
    report = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0644"), content="same"), report)
    assert mode_of(path) == 0o644
    assert report.changes == ["file %s: owner/mode" % path] and report.restart_reasons == []


def test_file_without_restart_is_neither_a_restart_reason_nor_in_the_digests(tmp_path: Path) -> None:
    path = tmp_path / "log.config"
    report = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0644"), content="x", restart=False), report)
    assert path.read_text() == "x"
    assert report.changes == ["file %s: created" % path]
    assert report.restart_reasons == [] and report.digests == []


def test_secret_ref_substituted_on_the_host(tmp_path: Path) -> None:
    secret = tmp_path / "db_password"
    secret.write_text("s3cr3t-value\n")
    path = tmp_path / "homeserver.yaml"
    content = "password: %s\nagain: %s\n" % (secret_ref(str(secret)), secret_ref(str(secret)))
    report = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0640"), content=content), report)
    assert path.read_text() == "password: s3cr3t-value\nagain: s3cr3t-value\n"
    assert "s3cr3t-value" not in repr(report.diffs) and "s3cr3t-value" not in repr(report.changes)
    assert report.diffs[0]["after"] == "(content not shown: holds a secret)\n" and report.diffs[0]["before"] == ""
    # An unchanged secret gives an unchanged file; a rotated one an update.
    again = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0640"), content=content), again)
    assert again.changes == []
    secret.write_text("rotated\n")
    rotated = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0640"), content=content), rotated)
    assert "rotated" in path.read_text() and rotated.restart_reasons == [str(path)]
    assert "s3cr3t-value" not in repr(rotated.diffs) and "rotated" not in repr(rotated.diffs)
    assert rotated.diffs[0]["before"] == "(content not shown: holds a secret)\n"


def test_secret_value_with_backslashes_is_copied_verbatim(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("a\\1b\\g<0>c\n")
    path = tmp_path / "f"
    ensure_file(ScriptedHost(), File(str(path), own("0600"), content="k=%s" % secret_ref(str(secret))), Report())
    assert path.read_text() == "k=a\\1b\\g<0>c"


@pytest.mark.parametrize("item_kwargs", [{"secret": True}, {"src": "SOURCE"}])
def test_hidden_files_never_show_their_content(tmp_path: Path, item_kwargs: dict) -> None:
    source = tmp_path / "source.pem"
    source.write_text("PRIVATE KEY MATERIAL")
    path = tmp_path / "key.pem"
    path.write_text("OLD KEY MATERIAL")
    kwargs = dict(item_kwargs)
    if kwargs.get("src") == "SOURCE":
        kwargs["src"] = str(source)
    else:
        kwargs["content"] = "PRIVATE KEY MATERIAL"
    report = Report()
    ensure_file(ScriptedHost(), File(str(path), own("0600"), **kwargs), report)
    assert path.read_text() == "PRIVATE KEY MATERIAL"
    assert "KEY MATERIAL" not in repr(report.diffs)
    assert report.changes == ["file %s: updated" % path]


def test_check_mode_with_a_missing_secret_uses_the_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    content = "password: %s\n" % secret_ref(str(tmp_path / "not-yet"))
    report = Report()
    ensure_file(ScriptedHost(check_mode=True), File(str(path), own("0640"), content=content), report)
    assert tree(tmp_path) == []
    assert report.changes == ["file %s: created" % path] and report.restart_reasons == [str(path)]
    assert CHECK_MODE_SECRET not in repr(report.diffs)
    assert report.diffs[0]["after"] == "(content not shown: holds a secret)\n"


def test_missing_secret_outside_check_mode_fails(tmp_path: Path) -> None:
    content = "password: %s\n" % secret_ref(str(tmp_path / "missing"))
    with pytest.raises(HostError) as info:
        ensure_file(ScriptedHost(), File(str(tmp_path / "f"), own("0640"), content=content), Report())
    assert info.value.field == "files" and str(tmp_path / "missing") in str(info.value)
    assert tree(tmp_path) == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_secret_ref_with_a_relative_path_is_refused(tmp_path: Path, check_mode: bool) -> None:
    """Left in the file, the marker would reach the service as the password."""
    path = tmp_path / "f"
    with pytest.raises(HostError) as info:
        ensure_file(ScriptedHost(check_mode=check_mode), File(str(path), own("0640"),
                                                              content="password: %s\n" % secret_ref("secrets/db")), Report())
    assert info.value.field == "files" and str(path) in str(info.value)
    assert tree(tmp_path) == []


def test_file_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old\n")
    report = Report()
    ensure_file(ScriptedHost(check_mode=True), File(str(path), own("0640"), content="new\n"), report)
    assert path.read_text() == "old\n"
    assert report.changes == ["file %s: updated" % path]
    assert report.diffs[0]["before"] == "old\n" and report.diffs[0]["after"] == "new\n"


def test_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    path = tmp_path / "f"
    path.symlink_to(target)
    ensure_file(ScriptedHost(), File(str(path), own("0640"), content="new"), Report())
    assert not path.is_symlink() and path.read_text() == "new" and target.read_text() == "keep me"


def test_file_where_a_directory_is(tmp_path: Path) -> None:
    """Docker creates a directory where a bind-mounted file is missing; that must be a clear error."""
    path = tmp_path / "homeserver.yaml"
    path.mkdir()
    with pytest.raises(HostError) as info:
        ensure_file(ScriptedHost(), File(str(path), own("0640"), content="x"), Report())
    assert info.value.field == "files" and str(path) in str(info.value)
    assert path.is_dir()


def test_secret_where_a_directory_is(tmp_path: Path) -> None:
    """Not a secret: its mode must not be changed to 0600 and nothing may read it as one."""
    path = tmp_path / "registration_shared_secret"
    path.mkdir(mode=0o755)
    with pytest.raises(HostError) as info:
        ensure_secret(ScriptedHost(), Secret(str(path), own("0600")), Report())
    assert info.value.field == "secrets" and str(path) in str(info.value)
    assert mode_of(path) == 0o755


def test_file_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(HostError) as info:
        ensure_file(ScriptedHost(), File(str(tmp_path / "no" / "f"), own("0640"), content="x"), Report())
    assert info.value.field == "files"


def test_check_sources(tmp_path: Path) -> None:
    source = tmp_path / "cert.pem"
    source.write_text("x")
    check_sources([File("/x", own("0640"), src=str(source)), File("/y", own("0640"), content="no source")])
    with pytest.raises(HostError) as info:
        check_sources([File("/x", own("0640"), src=str(tmp_path / "missing.pem"), label="nginx_proxy_tls_cert")])
    assert info.value.field == "nginx_proxy_tls_cert" and "missing.pem is not a file" in str(info.value)
    with pytest.raises(HostError):
        check_sources([File("/x", own("0640"), src=str(tmp_path))])  # a directory is not a file


def test_check_sources_pem(tmp_path: Path) -> None:
    """A CA file (pem=True) must hold certificates; anything else is refused naming the label."""
    good = tmp_path / "ca.pem"
    good.write_text("-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n")
    check_sources([File("/x", own("0640"), src=str(good), pem=True)])
    bad_cases = {"not-pem.pem": "just text\n", "empty.pem": "", "bad-base64.pem":
                 "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
                 "key.pem": "-----BEGIN PRIVATE KEY-----\nTUlJQg==\n-----END PRIVATE KEY-----\n"}
    for name, text in bad_cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(HostError) as info:
            check_sources([File("/x", own("0640"), src=str(tmp_path / name), label="synapse_federation_ca_files[1]",
                                pem=True)])
        assert info.value.field == "synapse_federation_ca_files[1]" and "holds no PEM certificate" in str(info.value), name
    (tmp_path / "binary.pem").write_bytes(b"\xff\xfe")
    with pytest.raises(HostError):
        check_sources([File("/x", own("0640"), src=str(tmp_path / "binary.pem"), pem=True)])
    # Without pem=True the content is the service's business (the operator's key, say).
    check_sources([File("/x", own("0640"), src=str(tmp_path / "not-pem.pem"))])


# --- links ------------------------------------------------------------------------------------

def test_link_created_fixed_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "current"
    report = Report()
    ensure_link(ScriptedHost(), Link(str(path), "/opt/a"), report)
    assert os.readlink(str(path)) == "/opt/a" and report.changes == ["link %s -> /opt/a" % path]
    same = Report()
    ensure_link(ScriptedHost(), Link(str(path), "/opt/a"), same)
    assert same.changes == []
    moved = Report()
    ensure_link(ScriptedHost(), Link(str(path), "/opt/b"), moved)
    assert os.readlink(str(path)) == "/opt/b" and moved.changes == ["link %s -> /opt/b" % path]


def test_link_replaces_a_file_but_not_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    ensure_link(ScriptedHost(), Link(str(path), "/opt/a"), Report())
    assert os.readlink(str(path)) == "/opt/a"
    directory = tmp_path / "d"
    directory.mkdir()
    with pytest.raises(HostError) as info:
        ensure_link(ScriptedHost(), Link(str(directory), "/opt/a"), Report())
    assert info.value.field == "links" and directory.is_dir()


def test_link_check_mode(tmp_path: Path) -> None:
    report = Report()
    ensure_link(ScriptedHost(check_mode=True), Link(str(tmp_path / "l"), "/opt/a"), report)
    assert tree(tmp_path) == [] and report.changed


# --- service user -----------------------------------------------------------------------------

def user(sysusers_dir: str = "") -> ServiceUser:
    return ServiceUser(name=NEW_USER, uid=4991, group=NEW_GROUP, gid=4992, home="/opt/hearth-matrix",
                       sysusers_dir=sysusers_dir)


def test_service_user_created_with_groupadd_and_useradd() -> None:
    host = ScriptedHost()
    report = Report()
    ensure_service_user(host, None, "/usr/sbin/useradd", "/usr/sbin/groupadd", user(), report)
    assert host.calls == [
        ["/usr/sbin/groupadd", "--system", "--gid", "4992", NEW_GROUP],
        ["/usr/sbin/useradd", "--system", "--uid", "4991", "--gid", NEW_GROUP, "--no-create-home",
         "--home-dir", "/opt/hearth-matrix", "--shell", "/usr/sbin/nologin", "--comment",
         "hearth.matrix service user", NEW_USER],
    ]
    assert report.changes == ["group %s: created" % NEW_GROUP, "user %s: created" % NEW_USER]


def test_service_user_check_mode_runs_nothing() -> None:
    host = ScriptedHost(check_mode=True)
    report = Report()
    ensure_service_user(host, None, "/usr/sbin/useradd", "/usr/sbin/groupadd", user(), report)
    assert host.calls == [] and len(report.changes) == 2


def test_service_user_command_failure_names_the_field() -> None:
    host = ScriptedHost(rules=[(["/usr/sbin/groupadd"], (9, "", "groupadd: GID '4992' already exists\n"))])
    with pytest.raises(HostError) as info:
        ensure_service_user(host, None, "/usr/sbin/useradd", "/usr/sbin/groupadd", user(), Report())
    assert info.value.field == "service_user" and "GID '4992' already exists" in str(info.value)
    assert len(host.calls) == 1  # useradd not attempted


def test_service_user_declared_with_sysusers(tmp_path: Path) -> None:
    sysusers_dir = tmp_path / "sysusers.d"
    host = ScriptedHost()
    report = Report()
    ensure_service_user(host, "/usr/bin/systemd-sysusers", "/usr/sbin/useradd", None, user(str(sysusers_dir)), report)
    drop_in = sysusers_dir / (NEW_USER + ".conf")
    assert drop_in.read_text() == ('g %s 4992\nu %s 4991:4992 "hearth.matrix service user" /opt/hearth-matrix '
                                   '/usr/sbin/nologin\n' % (NEW_GROUP, NEW_USER))
    assert mode_of(drop_in) == 0o644 and mode_of(sysusers_dir) == 0o755
    assert host.calls == [["/usr/bin/systemd-sysusers", str(drop_in)]]
    assert report.restart_reasons == []  # the drop-in is not service configuration
    assert report.changes[-1] == "service user %s: declared with systemd-sysusers" % NEW_USER


def test_service_user_sysusers_check_mode_writes_and_runs_nothing(tmp_path: Path) -> None:
    sysusers_dir = tmp_path / "sysusers.d"
    host = ScriptedHost(check_mode=True)
    report = Report()
    ensure_service_user(host, "/usr/bin/systemd-sysusers", None, None, user(str(sysusers_dir)), report)
    assert tree(tmp_path) == [] and host.calls == []
    assert report.changes == ["directory %s: created" % sysusers_dir,
                              "service user %s: declared with systemd-sysusers" % NEW_USER]


def test_existing_user_with_other_ids_is_refused() -> None:
    import pwd
    root = pwd.getpwuid(0).pw_name
    existing = ServiceUser(name=root, uid=4991, group=NEW_GROUP, gid=4992, home="/root")
    with pytest.raises(HostError) as info:
        ensure_service_user(ScriptedHost(), None, None, None, existing, Report())
    assert info.value.field == "service_user" and "uid:gid 0:" in str(info.value)


def test_existing_account_and_unchanged_drop_in_run_nothing(tmp_path: Path) -> None:
    import grp
    import pwd
    root, root_group = pwd.getpwuid(0).pw_name, grp.getgrgid(0).gr_name
    existing = ServiceUser(name=root, uid=0, group=root_group, gid=0, home="/root", sysusers_dir=str(tmp_path))
    first = ScriptedHost()
    ensure_service_user(first, "/usr/bin/systemd-sysusers", None, None, existing, Report())
    assert first.calls == [["/usr/bin/systemd-sysusers", str(tmp_path / (root + ".conf"))]]  # new drop-in
    second = ScriptedHost()
    report = Report()
    ensure_service_user(second, "/usr/bin/systemd-sysusers", None, None, existing, report)
    assert second.calls == [] and report.changes == []
